"""The remote side of outbound delivery, on loopback: a name server with a zone the test writes, smtp-sink,
a private Postfix, and more Tern instances on other loopback addresses (127.0.0.x) playing remote MX hosts.

Each peer starts in its constructor and is stopped by PID with `.stop()`. Peers that run as another user
(smtp-sink as nobody, Postfix's daemons as postfix and 65534) live in a folder of their own under /tmp, mode
0755: pytest's base folder is 0700, and every pytest process that starts makes it so again. Their logs are
copied into the test's folder when they stop.
"""

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import Tern, fd_targets

PYTHON = "/usr/bin/python3"  # Debian's, with python3-dnslib
DNS_FIXTURE = Path(__file__).resolve().with_name("dns_fixture.py")
SMTP_SINK = "/usr/sbin/smtp-sink"
MAIL_UID = 65534  # nobody: Postfix's virtual agent refuses uid 0
PROBE_NAME = "ready.probe.invalid"  # DnsServer's start-up query; left out of queries()


def family_of(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def free_port_on(addresses, attempts=100):
    """One TCP port that is free on every one of `addresses` at once (the outbound plugin reaches every MX host
    on the same port). Bound with SO_REUSEADDR, as servers bind, so a port in TIME_WAIT counts as free."""
    for _ in range(attempts):
        with contextlib.ExitStack() as probes:
            first = probes.enter_context(socket.socket(family_of(addresses[0])))
            first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            first.bind((addresses[0], 0))
            port = first.getsockname()[1]
            try:
                for address in addresses[1:]:
                    probe = probes.enter_context(socket.socket(family_of(address)))
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind((address, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no port free on all of {addresses}")


def free_udp_tcp_port(address):
    """A port free for both UDP and TCP on `address` (the name server listens on both)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
            udp.bind((address, 0))
            port = udp.getsockname()[1]
            try:
                tcp.bind((address, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no port free for UDP and TCP on {address}")


def wait_until(condition, timeout=30, interval=0.1):
    """Polls `condition` until it returns something true, and returns that; returns its last value at the
    deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def wait_connectable(address, port, alive, timeout=20):
    """True once address:port accepts a TCP connection; False when `alive()` turns false or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            socket.create_connection((address, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def private_folder(prefix):
    """A folder under /tmp, 0755, for a peer whose processes run as other users."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


def stop_process(process, timeout=10):
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- DNS -----------------------------------------------------------------------------------------------------

class DnsServer:
    """dns_fixture.py on `address` (127.0.0.1) and a free port, UDP and TCP, serving `zone` (see that script for
    the record format). `.set_zone()` replaces the records while it runs; `.queries()` are the "TYPE name"
    lines of every query so far; `.dns_servers` is the value for `[dns] servers`."""

    def __init__(self, root, zone, address="127.0.0.1"):
        self.address = address
        self.process = None
        for attempt in range(3):
            self.port = free_udp_tcp_port(address)
            self.root = Path(root) / f"dns-{self.port}"
            self.root.mkdir(parents=True, exist_ok=True)
            self.zone_file = self.root / "zone.json"
            self.query_log = self.root / "queries.log"
            self.set_zone(zone)
            self.query_log.write_text("")
            self.process = subprocess.Popen(
                [PYTHON, str(DNS_FIXTURE), str(self.zone_file), address, str(self.port), str(self.query_log)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self.root / "stderr.log", "ab"))
            if self._wait_answering():
                return
            stop_process(self.process)
        raise RuntimeError(f"the DNS fixture did not start: {(self.root / 'stderr.log').read_text()}")

    @property
    def dns_servers(self):
        return f'["{self.address}:{self.port}"]'

    def _wait_answering(self, timeout=20):
        from dnslib import DNSRecord  # imported here: collecting the tests must not need python3-dnslib
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                DNSRecord.question(PROBE_NAME, "A").send(self.address, self.port, timeout=0.5)
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def set_zone(self, zone):
        """Replaces the zone file in one step (a new inode: the fixture sees the change at its next query)."""
        staging = self.zone_file.with_suffix(".new")
        staging.write_text(json.dumps(zone, indent=1))
        os.replace(staging, self.zone_file)

    def queries(self):
        lines = self.query_log.read_text().splitlines() if self.query_log.exists() else []
        return [line for line in lines if not line.endswith(" " + PROBE_NAME)]

    def query(self, name, qtype="A", tcp=False):
        """Asks the fixture itself (to check it): (rcode name, ["rdata", ...])."""
        from dnslib import RCODE, DNSRecord
        reply = DNSRecord.parse(DNSRecord.question(name, qtype).send(self.address, self.port, tcp=tcp, timeout=2))
        return RCODE.get(reply.header.rcode), [str(record.rdata) for record in reply.rr]

    def stop(self):
        stop_process(self.process)


def mx_zone(domain, hosts, ttl=300):
    """A zone where `domain` has one MX per (preference, address) in `hosts`, named mx1.domain, mx2.domain ...,
    each with an A record."""
    zone = {domain: []}
    for number, (preference, address) in enumerate(hosts, 1):
        host = f"mx{number}.{domain}"
        zone[domain].append({"type": "MX", "pref": preference, "host": host, "ttl": ttl})
        zone[host] = [{"type": "A", "address": address, "ttl": ttl}]
    return zone


# --- smtp-sink -----------------------------------------------------------------------------------------------

# Options of Postfix's smtp-sink (man smtp-sink, Postfix 3.7) for peers that lack something. smtp-sink never
# offers SIZE nor STARTTLS, always offers AUTH (and answers it 250 whatever the password), and by default
# offers PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES and DSN.
NO_8BITMIME = ("-8",)   # EHLO without 8BITMIME
NO_PIPELINING = ("-p",)  # EHLO without PIPELINING
NO_DSN = ("-N",)        # EHLO without DSN
NO_ESMTP = ("-e",)      # EHLO refused: the client must fall back to HELO


def reject_rcpt(reply="550 5.1.1 Recipient address rejected: User unknown"):
    """Every RCPT answered with `reply`: `-f RCPT` hard-rejects the command (it also turns PIPELINING off) and
    `-B` sets the text of hard rejects (a 5xx code: smtp-sink's default is "500 5.3.0 Error: command failed").
    For a soft reject, the same with `-r RCPT -b "450 ..."`."""
    return ("-f", "RCPT", "-B", reply)


class SmtpSink:
    """/usr/sbin/smtp-sink on address:port (a free port when None), one dump file per received message.

    The sink is started with `-u nobody` (it refuses to run as root otherwise) and `-d DIR/%Y%m%d%H%M%S.`:
    each mail transaction is written to a file of its own whose name is the template expanded by strftime
    plus a random hex number. A file starts with the sink's own lines (X-Client-Addr, X-Client-Proto,
    X-Helo-Args, X-Mail-Args: the MAIL arguments, one X-Rcpt-Args per RCPT, then a three-line Received:)
    followed by the message as received and an empty line. A transaction that ends without DATA leaves no file.
    `extra_args` are more smtp-sink options: see NO_8BITMIME, NO_PIPELINING, NO_DSN, NO_ESMTP and
    reject_rcpt() above."""

    def __init__(self, root, address, port=None, extra_args=(), hostname="sink.peer.test"):
        self.test_root = Path(root)
        self.address = address
        self.root = private_folder("tern-sink-")
        self.dumps = self.root / "dump"
        self.dumps.mkdir()
        as_root = os.geteuid() == 0
        if as_root:
            os.chown(self.dumps, MAIL_UID, MAIL_UID)
        self.process = None
        for _ in range(3):
            self.port = port or free_port_on([address])
            command = [SMTP_SINK, *(["-u", "nobody"] if as_root else []), "-h", hostname,
                       "-d", f"{self.dumps}/%Y%m%d%H%M%S.", *extra_args,
                       f"[{address}]:{self.port}" if ":" in address else f"{address}:{self.port}", "64"]
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=open(self.root / "stderr.log", "ab"))
            if wait_connectable(address, self.port, lambda: self.process.poll() is None):
                return
            stop_process(self.process)
            if port is not None:
                break
        reason = (self.root / "stderr.log").read_text()
        shutil.rmtree(self.root, ignore_errors=True)
        raise RuntimeError(f"smtp-sink did not start: {reason}")

    def _open_files(self):
        """The dump files the sink holds open: transactions still in progress."""
        return fd_targets(self.process.pid)

    def raw_messages(self):
        """The complete dump files (bytes), oldest first."""
        if not self.dumps.exists():
            return []
        # The folder first, then what is open: a file made in between is then either unlisted or seen open.
        listed = [path for path in self.dumps.rglob("*") if path.is_file()]
        in_progress = self._open_files() if self.process.poll() is None else set()
        files = [path for path in listed if str(path) not in in_progress]
        files.sort(key=lambda path: (path.stat().st_mtime_ns, path.name))
        return [path.read_bytes() for path in files]

    def messages(self):
        """The received messages as text (UTF-8, bad bytes replaced), each with the sink's lines on top."""
        return [raw.decode("utf-8", "replace") for raw in self.raw_messages()]

    def transactions(self):
        """Each received message as {"mail": MAIL arguments, "rcpts": [RCPT arguments], "message": text as
        received}."""
        parsed = []
        for text in self.messages():
            head, _, rest = text.partition("\nReceived: ")
            fields = {"mail": "", "rcpts": []}
            for line in head.splitlines():
                if line.startswith("X-Mail-Args: "):
                    fields["mail"] = line[len("X-Mail-Args: "):]
                elif line.startswith("X-Rcpt-Args: "):
                    fields["rcpts"].append(line[len("X-Rcpt-Args: "):])
            lines = rest.split("\n")
            fields["message"] = "\n".join(lines[3:])  # after the sink's three-line Received:
            parsed.append(fields)
        return parsed

    def stop(self):
        stop_process(self.process)
        with contextlib.suppress(OSError):
            shutil.copytree(self.dumps, self.test_root / f"sink-{self.address}-{self.port}", dirs_exist_ok=True)
            shutil.copy(self.root / "stderr.log", self.test_root / f"sink-{self.address}-{self.port}.log")
        shutil.rmtree(self.root, ignore_errors=True)


# --- Postfix -------------------------------------------------------------------------------------------------

def pid_alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def children_of(parent):
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(name))
    return found


class PostfixPeer:
    """A private Postfix on address:port (address like 127.0.0.3) that takes mail for `domains` into virtual
    Maildirs for `users` (addresses) and refuses other users of those domains `550 5.1.1 ... User unknown in
    virtual mailbox table`, and any other domain `554 5.7.1 Relay access denied`. No TLS, no DNS lookups.

    Its config, queue, data and mail folders are its own (several may run at once). The config is written from
    scratch (the system's main.cf may be missing: tools/install-deps installs postfix unconfigured); master.cf
    is the system's with chroot off and the smtp service moved to address:port. `settings` are more main.cf
    lines ("message_size_limit = 4096"). Mail is delivered as uid/gid 65534 (the virtual agent refuses 0)."""

    def __init__(self, root, address, port, domains, users, settings=(), hostname=None):
        self.test_root = Path(root)
        self.address = address
        self.port = port
        self.domains = [domain.lower() for domain in domains]
        self.users = [user.lower() for user in users]
        self.hostname = hostname or f"postfix-{address.replace('.', '-')}.peer.test"
        self.root = private_folder("tern-postfix-")
        self.etc = self.root / "etc"
        self.queue = self.root / "queue"
        self.data = self.root / "data"
        self.mail = self.root / "mail"
        self.maillog = self.root / "maillog"
        self.master = None
        try:
            self._configure(settings)
            self._start()
        except BaseException:
            self.stop()
            raise

    def postconf(self, *args):
        result = subprocess.run(["postconf", "-c", str(self.etc), *args], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"postconf {' '.join(args)}: {result.stderr}")

    def _configure(self, settings):
        postfix_user = pwd.getpwnam("postfix")
        self.etc.mkdir()
        for name in ("master.cf", "dynamicmaps.cf", "postfix-files"):
            source = Path("/etc/postfix") / name
            if not source.exists() and name == "master.cf":
                source = Path("/usr/share/postfix/master.cf.dist")
            if source.exists():
                shutil.copy(source, self.etc / name)
        for folder in ("dynamicmaps.cf.d", "postfix-files.d"):
            if (Path("/etc/postfix") / folder).is_dir():
                shutil.copytree(Path("/etc/postfix") / folder, self.etc / folder)
        (self.etc / "main.cf").write_text("compatibility_level = 3.6\n")
        self.queue.mkdir(mode=0o755)
        self.data.mkdir(mode=0o700)
        os.chown(self.data, postfix_user.pw_uid, postfix_user.pw_gid)
        lines = []
        for domain in self.domains:
            (self.mail / domain).mkdir(parents=True, mode=0o755)
            os.chown(self.mail / domain, MAIL_UID, MAIL_UID)
        for user in self.users:
            local, domain = user.split("@")
            lines.append(f"{user} {domain}/{local}/")
        (self.etc / "vmailbox").write_text("\n".join(lines) + "\n")
        self.postconf(
            "-e",
            f"queue_directory = {self.queue}",
            f"data_directory = {self.data}",
            f"maillog_file = {self.maillog}",
            f"maillog_file_prefixes = {self.root}",
            # Postfix refuses an address no interface carries (127.0.0.3 is routed to lo but not on it): the
            # service below names its own address, and this only says which ones are "myself".
            "inet_interfaces = loopback-only",
            "inet_protocols = ipv4",
            f"myhostname = {self.hostname}",
            "mydomain = peer.test",
            "mydestination =",
            "mynetworks = 127.0.0.0/8",
            "alias_maps =",
            "alias_database =",
            "relayhost =",
            f"virtual_mailbox_domains = {' '.join(self.domains)}",
            f"virtual_mailbox_base = {self.mail}",
            f"virtual_mailbox_maps = texthash:{self.etc / 'vmailbox'}",
            f"virtual_uid_maps = static:{MAIL_UID}",
            f"virtual_gid_maps = static:{MAIL_UID}",
            # An MX for its domains only: loopback clients get no relay rights.
            "smtpd_relay_restrictions = reject_unauth_destination",
            "smtpd_recipient_restrictions = reject_unauth_destination",
            # Clients are remote, loopback included: their headers are left as they are (no added Date or
            # Message-Id, no rewritten addresses).
            "local_header_rewrite_clients =",
            "smtpd_tls_security_level = none",
            "smtp_tls_security_level = none",
            # No DNS and no reverse lookups of the loopback client.
            "smtpd_peername_lookup = no",
            "smtp_host_lookup = native",
            "smtp_dns_support_level = disabled",
            "biff = no",
            *settings,
        )
        self.postconf("-F", "*/*/chroot = n")
        self.postconf("-M#", "smtp/inet")
        self.postconf("-M", f"{self.address}:{self.port}/inet = {self.address}:{self.port} inet n - n - - smtpd")

    def _start(self):
        result = subprocess.run(["postfix", "-c", str(self.etc), "start"], capture_output=True, text=True,
                                timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"postfix start failed: {self.why_not()}\n{self.log_text()}")
        pid_file = self.queue / "pid" / "master.pid"
        deadline = time.monotonic() + 20
        while self.master is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, IndexError):
                self.master = int(pid_file.read_text().split()[0])
            time.sleep(0.05)
        if self.master is None or not wait_connectable(self.address, self.port, lambda: pid_alive(self.master)):
            raise RuntimeError(f"postfix did not start:\n{self.log_text()}")

    def why_not(self):
        """`postfix check`'s complaint: Postfix writes it to syslog, or to its standard error when that is a
        terminal, so it is run under script(1)."""
        result = subprocess.run(["script", "-qec", f"postfix -c {self.etc} check", "/dev/null"], capture_output=True,
                                text=True, timeout=60)
        return (result.stdout + result.stderr).strip()

    def maildir(self, user):
        local, domain = user.lower().split("@")
        return self.mail / domain / local

    def maildir_messages(self, user):
        """The messages delivered to `user` (text, UTF-8 with bad bytes replaced), oldest first."""
        files = []
        for sub in ("new", "cur"):
            folder = self.maildir(user) / sub
            if folder.is_dir():
                files += [path for path in folder.iterdir() if path.is_file()]
        files.sort(key=lambda path: (path.stat().st_mtime_ns, path.name))
        return [path.read_bytes().decode("utf-8", "replace") for path in files]

    def log_text(self):
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def stop(self):
        if self.master is None:  # `postfix start` may have failed after the master started
            with contextlib.suppress(OSError, ValueError, IndexError):
                self.master = int((self.queue / "pid" / "master.pid").read_text().split()[0])
        if self.master is not None:
            subprocess.run(["postfix", "-c", str(self.etc), "stop"], capture_output=True, timeout=60)
            deadline = time.monotonic() + 20
            while pid_alive(self.master) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(self.master):
                for pid in children_of(self.master) + [self.master]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            self.master = None
        with contextlib.suppress(OSError):
            shutil.copy(self.maillog, self.test_root / f"postfix-{self.address}-{self.port}.log")
        shutil.rmtree(self.root, ignore_errors=True)


# --- Tern as a remote MX or smarthost -------------------------------------------------------------------------

def tern_peer(root, host, smtp_port, domains=(), users=None, extra="", hostname=None, start=True):
    """Another Tern on loopback address `host`, its `smtp` listener on `smtp_port` (the port the outbound plugin
    reaches every MX on), its other listeners (submission, pop3s, imaps ...) on free ports of `host`. It has
    `domains` and `users` (address -> password); `extra` is more config (TOML). Stop it with `.stop()`."""
    Path(root).mkdir(parents=True, exist_ok=True)
    server = Tern(root, host=host, ports={"smtp": smtp_port}, extra=extra,
                  hostname=hostname or f"mx-{host.replace('.', '-')}.peer.test")
    for domain in domains:
        server.cli("domain", "add", domain)
    for address, password in (users or {}).items():
        server.cli("user", "add", address, input=password + "\n")
    return server.start() if start else server
