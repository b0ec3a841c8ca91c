"""Hardening (issue 8): abuse limits. A flood from one address is refused over its limit while others are
served; a thousand clients trickling bytes (slowloris) do not keep a normal client from sending and reading
mail; a 4 GB IMAP literal is refused before a byte of it is read; a message of 100,000 MIME parts, or with a
1 MB header line, is taken, stored and served without the server's memory growing with it. (AUTH brute force:
test_smtp_extensions.py's test_repeated_auth_failures_end_in_421_for_that_address.)"""

import imaplib
import os
import resource
import smtplib
import socket
import threading
import time
from pathlib import Path

import pytest

from conftest import ALICE, ALICE_PASSWORD, Tern, insecure_context


def peak_memory_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def send_and_read_back(server, subject):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        client.sendmail("carol@remote.test", [ALICE], f"Subject: {subject}\r\n\r\nhello\r\n")
    with imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=insecure_context(), timeout=30) as client:
        client.login(ALICE, ALICE_PASSWORD)
        client.select("INBOX", readonly=True)
        _, found = client.search(None, "SUBJECT", f'"{subject}"')
        assert found[0], f"{subject} not found"


@pytest.fixture
def server(tmp_path):
    server = Tern(tmp_path)
    server.add_users()
    yield server.start()
    server.stop()


def test_a_flood_from_one_address_is_refused_over_its_limit_while_another_address_is_served(tmp_path):
    server = Tern(tmp_path, extra="[limits]\nmax_connections_per_client = 5\n")
    server.add_users()
    server.start()
    flood = []
    try:
        for _ in range(30):
            flood.append(socket.create_connection(("127.0.0.1", server.port("smtp")), timeout=30,
                                                  source_address=("127.0.0.2", 0)))
        greetings = [s.makefile("rb").readline() for s in flood]
        assert sum(g.startswith(b"220") for g in greetings) == 5
        assert all(g.startswith(b"421 4.7.0") for g in greetings if not g.startswith(b"220"))
        send_and_read_back(server, "from another address")
    finally:
        for s in flood:
            s.close()
        server.stop()


def test_a_thousand_slow_clients_do_not_keep_a_normal_client_from_mail(server):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    slow = []
    stop = threading.Event()
    try:
        # 1,000 clients from 50 addresses (20 each: the per-address limit), each sending its EHLO a byte at a time.
        for n in range(1000):
            source = f"127.0.1.{n // 20 + 1}"
            slow.append(socket.create_connection(("127.0.0.1", server.port("smtp")), timeout=30,
                                                 source_address=(source, 0)))

        def trickle():
            line = b"EHLO slow.example\r\n"
            position = 0
            while not stop.is_set():
                for s in slow:
                    try:
                        s.send(line[position % (len(line) - 2):][:1])
                    except OSError:
                        pass
                position += 1
                stop.wait(0.5)

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        time.sleep(1)
        started = time.monotonic()
        send_and_read_back(server, "through the crowd")
        assert time.monotonic() - started < 30  # served while the thousand are still there
        greeted = sum(1 for s in slow[:50] if s.recv(512, socket.MSG_PEEK).startswith(b"220"))
        assert greeted == 50  # the slow ones were all let in, and are still being served
    finally:
        stop.set()
        for s in slow:
            s.close()


def test_an_imap_literal_of_4_gb_is_refused_before_any_of_it_is_read(server):
    context = insecure_context()
    with socket.create_connection(("127.0.0.1", server.port("imaps")), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            stream = tls.makefile("rb")
            assert stream.readline().startswith(b"* OK")
            tls.sendall(f"a LOGIN {ALICE} {ALICE_PASSWORD}\r\n".encode())
            while not (line := stream.readline()).startswith(b"a "):
                pass
            assert line.startswith(b"a OK")
            tls.sendall(b"b APPEND INBOX {4294967296}\r\n")
            assert stream.readline().startswith(b"b NO [TOOBIG]")
            tls.sendall(b"c NOOP\r\n")
            assert stream.readline().startswith(b"c OK")


def test_a_message_of_100000_mime_parts_or_a_1_mb_header_line_is_served_in_bounded_memory(server):
    parts = "".join("--b\r\nContent-Type: text/plain\r\n\r\npart\r\n" for _ in range(100_000))
    many = f"Subject: many parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n{parts}--b--\r\n"
    long_line = "Subject: long\r\nX-Long: " + "a" * (1 << 20) + "\r\n\r\nbody\r\n"
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=60) as client:
        client.sendmail("carol@remote.test", [ALICE], many)
    with imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=insecure_context(), timeout=60) as client:
        client.login(ALICE, ALICE_PASSWORD)
        # A 1 MB header line through IMAP APPEND (SMTP's own line limit is tested in test_smtp_security.py).
        assert client.append("INBOX", None, None, long_line.encode())[0] == "OK"
        client.select("INBOX")
        for item in ("BODYSTRUCTURE", "ENVELOPE", "BODY.PEEK[1.99999]", "BODY.PEEK[HEADER]", "RFC822.SIZE"):
            status, data = client.fetch("1:2", f"({item})")
            assert status == "OK", (item, data)
        status, found = client.search(None, "TEXT", '"no such text"')
        assert status == "OK" and found == [b""]
    # The server's peak memory stays far below what parsing each part into its own structures would take.
    # AddressSanitizer's redzones and quarantine of freed memory (the suite's second run) triple it.
    limit_mib = 200 * (3 if "ASAN_OPTIONS" in os.environ else 1)
    assert peak_memory_kib(server.process.pid) < limit_mib * 1024
    send_and_read_back(server, "still fine")
