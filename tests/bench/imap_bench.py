#!/usr/bin/python3
"""IMAP benchmark (issue 4): Tern against a private Dovecot, side by side on loopback, on the same messages.

The same N messages (10,000 by default: a fixed seed, a few headers, bodies of a few hundred octets to a few KB,
some multipart) go into Tern's INBOX by IMAP APPEND over a few connections, and into Dovecot's Maildir as files
with realistic names, as a delivery agent leaves them. Then, on each server, alternating which goes first, and
N repeats of each: (1) SELECT INBOX + FETCH 1:* (BODY.PEEK[HEADER]), timed together; (2) FETCH 1:* BODY.PEEK[];
(3) SEARCH TEXT on a word that is in about 10% of the bodies; (4) STORE 1:* +FLAGS.SILENT (\\Flagged) and
-FLAGS.SILENT (\\Flagged), timed together; (5) APPEND of M messages to a fresh mailbox over one connection, each
waiting for its OK. Medians are printed with the ratio Dovecot time / Tern time (above 1: Tern is faster) and
each server's CPU time. Last, it holds many IDLE sessions open on Tern and prints Tern's resident memory.

Everything runs on 127.0.0.1 and in one temporary folder, is bounded in time, and is stopped by PID at the end, on
error and on Ctrl-C. Run it as root with Debian's /usr/bin/python3 (standard library only); it installs
dovecot-imapd with apt-get when it is missing, and stops the system's instance if the package started one.
"""

import argparse
import base64
import contextlib
import datetime
import email.utils
import os
import platform
import random
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench_support import (children_of, clean_up, fmt, free_port, interrupt, log, log_problems, machine_busy_ticks,
                           pid_alive, proc_stat, run, run_bench, stop_process, tern_log_problems, wait_listening)

REPO = Path(__file__).resolve().parents[2]
TERN = os.environ.get("TERN_BIN", str(REPO / "build" / "tern"))
PLUGIN_DIR = os.environ.get("TERN_PLUGIN_DIR", str(REPO / "build" / "plugins"))
USER = "bench@example.test"
PASSWORD = "bench-password"
MAIL_UID = 65534  # nobody: Dovecot refuses uid 0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SEARCH_WORD = "quarterly"  # never in the vocabulary: only in the ~10% of bodies it is put into
WORDS = ("the and for with that this from have will your about meeting report update project review team please "
         "thanks attached schedule budget server release build test change design plan notes customer order "
         "invoice delivery question answer support ticket issue fixed version draft final monday tuesday friday "
         "office lunch call agenda minutes travel hotel flight contract account payment reminder deadline "
         "tomorrow today week month coffee document spreadsheet figures summary details status progress").split()
NAMES = ("alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy rupert sybil trent "
         "victor walter").split()
DOMAINS = ("example.com example.org example.net mail.example.test lists.example.info").split()


# --- /proc ---------------------------------------------------------------------------------------------------

def status_field(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


# --- messages ------------------------------------------------------------------------------------------------

def make_messages(count, seed):
    """`count` messages as (CRLF octets, time): varied but the same for a given seed. About 10% of the bodies hold
    SEARCH_WORD; about 20% are multipart (alternative text and HTML, or text with a small base64 attachment)."""
    rng = random.Random(seed)
    base_time = 1763800000 - count * 97
    messages = []
    with_word = 0

    def address():
        name = rng.choice(NAMES)
        return f"{name.capitalize()} {rng.choice(NAMES).capitalize()} <{name}@{rng.choice(DOMAINS)}>"

    def paragraph(size, word):
        words = []
        length = 0
        while length < size:
            choice = rng.choice(WORDS)
            words.append(choice)
            length += len(choice) + 1
        if word:
            words.insert(rng.randrange(len(words)), SEARCH_WORD)
        lines, line = [], ""
        for item in words:
            if len(line) + len(item) + 1 > 72:
                lines.append(line)
                line = item
            else:
                line = f"{line} {item}" if line else item
        lines.append(line)
        return "\r\n".join(lines)

    for index in range(count):
        stamp = base_time + index * 97 + rng.randrange(90)
        word = rng.random() < 0.10
        with_word += word
        sender = address()
        headers = [
            f"Return-Path: <{sender.split('<')[1]}",
            f"Received: from mx{rng.randrange(1, 9)}.{rng.choice(DOMAINS)} (mx.{rng.choice(DOMAINS)} "
            f"[192.0.2.{rng.randrange(1, 255)}])\r\n\tby mail.example.test with ESMTPS id {rng.getrandbits(48):x}"
            f"\r\n\tfor <{USER}>; {email.utils.formatdate(stamp)}",
            f"From: {sender}",
            f"To: Bench User <{USER}>",
        ]
        if rng.random() < 0.3:
            headers.append(f"Cc: {address()}, {address()}")
        subject = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 9))).capitalize()
        headers += [
            f"Subject: {'Re: ' if rng.random() < 0.3 else ''}{subject}",
            f"Date: {email.utils.formatdate(stamp - rng.randrange(5, 600))}",
            f"Message-ID: <{rng.getrandbits(64):016x}.{index}@{rng.choice(DOMAINS)}>",
            "MIME-Version: 1.0",
        ]
        text = paragraph(int(rng.lognormvariate(6.6, 0.8)) % 6000 + 200, word)
        kind = rng.random()
        if kind < 0.10:
            boundary = f"=_alt_{rng.getrandbits(40):x}"
            html = "<html><body><p>" + text.replace("\r\n", "<br>\r\n") + "</p></body></html>"
            headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
            body = (f"This is a multi-part message in MIME format.\r\n\r\n--{boundary}\r\n"
                    f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--{boundary}\r\n"
                    f"Content-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--{boundary}--\r\n")
        elif kind < 0.20:
            boundary = f"=_mixed_{rng.getrandbits(40):x}"
            blob = bytes(rng.getrandbits(8) for _ in range(rng.randrange(300, 3000)))
            encoded = base64.encodebytes(blob).decode().replace("\n", "\r\n")
            headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
            body = (f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--{boundary}\r\n"
                    f"Content-Type: application/pdf; name=\"doc{index}.pdf\"\r\n"
                    f"Content-Disposition: attachment; filename=\"doc{index}.pdf\"\r\n"
                    f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}--{boundary}--\r\n")
        else:
            headers.append("Content-Type: text/plain; charset=utf-8")
            body = text + "\r\n"
        messages.append((("\r\n".join(headers) + "\r\n\r\n" + body).encode(), stamp))
    return messages, with_word


def imap_date(stamp):
    return time.strftime("%d-%b-%Y %H:%M:%S +0000", time.gmtime(stamp))


# --- a small IMAP client -------------------------------------------------------------------------------------

LITERAL = re.compile(rb"\{(\d+)\+?\}$")


class ImapError(RuntimeError):
    pass


class Imap:
    """Just enough IMAP for the bench, cheaper than imaplib on 10,000-response commands: reads responses with their
    literals (skipped, only counted), keeps the untagged lines' text only when asked."""

    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = bytearray()
        self.pos = 0
        self.serial = 0
        greeting, _ = self.response()
        if not greeting.startswith(b"* OK"):
            raise ImapError(f"greeting {greeting[:200]!r}")
        self.capabilities = set()

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def fill(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        self.buffer += chunk

    def response(self):
        """One response line with its literals: (its text before the first literal, octets in literals)."""
        if self.pos > 1 << 20:
            del self.buffer[:self.pos]
            self.pos = 0
        start = scan = self.pos
        first = None
        octets = 0
        while True:
            end = self.buffer.find(b"\r\n", scan)
            if end < 0:
                self.fill()
                continue
            if first is None:
                first = bytes(self.buffer[start:end])
            match = LITERAL.search(self.buffer, max(scan, end - 24), end)
            if match:
                size = int(match.group(1))
                need = end + 2 + size
                while len(self.buffer) < need:
                    self.fill()
                octets += size
                scan = need
                continue
            self.pos = end + 2
            return first, octets

    def next_tag(self):
        self.serial += 1
        return f"T{self.serial:05d}".encode()

    def finish(self, tag, command, keep):
        """Reads up to the tagged reply; returns (untagged count, literal octets, kept untagged lines)."""
        untagged, octets, kept = 0, 0, []
        while True:
            line, size = self.response()
            octets += size
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1:].startswith(b"OK"):
                    raise ImapError(f"{command[:60]!r} answered {line[:300]!r}")
                return untagged, octets, kept
            if line.startswith(b"* "):
                untagged += 1
                if keep and keep in line:
                    kept.append(line)

    def command(self, text, keep=None):
        tag = self.next_tag()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        return self.finish(tag, text, keep)

    def login(self, user, password):
        self.command(f'LOGIN "{user}" "{password}"')
        _, _, lines = self.command("CAPABILITY", keep=b"CAPABILITY")
        self.capabilities = set(b" ".join(lines).upper().split())

    def append(self, mailbox, message, stamp):
        plus = b"LITERAL+" in self.capabilities
        tag = self.next_tag()
        head = tag + f' APPEND "{mailbox}" () "{imap_date(stamp)}" {{{len(message)}{"+" if plus else ""}}}\r\n'.encode()
        if plus:
            self.sock.sendall(head + message + b"\r\n")
        else:
            self.sock.sendall(head)
            line, _ = self.response()
            if not line.startswith(b"+"):
                raise ImapError(f"APPEND answered {line[:300]!r} instead of a continuation")
            self.sock.sendall(message + b"\r\n")
        self.finish(tag, "APPEND", None)

    def logout(self):
        with contextlib.suppress(OSError, ImapError, ConnectionError):
            self.command("LOGOUT")
        self.close()


# --- Dovecot -------------------------------------------------------------------------------------------------

def ensure_dovecot():
    if subprocess.run(["dpkg", "-s", "dovecot-imapd"], capture_output=True).returncode != 0:
        log("dovecot-imapd is missing: installing it with apt-get")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = ["apt-get", "install", "-y", "--no-install-recommends", "dovecot-imapd"]
        if subprocess.run(install, env=env).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, check=True)
            subprocess.run(install, env=env, check=True)
        # The package may start the system's instance: the bench uses its own ports, but stops it to keep the
        # machine quiet.
        for command in (["systemctl", "disable", "--now", "dovecot"], ["service", "dovecot", "stop"]):
            subprocess.run(command, capture_output=True)


class Dovecot:
    """A private Dovecot in root/dovecot: its own base and state folders, passwd-file users, a Maildir home."""

    name = "Dovecot"

    def __init__(self, root):
        self.root = root / "dovecot"
        self.config = self.root / "dovecot.conf"
        self.log = self.root / "dovecot.log"
        self.home = self.root / "home" / "bench"
        self.maildir = self.home / "Maildir"
        self.port = free_port()
        self.master = None

    def write_config(self):
        passwd = self.root / "passwd"
        passwd.write_text(f"{USER}:{{PLAIN}}{PASSWORD}:{MAIL_UID}:{MAIL_UID}::{self.home}::\n")
        self.config.write_text(f"""\
base_dir = {self.root / 'run'}
state_dir = {self.root / 'state'}
instance_name = tern-bench-dovecot
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {self.log}
mail_location = maildir:~/Maildir
first_valid_uid = 1
mail_max_userip_connections = 20000
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {passwd}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""")

    def setup(self, messages):
        """Writes the messages as Maildir files in cur/, LF line endings, with the names and the ,S= and ,W= sizes
        a delivery agent gives them (synthetic names make Dovecot's hashing collide)."""
        for sub in ("run", "state", "home"):
            (self.root / sub).mkdir(parents=True, mode=0o755, exist_ok=True)
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True, mode=0o700)
        rng = random.Random(7)
        for message, stamp in messages:
            data = message.replace(b"\r\n", b"\n")
            name = (f"{stamp}.M{rng.randrange(1000000)}P{rng.randrange(1000, 60000)}.mail.example.test"
                    f",S={len(data)},W={len(message)}:2,")
            path = self.maildir / "cur" / name
            path.write_bytes(data)
            os.utime(path, (stamp, stamp))
        for dirpath, dirnames, filenames in os.walk(self.root / "home"):
            os.chown(dirpath, MAIL_UID, MAIL_UID)
            for filename in filenames:
                os.chown(os.path.join(dirpath, filename), MAIL_UID, MAIL_UID)
        self.write_config()

    def start(self):
        # The master forks into the background and keeps the descriptors it was given: no pipes, or a wait for
        # their end never returns.
        with open(self.root / "stderr.log", "ab") as errors:
            started = subprocess.run(["dovecot", "-c", str(self.config)], stdin=subprocess.DEVNULL,
                                     stdout=errors, stderr=errors, timeout=60)
        if started.returncode != 0:
            raise RuntimeError(f"dovecot exited {started.returncode}:\n"
                               + (self.root / "stderr.log").read_text(errors="replace") + self.log_text())
        pid_file = self.root / "run" / "master.pid"
        deadline = time.monotonic() + 20
        while self.master is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                self.master = int(pid_file.read_text().split()[0])
            time.sleep(0.05)
        if self.master is None or not wait_listening(self.port, lambda: pid_alive(self.master)):
            raise RuntimeError(f"dovecot did not start:\n{self.log_text()}")

    def stop(self):
        if self.master is None:
            with contextlib.suppress(OSError, ValueError):
                self.master = int((self.root / "run" / "master.pid").read_text().split()[0])
        if self.master is None:
            return
        subprocess.run(["doveadm", "-c", str(self.config), "stop"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        deadline = time.monotonic() + 15
        while pid_alive(self.master) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(self.master):
            for pid in children_of(self.master) + [self.master]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.master = None

    def alive(self):
        return self.master is not None and pid_alive(self.master)

    def cpu_ticks(self):
        """The master's own time, what it collected from exited children (login, imap, auth, ...), and its living
        children's time."""
        master = proc_stat(self.master)
        total = master[1] + master[2]
        for pid in children_of(self.master):
            stat = proc_stat(pid)
            if stat:
                total += stat[1] + stat[2]
        return total

    def version(self):
        return run(["dovecot", "--version"]).stdout.strip()

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def problems(self):
        return [line for line in self.log_text().splitlines()
                if any(word in line for word in ("Error:", "Fatal:", "Panic:", "Warning:"))]


# --- Tern ----------------------------------------------------------------------------------------------------

class Tern:
    """`tern serve` with one plain imap listener, a fresh data folder and the user bench@example.test."""

    name = "Tern"

    def __init__(self, root):
        self.root = root / "tern"
        self.data = self.root / "var"
        self.config = self.root / "tern.toml"
        self.log = self.root / "tern.log"
        self.binary = self.root / "tern"
        self.plugins = self.root / "plugins"
        self.port = free_port()
        self.process = None
        self.stderr = None

    def write_config(self):
        self.config.write_text("\n".join([
            "[server]",
            'hostname = "tern.bench.test"',
            f'data_dir = "{self.data}"',
            "shutdown_grace = 5",
            "[plugins]",
            f'dirs = ["{self.plugins}"]',
            "[log]",
            f'file = "{self.log}"',
            "[limits]",
            "max_connections = 20000",
            "max_connections_per_client = 20000",
            "max_auth_failures = 1000000",
            "[[listener]]",
            'protocol = "imap"',
            f'address = "127.0.0.1:{self.port}"',
            'tls = "none"',
            "allow_plaintext_auth = true",
        ]) + "\n")

    def cli(self, *args, input=None):
        return run([self.binary, "-c", str(self.config), *args], input=input, timeout=60)

    def setup(self):
        """Copies the binary and the plugins first: a rebuild during the run then changes nothing measured."""
        self.root.mkdir(mode=0o755)
        shutil.copy2(TERN, self.binary)
        self.plugins.mkdir()
        for library in Path(PLUGIN_DIR).glob("*.so"):
            shutil.copy2(library, self.plugins)
        self.write_config()
        self.cli("domain", "add", "example.test")
        self.cli("user", "add", USER, input=PASSWORD + "\n")

    def start(self):
        self.stderr = open(self.root / "stderr.log", "ab")
        for _ in range(3):
            self.process = subprocess.Popen([self.binary, "-c", str(self.config), "serve"], stdout=subprocess.DEVNULL,
                                            stderr=self.stderr, start_new_session=True)
            if wait_listening(self.port, lambda: self.process.poll() is None):
                break
            if self.process.poll() is None:
                self.stop()
            if "cannot listen on" not in self.log_text():
                raise RuntimeError(f"tern serve did not start:\n{self.log_text()}")
            self.port = free_port()
            self.write_config()
        else:
            raise RuntimeError(f"tern serve did not start:\n{self.log_text()}")

    def stop(self):
        stop_process(self.process)
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def cpu_ticks(self):
        return proc_stat(self.process.pid)[1]

    def version(self):
        """What was copied: copy2 keeps the files' times."""
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip() or "?"
        changed = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True).stdout.strip()
        built = datetime.datetime.fromtimestamp(self.binary.stat().st_mtime).isoformat(timespec="seconds")
        imap = datetime.datetime.fromtimestamp((self.plugins / "tern-imap.so").stat().st_mtime)
        return (f"binary built {built}, imap plugin {imap.isoformat(timespec='seconds')}, tree at {commit}"
                f"{' with uncommitted changes' if changed else ''}")

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def problems(self):
        return tern_log_problems(self.log_text())


def load_tern(tern, messages, connections, timeout):
    """APPENDs the messages to Tern's INBOX over `connections` connections, each a contiguous slice, in parallel."""
    errors = []
    slices = [messages[i::connections] for i in range(connections)]

    def worker(part):
        try:
            client = Imap(tern.port, timeout)
            client.login(USER, PASSWORD)
            for message, stamp in part:
                client.append("INBOX", message, stamp)
            client.logout()
        except Exception as failure:  # reported by the main thread
            errors.append(failure)

    threads = [threading.Thread(target=worker, args=(part,), daemon=True) for part in slices]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if errors or any(thread.is_alive() for thread in threads):
        state = "still running" if tern.alive() else f"exited with {tern.process.returncode}"
        raise RuntimeError(f"loading Tern failed: {errors[:3] or 'timeout'}; Tern {state}; its log ends:\n"
                           + "\n".join(tern.log_text().splitlines()[-20:]))
    return time.monotonic() - start


# --- measurement ---------------------------------------------------------------------------------------------

OPERATIONS = ("select+fetch headers", "fetch bodies", "search text", "store flags", "append")


def measure(server, messages, expected, append_count, repeat, timeout):
    """One repeat of the five operations on one server. Returns {operation: result dict}."""
    results = {}

    def timed(name, action, units=None):
        cpu_before = server.cpu_ticks()
        machine_before, own_before = machine_busy_ticks(), time.process_time()
        start = time.monotonic()
        detail = action()
        elapsed = time.monotonic() - start
        time.sleep(0.1)  # let the server's processes finish what follows the reply before reading its CPU time
        if not server.alive():
            raise RuntimeError(f"{server.name} exited during {name}; its log ends:\n"
                               + "\n".join(server.log_text().splitlines()[-20:]))
        cpu = (server.cpu_ticks() - cpu_before) / CLOCK_TICKS
        machine = (machine_busy_ticks() - machine_before) / CLOCK_TICKS
        own = time.process_time() - own_before
        others = max(machine - cpu - own, 0.0) / (elapsed + 0.1)
        results[name] = {"elapsed": elapsed, "cpu": cpu, "client": own, "others": others, "detail": detail,
                         "rate": units / elapsed if units else None}

    client = Imap(server.port, timeout)
    try:
        client.login(USER, PASSWORD)

        def select_fetch_headers():
            client.command("SELECT INBOX")
            count, octets, _ = client.command("FETCH 1:* (BODY.PEEK[HEADER])")
            if count != expected["count"]:
                raise ImapError(f"FETCH headers gave {count} responses, expected {expected['count']}")
            return f"{octets / 1e6:.1f} MB of headers"

        def fetch_bodies():
            count, octets, _ = client.command("FETCH 1:* (BODY.PEEK[])")
            if count != expected["count"]:
                raise ImapError(f"FETCH bodies gave {count} responses, expected {expected['count']}")
            if octets != expected["octets"]:
                raise ImapError(f"FETCH bodies gave {octets} octets, expected {expected['octets']}")
            return f"{octets / 1e6:.1f} MB"

        def search_text():
            _, _, lines = client.command(f'SEARCH TEXT "{SEARCH_WORD}"', keep=b"SEARCH")
            found = sum(len(line.split()) - 2 for line in lines)
            if found != expected["search"]:
                raise ImapError(f"SEARCH TEXT found {found} messages, expected {expected['search']}")
            return f"{found} found"

        def store_flags():
            client.command("STORE 1:* +FLAGS.SILENT (\\Flagged)")
            client.command("STORE 1:* -FLAGS.SILENT (\\Flagged)")
            return "+ and -"

        timed("select+fetch headers", select_fetch_headers)
        timed("fetch bodies", fetch_bodies)
        timed("search text", search_text)
        timed("store flags", store_flags)
        _, _, lines = client.command('SEARCH FLAGGED', keep=b"SEARCH")
        if any(len(line.split()) > 2 for line in lines):
            raise ImapError(f"messages still \\Flagged after -FLAGS: {lines[0][:200]!r}")
    finally:
        client.logout()

    mailbox = f"Append{repeat}"
    client = Imap(server.port, timeout)
    try:
        client.login(USER, PASSWORD)
        client.command(f'CREATE "{mailbox}"')

        def append():
            for message, stamp in messages[:append_count]:
                client.append(mailbox, message, stamp)
            return "LITERAL+" if b"LITERAL+" in client.capabilities else "synchronizing literals"

        timed("append", append, units=append_count)
        _, _, lines = client.command(f'STATUS "{mailbox}" (MESSAGES)', keep=b"STATUS")
        if not lines or f"MESSAGES {append_count})".encode() not in lines[0]:
            raise ImapError(f"after APPEND: {lines[:1]!r}, expected {append_count} messages")
    finally:
        client.logout()
    return results


def warm_up(server, timeout):
    """One SELECT, not measured: Dovecot builds its index of the Maildir on the first one."""
    start = time.monotonic()
    client = Imap(server.port, timeout)
    try:
        client.login(USER, PASSWORD)
        client.command("SELECT INBOX")
    finally:
        client.logout()
    return time.monotonic() - start


# --- IDLE sessions -------------------------------------------------------------------------------------------

def idle_sessions(tern, count, mailbox, parallel, timeout, max_rss_kib):
    """Opens `count` sessions to Tern, each LOGIN + SELECT + IDLE (pipelined once the greeting is read), at most
    `parallel` of them logging in at a time. Returns a dict with Tern's memory before, with them open and after
    they are closed, how many failed and why, and how long the opening took. Stops opening sessions when Tern's
    VmRSS passes max_rss_kib: the machine is shared."""
    script = f'a LOGIN "{USER}" "{PASSWORD}"\r\nb SELECT "{mailbox}"\r\nc IDLE\r\n'.encode()
    selector = selectors.DefaultSelector()
    idle, pending, failures = [], {}, []
    started = 0
    pid = tern.process.pid
    time.sleep(1)
    before = status_field(pid, "VmRSS")
    start = time.monotonic()
    last_report = start
    capped = False

    def fail(sock, reason):
        failures.append(reason)
        selector.unregister(sock)
        del pending[sock]
        sock.close()

    try:
        while len(idle) + len(failures) < count:
            now = time.monotonic()
            while started < count and len(pending) < parallel:
                try:
                    sock = socket.create_connection(("127.0.0.1", tern.port), timeout=10)
                except OSError as error:
                    failures.append(f"connect: {error}")
                    started += 1
                    continue
                sock.setblocking(False)
                pending[sock] = [bytearray(), False, now + timeout]
                selector.register(sock, selectors.EVENT_READ)
                started += 1
            for key, _ in selector.select(timeout=0.5):
                sock = key.fileobj
                state = pending[sock]
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as error:
                    fail(sock, f"recv: {error}")
                    continue
                if not data:
                    fail(sock, f"closed by the server after {bytes(state[0][-200:])!r}")
                    continue
                state[0] += data
                if not state[1]:
                    if b"\r\n" in state[0]:
                        if not state[0].startswith(b"* OK"):
                            fail(sock, f"greeting {bytes(state[0][:200])!r}")
                            continue
                        sock.setblocking(True)
                        sock.sendall(script)
                        sock.setblocking(False)
                        state[1] = True
                    continue
                text = bytes(state[0])
                bad = re.search(rb"(?:^|\r\n)([abc] (?:NO|BAD)[^\r]*)", text)
                if bad or b"* BYE" in text:
                    fail(sock, (bad.group(1) if bad else text[text.find(b"* BYE"):][:200]).decode(errors="replace"))
                    continue
                if b"\r\n+" in text and b"\r\nb OK" in text:
                    selector.unregister(sock)
                    del pending[sock]
                    idle.append(sock)
            for sock, state in list(pending.items()):
                if now > state[2]:
                    fail(sock, "no IDLE continuation in time")
            if not tern.alive():
                raise RuntimeError("Tern exited while the IDLE sessions were opened; its log ends:\n"
                                   + "\n".join(tern.log_text().splitlines()[-20:]))
            if len(failures) > max(50, count // 20):
                break
            if len(idle) % 100 == 0 and status_field(pid, "VmRSS") > max_rss_kib:
                capped = True
                break
            if now - last_report > 30:
                log(f"  ... {len(idle)} sessions in IDLE, {len(failures)} failed, {now - start:.0f} s")
                last_report = now
        opened = time.monotonic() - start
        time.sleep(2)
        during = status_field(pid, "VmRSS")
        peak = status_field(pid, "VmHWM")
        threads = status_field(pid, "Threads")
        # Still there? Every session must be in IDLE: one NOOP-free check, a few read nothing or a keepalive.
        closed = 0
        for sock in idle[:: max(1, len(idle) // 100)]:
            try:
                if sock.recv(4096, socket.MSG_DONTWAIT) == b"":
                    closed += 1
            except BlockingIOError:
                pass
    finally:
        for sock in idle + list(pending):
            with contextlib.suppress(OSError):
                sock.close()
        selector.close()
    time.sleep(2)
    after = status_field(pid, "VmRSS")
    reasons = {}
    for reason in failures:
        reasons[reason] = reasons.get(reason, 0) + 1
    return {"open": len(idle), "failed": len(failures), "reasons": reasons, "seconds": opened, "before": before,
            "during": during, "peak": peak, "after": after, "threads": threads, "closed_sampled": closed,
            "capped": capped}


# --- report --------------------------------------------------------------------------------------------------

def median_of(results, key):
    values = [result[key] for result in results if result.get(key) is not None]
    return statistics.median(values) if values else None


def describe_machine():
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} cores ({model}), Linux {platform.release()}"


def print_table(points, count, append_count):
    log("")
    header = (f"{'operation':<28}  {'Tern s':>8}  {'Dovecot s':>9}  {'Dovecot/Tern':>12}  {'Tern CPU s':>10}  "
              f"{'Dovecot CPU s':>13}")
    log(header)
    log("-" * len(header))
    labels = {"select+fetch headers": f"SELECT + FETCH {count} headers", "fetch bodies": f"FETCH {count} bodies",
              "search text": f"SEARCH TEXT ({count})", "store flags": f"STORE +/-FLAGS ({count})",
              "append": f"APPEND {append_count} (msg/s)"}
    for name in OPERATIONS:
        tern, dovecot = points["Tern"][name], points["Dovecot"][name]
        if name == "append":
            tern_value, dovecot_value = median_of(tern, "rate"), median_of(dovecot, "rate")
            ratio = tern_value / dovecot_value if tern_value and dovecot_value else None
            values = f"{fmt(tern_value, '{:.0f}'):>8}  {fmt(dovecot_value, '{:.0f}'):>9}"
        else:
            tern_value, dovecot_value = median_of(tern, "elapsed"), median_of(dovecot, "elapsed")
            ratio = dovecot_value / tern_value if tern_value and dovecot_value else None
            values = f"{fmt(tern_value, '{:.3f}'):>8}  {fmt(dovecot_value, '{:.3f}'):>9}"
        log(f"{labels[name]:<28}  {values}  {fmt(ratio, '{:.2f}'):>12}  {fmt(median_of(tern, 'cpu'), '{:.2f}'):>10}  "
            f"{fmt(median_of(dovecot, 'cpu'), '{:.2f}'):>13}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10000, help="messages in the INBOX (10000)")
    parser.add_argument("--append", type=int, default=1000, help="messages APPENDed per APPEND run (1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each operation on each server (3)")
    parser.add_argument("--seed", type=int, default=4, help="seed of the generated messages (4)")
    parser.add_argument("--load-connections", type=int, default=8, help="connections loading Tern's INBOX (8)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one IMAP command may take (600)")
    parser.add_argument("--idle-sessions", type=int, default=10000, help="IDLE sessions opened to Tern (10000)")
    parser.add_argument("--idle-mailbox", default="Empty,INBOX",
                        help="mailboxes the IDLE sessions select, one round of sessions each, comma-separated; one "
                             "that is missing is created empty (Empty,INBOX)")
    parser.add_argument("--idle-parallel", type=int, default=64, help="IDLE sessions logging in at once (64)")
    parser.add_argument("--idle-timeout", type=float, default=900, help="seconds for opening all IDLE sessions (900)")
    parser.add_argument("--idle-max-rss", type=int, default=4096,
                        help="MiB of Tern's VmRSS at which no more IDLE sessions are opened: the machine is shared "
                             "(4096)")
    parser.add_argument("--quick", action="store_true", help="small runs, to check the script works")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder, and print where it is")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.append, args.repeat, args.idle_sessions = 500, 50, 1, 100
    if os.geteuid() != 0:
        parser.error("run as root: Dovecot's private instance needs it")

    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, interrupt)

    ensure_dovecot()
    # Descriptors for the IDLE sessions, here and in `tern serve`, which inherits the hard limit and raises its
    # soft limit to it.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(hard, args.idle_sessions * 2 + 4096, 65536)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))

    root = Path(tempfile.mkdtemp(prefix="tern-imap-bench-"))
    root.chmod(0o755)  # Dovecot's processes (uid 65534, dovenull) must reach into it
    tern, dovecot = Tern(root), Dovecot(root)
    servers = [tern, dovecot]
    started = datetime.datetime.now()
    try:
        messages, with_word = make_messages(args.messages, args.seed)
        expected = {"count": args.messages, "octets": sum(len(message) for message, _ in messages),
                    "search": with_word}
        tern.setup()
        tern.start()
        dovecot.setup(messages)
        dovecot.start()
        log(f"IMAP benchmark, {started:%Y-%m-%d %H:%M}: {describe_machine()}")
        log(f"Tern: {tern.version()}; Dovecot {dovecot.version()}")
        log(f"Client and both servers share the machine's {os.cpu_count()} cores.")
        sizes = sorted(len(message) for message, _ in messages)
        log(f"{args.messages} messages (seed {args.seed}): {expected['octets'] / 1e6:.1f} MB, median "
            f"{sizes[len(sizes) // 2]} octets, largest {sizes[-1]}; '{SEARCH_WORD}' in {with_word} bodies. "
            f"Dovecot: Maildir files in cur/; Tern: APPENDed over {args.load_connections} connections.")
        seconds = load_tern(tern, messages, args.load_connections, args.timeout)
        log(f"Loading Tern by APPEND: {seconds:.1f} s, {args.messages / seconds:.0f} msg/s "
            f"over {args.load_connections} connections")
        for server in servers:
            log(f"First SELECT on {server.name} (not measured): {warm_up(server, args.timeout):.2f} s")
        log(f"{args.repeat} runs of each operation per server, alternating which server goes first; medians shown. "
            "Each run: LOGIN (not timed), then the four operations in one session, then APPEND on a new session.")
        log("CPU: Tern = utime+stime of the tern process; Dovecot = its master, its living children and those it "
            "reaped (imap, imap-login, auth, ...). 'others' = cores used meanwhile by other processes.")
        points = {server.name: {name: [] for name in OPERATIONS} for server in servers}
        for repeat in range(args.repeat):
            order = servers if repeat % 2 == 0 else servers[::-1]
            for server in order:
                results = measure(server, messages, expected, args.append, repeat, args.timeout)
                for name in OPERATIONS:
                    result = results[name]
                    points[server.name][name].append(result)
                    rate = f", {result['rate']:.0f} msg/s" if result["rate"] else ""
                    log(f"  run {repeat + 1} {server.name:<7} {name:<21} {result['elapsed']:8.3f} s{rate}  "
                        f"CPU {result['cpu']:6.2f} s, client {result['client']:5.2f} s, others "
                        f"{result['others']:.2f} cores  ({result['detail']})")
        print_table(points, args.messages, args.append)
        others = [result["others"] for server in points.values() for runs in server.values() for result in runs]
        log(f"(client and servers share the machine's {os.cpu_count()} cores; other processes used a median of "
            f"{statistics.median(others):.2f} cores, at most {max(others):.2f}, during the timed operations)")
        log(f"Tern's resident memory after the runs: VmRSS {status_field(tern.process.pid, 'VmRSS')} KiB, "
            f"peak VmHWM {status_field(tern.process.pid, 'VmHWM')} KiB")

        if args.idle_sessions:
            limits = Path(f"/proc/{tern.process.pid}/limits").read_text()
            files = next((line.split()[3:5] for line in limits.splitlines() if line.startswith("Max open files")), "?")
            for mailbox in [name for name in args.idle_mailbox.split(",") if name]:
                # Each round on a fresh process, so that its memory is not what an earlier round (or the timed
                # operations) left behind in the allocator.
                tern.stop()
                tern.start()
                if mailbox.upper() != "INBOX":
                    client = Imap(tern.port, args.timeout)
                    try:
                        client.login(USER, PASSWORD)
                        with contextlib.suppress(ImapError):
                            client.command(f'CREATE "{mailbox}"')
                        _, _, lines = client.command(f'STATUS "{mailbox}" (MESSAGES)', keep=b"STATUS")
                    finally:
                        client.logout()
                    size = lines[0].decode(errors="replace") if lines else "?"
                else:
                    size = f"{args.messages} messages"
                log(f"\nIDLE: {args.idle_sessions} sessions to Tern, LOGIN + SELECT {mailbox} ({size}) + IDLE, "
                    f"{args.idle_parallel} logging in at a time (open-files limits: Tern {'/'.join(files)}, the bench "
                    f"{'/'.join(map(str, resource.getrlimit(resource.RLIMIT_NOFILE)))})")
                idle = idle_sessions(tern, args.idle_sessions, mailbox, args.idle_parallel, args.idle_timeout,
                                     args.idle_max_rss * 1024)
                log(f"  {idle['open']} sessions in IDLE, {idle['failed']} failed, opened in {idle['seconds']:.0f} s "
                    f"({idle['open'] / max(idle['seconds'], 0.001):.0f} sessions/s)")
                if idle["capped"]:
                    log(f"  stopped opening sessions: Tern's VmRSS passed --idle-max-rss {args.idle_max_rss} MiB")
                for reason, number in sorted(idle["reasons"].items(), key=lambda item: -item[1])[:5]:
                    log(f"  failed {number}x: {reason}")
                if idle["closed_sampled"]:
                    log(f"  {idle['closed_sampled']} of the sampled sessions were closed by the server while idle")
                per_session = (idle["during"] - idle["before"]) / max(idle["open"], 1)
                log(f"  Tern VmRSS {idle['before']} KiB before, {idle['during']} KiB ({idle['during'] / 1024:.0f} MiB) "
                    f"with {idle['open']} sessions in IDLE, {idle['after']} KiB 2 s after closing them; VmHWM "
                    f"{idle['peak']} KiB; {idle['threads']} threads; {per_session:.1f} KiB per session; at that rate "
                    f"10,000 sessions would need {(idle['before'] + per_session * 10000) / 1048576:.2f} GiB "
                    f"(target: under 1 GiB)")
        log_problems(servers)
    finally:
        clean_up(servers, root, args.keep)


if __name__ == "__main__":
    run_bench(main)
