#!/usr/bin/python3
"""An authoritative name server for the outbound tests, on python3-dnslib: the zone is a JSON file the test
writes and may rewrite while the server runs.

    dns_fixture.py ZONE_JSON ADDRESS PORT QUERY_LOG

Serves UDP and TCP (several queries per TCP connection) on ADDRESS:PORT until SIGTERM. ZONE_JSON maps
lower-case names without the trailing dot to lists of records:

    {"type": "MX", "pref": 10, "host": "mx1.d1.test", "ttl": 300}
    {"type": "MX", "pref": 0, "host": "."}           the null MX of RFC 7505
    {"type": "A", "address": "127.0.0.2"}
    {"type": "AAAA", "address": "::1"}
    {"type": "TXT", "text": "v=spf1 -all"}
    {"type": "CNAME", "host": "other.d1.test"}
    {"type": "SERVFAIL"}                              every query for the name answers SERVFAIL

`ttl` is optional (300). A name that has records, none of the asked type, answers NOERROR with no answer
(NODATA); a name that is absent answers NXDOMAIN. Names are matched case-insensitively. The file is read
again whenever its modification time, inode or size changes. Each query appends the line "TYPE name" (the
name lower-cased, without the trailing dot) to QUERY_LOG, flushed at once, so that a test can count them.
"""

import json
import os
import signal
import socket
import socketserver
import struct
import sys
import threading

from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, A, DNSRecord

DEFAULT_TTL = 300
UDP_LIMIT = 512  # a reply larger than this (or than the client's EDNS size) is truncated, and the client asks over TCP


class Zone:
    """The records of ZONE_JSON, read again when the file changes."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.stamp = None
        self.names = {}

    def records(self, name):
        """The list of records for `name`, or None when the name is absent."""
        with self.lock:
            self.reload_if_changed()
            return self.names.get(name)

    def reload_if_changed(self):
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return  # the test is replacing it: keep the last one
        stamp = (info.st_mtime_ns, info.st_ino, info.st_size)
        if stamp == self.stamp:
            return
        with open(self.path) as file:
            loaded = json.load(file)
        self.names = {name.lower().rstrip("."): list(records) for name, records in loaded.items()}
        self.stamp = stamp


class QueryLog:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def add(self, qtype, name):
        with self.lock, open(self.path, "a") as file:
            file.write(f"{qtype} {name}\n")


def resource_record(name, record):
    """The dnslib RR for one zone record, or None when its type is not one this fixture knows."""
    ttl = int(record.get("ttl", DEFAULT_TTL))
    kind = record["type"].upper()
    if kind == "MX":
        return RR(name, QTYPE.MX, rdata=MX(record["host"], int(record["pref"])), ttl=ttl)
    if kind == "A":
        return RR(name, QTYPE.A, rdata=A(record["address"]), ttl=ttl)
    if kind == "AAAA":
        return RR(name, QTYPE.AAAA, rdata=AAAA(record["address"]), ttl=ttl)
    if kind == "TXT":
        return RR(name, QTYPE.TXT, rdata=TXT(record["text"]), ttl=ttl)
    if kind == "CNAME":
        return RR(name, QTYPE.CNAME, rdata=CNAME(record["host"]), ttl=ttl)
    return None


def answer(zone, log, request):
    """The reply to one parsed query."""
    reply = request.reply()  # qr, aa and ra set; the question copied
    if not request.questions:
        reply.header.rcode = RCODE.FORMERR
        return reply
    question = request.q
    name = str(question.qname).lower().rstrip(".")
    qtype = QTYPE.get(question.qtype, str(question.qtype))
    log.add(qtype, name)
    for _ in range(8):  # CNAME chains inside the zone, at most 8 long
        records = zone.records(name)
        if records is None:
            if not reply.rr:
                reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if any(record["type"].upper() == "SERVFAIL" for record in records):
            reply.rr = []
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        owner = name + "."
        matching = [record for record in records if record["type"].upper() == qtype or qtype == "ANY"]
        cname = [record for record in records if record["type"].upper() == "CNAME"]
        if matching or not cname or qtype == "CNAME":
            for record in matching:
                rr = resource_record(owner, record)
                if rr is not None:
                    reply.add_answer(rr)
            return reply  # NOERROR, possibly with no answer (NODATA)
        reply.add_answer(resource_record(owner, cname[0]))
        name = cname[0]["host"].lower().rstrip(".")
    return reply


def udp_limit(request):
    for record in request.ar:
        if record.rtype == QTYPE.OPT:
            return max(UDP_LIMIT, record.rclass)  # an OPT record's class is the client's payload size
    return UDP_LIMIT


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        if isinstance(self.request, tuple):  # UDP: (data, socket)
            data, sock = self.request
            reply = self.reply_to(data)
            if reply is not None:
                request, packed = reply
                if len(packed) > udp_limit(request):
                    packed = DNSRecord.parse(packed).truncate().pack()
                sock.sendto(packed, self.client_address)
            return
        stream = self.request.makefile("rb")
        while True:  # TCP: length-prefixed messages, as many as the client sends on the connection
            prefix = stream.read(2)
            if len(prefix) < 2:
                return
            data = stream.read(struct.unpack("!H", prefix)[0])
            reply = self.reply_to(data)
            if reply is None:
                return
            packed = reply[1]
            self.request.sendall(struct.pack("!H", len(packed)) + packed)

    def reply_to(self, data):
        try:
            request = DNSRecord.parse(data)
        except Exception as error:  # dnslib raises several kinds on garbage
            print(f"dns_fixture: unparsable query: {error}", file=sys.stderr)
            return None
        return request, answer(self.server.zone, self.server.query_log, request).pack()


class UdpServer(socketserver.ThreadingUDPServer):
    allow_reuse_address = True
    daemon_threads = True


class TcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    if len(sys.argv) != 5:
        sys.exit(f"usage: {sys.argv[0]} ZONE_JSON ADDRESS PORT QUERY_LOG")
    zone_path, address, port, log_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    zone = Zone(zone_path)
    zone.records("")  # read it now: a bad file fails at start, not at the first query
    query_log = QueryLog(log_path)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    servers = []
    for kind in (UdpServer, TcpServer):
        kind.address_family = family
        server = kind((address, port), Handler)
        server.zone, server.query_log = zone, query_log
        servers.append(server)
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"dns_fixture: serving {zone_path} on {address}:{port} (udp, tcp)", file=sys.stderr, flush=True)
    stop.wait()
    for server in servers:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
