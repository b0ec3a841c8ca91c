"""Starts real `tern` processes on free loopback ports for the integration tests, and stops them by PID."""

import contextlib
import imaplib
import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

TERN = os.environ.get("TERN_BIN", str(Path(__file__).resolve().parents[2] / "build" / "tern"))
PLUGIN_DIR = os.environ.get("TERN_PLUGIN_DIR", str(Path(__file__).resolve().parents[2] / "build" / "plugins"))
FIXTURE_PLUGINS = os.environ.get("TERN_FIXTURE_PLUGINS", str(Path(PLUGIN_DIR).parent / "test-plugins"))

ALICE = "alice@example.test"
ALICE_PASSWORD = "alice-secret"
BOB = "bob@example.test"
BOB_PASSWORD = "bob-secret"


def free_port(host="127.0.0.1"):
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def fd_targets(pid):
    """What process `pid` holds open, from /proc: paths, and "socket:[inode]" for its sockets."""
    targets = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                targets.add(os.readlink(fd))
    return targets


def listening_ports(pid):
    """The TCP ports process `pid` listens on, from /proc: its sockets' inodes in the kernel's tables."""
    inodes = {target[len("socket:["):-1] for target in fd_targets(pid) if target.startswith("socket:[")}
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def insecure_context():
    """The server's certificate is self-signed: the tests check TLS works, not who signed it."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Tern:
    """One server's folder, config and process. Listeners are named; each gets a free port on `host` (a loopback
    address), unless `ports` fixes it (name -> port: a second server playing a remote MX on the outbound port)."""

    def __init__(self, root, listeners=None, extra="", plugin_dirs=None, host="127.0.0.1", ports=None,
                 hostname="mx.example.test", server_extra=""):
        self.root = Path(root)
        self.host = host
        self.hostname = hostname
        self.fixed_ports = dict(ports or {})
        self.data = self.root / "var"
        self.config = self.root / "tern.toml"
        self.log = self.root / "tern.log"
        self.listeners = listeners or {
            "smtp": ("smtp", "starttls", False),
            "submission": ("submission", "starttls", False),
            "submissions": ("submission", "implicit", False),
            "pop3": ("pop3", "starttls", False),
            "pop3s": ("pop3", "implicit", False),
            "pop3_plain": ("pop3", "none", True),
            "imap": ("imap", "starttls", False),
            "imaps": ("imap", "implicit", False),
        }
        self.ports = self.pick_ports()
        self.plugin_dirs = plugin_dirs or [PLUGIN_DIR]
        self.extra = extra
        self.server_extra = server_extra  # more [server] lines: user, group
        self.process = None
        self.write_config()

    def pick_ports(self):
        return {name: self.fixed_ports.get(name) or free_port(self.host) for name in self.listeners}

    def write_config(self, extra=None):
        if extra is not None:
            self.extra = extra
        lines = [
            "[server]",
            f'hostname = "{self.hostname}"',
            f'data_dir = "{self.data}"',
            "shutdown_grace = 5",
            *([self.server_extra] if self.server_extra else []),
            "[plugins]",
            "dirs = [" + ", ".join(f'"{d}"' for d in self.plugin_dirs) + "]",
            "[log]",
            f'file = "{self.log}"',
        ]
        for name, (protocol, tls, plaintext) in self.listeners.items():
            lines += [
                "[[listener]]",
                f'protocol = "{protocol}"',
                f'address = "{self.host}:{self.ports[name]}"',
                f'tls = "{tls}"',
            ]
            if plaintext:
                lines.append("allow_plaintext_auth = true")
        self.config.write_text("\n".join(lines) + "\n" + self.extra + "\n")

    def cli(self, *args, input=None, check=True):
        result = subprocess.run([TERN, "-c", str(self.config), *args], input=input, capture_output=True, text=True,
                                timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"tern {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    def add_users(self):
        self.cli("domain", "add", "example.test")
        self.cli("user", "add", ALICE, input=ALICE_PASSWORD + "\n")
        self.cli("user", "add", BOB, input=BOB_PASSWORD + "\n")

    def start(self, attempts=3):
        """Starts `tern serve` and waits until it listens on every port. Ports are picked free but another test
        may take one first: on a bind failure the ports are picked again."""
        for _ in range(attempts):
            self.process = subprocess.Popen([TERN, "-c", str(self.config), "serve"], stdout=subprocess.DEVNULL,
                                            stderr=open(self.root / "stderr.log", "ab"))
            if self._wait_listening():
                return self
            if "cannot listen on" not in self.log_text():
                break
            self.ports = self.pick_ports()
            self.write_config()
        raise AssertionError(f"tern serve did not start (exit {self.process.returncode}): {self.stderr()}\n"
                             f"{self.log_text()}")

    def _wait_listening(self):
        # Every port, not the first one only: the server binds them in turn and exits when one is taken, so a
        # client of the first could otherwise meet a server that is gone. Read from /proc, as a probing
        # connection would count against the per-address limits some tests set.
        deadline = time.monotonic() + 20
        wanted = set(self.ports.values())
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if wanted <= listening_ports(self.process.pid):
                return True
            time.sleep(0.05)
        self.process.kill()
        self.process.wait()
        return False

    def signal(self, number):
        self.process.send_signal(number)

    def stop(self, timeout=30):
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()

    def kill(self):
        self.process.kill()
        self.process.wait()

    def log_text(self):
        return self.log.read_text() if self.log.exists() else ""

    def stderr(self):
        path = self.root / "stderr.log"
        return path.read_text() if path.exists() else ""

    def wait_for_log(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text():
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never appeared in the log:\n{self.log_text()}")

    def port(self, name):
        return self.ports[name]

    def messages(self, user=ALICE, password=ALICE_PASSWORD, folder="INBOX"):
        """The messages of a user's folder, whole, as bytes, read over IMAPS without marking them seen."""
        with imaplib.IMAP4_SSL(self.host, self.port("imaps"), ssl_context=insecure_context()) as client:
            client.login(user, password)
            status, data = client.select(f'"{folder}"', readonly=True)
            assert status == "OK", data
            return [client.fetch(str(n), "(BODY.PEEK[])")[1][0][1] for n in range(1, int(data[0]) + 1)]


@pytest.fixture
def tern(tmp_path):
    """A configured server with example.test, alice and bob, not started."""
    server = Tern(tmp_path)
    server.add_users()
    yield server
    server.stop()


@pytest.fixture
def running(tern):
    """The same server, started."""
    return tern.start()
