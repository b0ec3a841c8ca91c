#!/usr/bin/python3
"""SMTP intake benchmark (issue 3): Tern against a private Postfix, side by side on loopback.

For each number of parallel sessions and each message size, /usr/sbin/smtp-source sends N messages to one
recipient, bench@example.test, first to one server and then to the other (the order alternates between
repeats). A run is timed from the start of smtp-source until every message is in the recipient's mailbox:
rows of Tern's messages table, files in Postfix's Maildir. Medians over the repeats are printed with the
servers' CPU time per message, and Tern's memory per idle SMTP session.

Everything runs on 127.0.0.1 and in one temporary folder, is bounded in time, and is stopped by PID at the
end, on error and on Ctrl-C. Run it as root with Debian's /usr/bin/python3 (standard library only); it
installs postfix with apt-get when it is missing, without starting the system's instance.
"""

import argparse
import contextlib
import datetime
import os
import platform
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench_support import (CLOCK_TICKS, SMTP_SOURCE, children_cpu_seconds, clean_up, ensure_postfix, fmt, free_port,
                           interrupt, log, log_problems, machine_busy_ticks, PostfixInstance, proc_stat, run, run_bench,
                           stop_process, tern_config, tern_log_problems, tern_paths, wait_listening)

REPO = Path(__file__).resolve().parents[2]
TERN = os.environ.get("TERN_BIN", str(REPO / "build" / "tern"))
PLUGIN_DIR = os.environ.get("TERN_PLUGIN_DIR", str(REPO / "build" / "plugins"))
RECIPIENT = "bench@example.test"
SENDER = "sender@client.test"
MAIL_UID = 65534  # nobody: Postfix's virtual agent refuses uid 0


# --- /proc ---------------------------------------------------------------------------------------------------

def rss_kib(pid, field="VmRSS"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


# --- Postfix -------------------------------------------------------------------------------------------------

class Postfix(PostfixInstance):
    """The private instance (bench_support) delivering to bench@example.test's Maildir through `virtual`."""

    def __init__(self, root):
        super().__init__(root)
        self.mail = self.root / "mail"
        self.maildir = self.mail / "example.test" / "bench"

    def prepare(self):
        (self.mail / "example.test").mkdir(parents=True, mode=0o755)
        os.chown(self.mail / "example.test", MAIL_UID, MAIL_UID)
        (self.etc / "vmailbox").write_text(f"{RECIPIENT} example.test/bench/\n")

    def settings(self):
        return dict(super().settings(), **{
            "virtual_mailbox_domains": "example.test",
            "virtual_mailbox_base": str(self.mail),
            "virtual_mailbox_maps": f"texthash:{self.etc / 'vmailbox'}",
            "virtual_uid_maps": f"static:{MAIL_UID}",
            "virtual_gid_maps": f"static:{MAIL_UID}",
        })

    def count(self):
        total = 0
        for sub in ("new", "cur"):
            with contextlib.suppress(FileNotFoundError):
                total += len(os.listdir(self.maildir / sub))
        return total

    def reset_mailbox(self):
        """Empties the Maildir between runs, so that counting the files stays cheap for the polling client."""
        for sub in ("new", "cur"):
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(self.maildir / sub):
                    os.unlink(entry.path)


# --- Tern ----------------------------------------------------------------------------------------------------

class Tern:
    """`tern serve` with one plain smtp listener, a fresh data folder and the user bench@example.test. `build` is
    the folder of the binary and its plugins/ (an earlier build, for --baseline), or None for this tree's build."""

    def __init__(self, root, name="Tern", build=None):
        tern_paths(self, root, name, build, TERN, PLUGIN_DIR)
        self.port = free_port()
        self.process = None
        self.stderr = None
        self.db = None

    def write_config(self):
        self.config.write_text(tern_config(self.data, self.plugins, self.log, self.port))

    def cli(self, *args, input=None):
        return run([self.binary, "-c", str(self.config), *args], input=input, timeout=60)

    def setup(self):
        """Copies the binary and the plugins first: a rebuild during the run then changes nothing measured."""
        self.root.mkdir(mode=0o755)
        shutil.copy2(self.source_binary, self.binary)
        self.plugins.mkdir()
        for library in self.source_plugins.glob("*.so"):
            shutil.copy2(library, self.plugins)
        self.write_config()
        self.cli("domain", "add", "example.test")
        self.cli("user", "add", RECIPIENT, input="bench-password\n")

    def start(self):
        self.stderr = open(self.root / "stderr.log", "ab")
        for _ in range(3):
            # A session of its own: a Ctrl-C in the terminal reaches the bench, which then stops the server.
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
        self.db = sqlite3.connect(f"file:{self.data / 'tern.db'}?mode=ro", uri=True, timeout=10)

    def stop(self):
        if self.db is not None:
            self.db.close()
            self.db = None
        stop_process(self.process)
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None

    def count(self):
        return self.db.execute(
            "SELECT count(*) FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id "
            "JOIN users u ON b.user_id = u.id WHERE u.address = ?", (RECIPIENT,)).fetchone()[0]

    def reset_mailbox(self):
        pass  # counting rows stays cheap; the rows stay

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def cpu_ticks(self):
        return proc_stat(self.process.pid)[1]

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def problems(self):
        return tern_log_problems(self.log_text())


# --- measurement ---------------------------------------------------------------------------------------------

def smtp_source(server, sessions, size, count, reuse):
    command = [SMTP_SOURCE, "-4", "-s", str(sessions), "-m", str(count), "-l", str(size), "-f", SENDER,
               "-t", RECIPIENT, "-M", "client.test"]
    if reuse:
        command.append("-d")
    return command + [f"127.0.0.1:{server.port}"]


def measure(server, sessions, size, count, reuse, timeout):
    """Sends `count` messages and waits for them in the mailbox. Returns a dict; `error` is set on failure."""
    server.reset_mailbox()
    base = server.count()
    cpu_before = server.cpu_ticks()
    machine_before, client_before, own_before = machine_busy_ticks(), children_cpu_seconds(), time.process_time()
    start = time.monotonic()
    client = subprocess.Popen(smtp_source(server, sessions, size, count, reuse), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    client_done = None
    error = None
    finished = False
    try:
        while True:
            now = time.monotonic()
            if client_done is None and client.poll() is not None:
                client_done = now
                if client.returncode != 0:
                    error = f"smtp-source exited {client.returncode}: {client.stderr.read().strip()[-500:]}"
            stored = server.count() - base
            if stored >= count:
                break
            if not server.alive():
                error = f"{server.name} exited with {stored} of {count} in the mailbox"
            if error:
                break
            if now - start > timeout:
                error = f"timeout after {timeout:.0f} s: {stored} of {count} in the mailbox"
                break
            time.sleep(0.01)
        elapsed = time.monotonic() - start
        finished = True
    finally:
        if client.poll() is None:
            if error or not finished:  # a failure, or Ctrl-C: the client goes at once
                client.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                client.wait(timeout=timeout)
            if client.poll() is None:
                client.kill()
                client.wait()
        if client_done is None:
            client_done = time.monotonic()
    time.sleep(0.3)  # let the server finish what follows the last delivery before reading its CPU time
    if not server.alive():
        raise RuntimeError(f"{server.name} exited during a run ({error}); its log ends:\n"
                           + "\n".join(server.log_text().splitlines()[-20:]))
    cpu = (server.cpu_ticks() - cpu_before) / CLOCK_TICKS
    client_cpu = children_cpu_seconds() - client_before
    machine = (machine_busy_ticks() - machine_before) / CLOCK_TICKS
    others = machine - cpu - client_cpu - (time.process_time() - own_before)
    return {"elapsed": elapsed, "client": client_done - start, "rate": count / elapsed, "cpu_ms": cpu * 1000 / count,
            "client_ms": client_cpu * 1000 / count, "others": max(others, 0.0) / (elapsed + 0.3), "error": error}


def read_reply(sock, buffer):
    """Reads one SMTP reply (all its lines); returns (last line, rest of buffer)."""
    while True:
        while b"\r\n" in buffer:
            line, buffer = buffer.split(b"\r\n", 1)
            if len(line) < 4 or line[3:4] != b"-":
                return line.decode(errors="replace"), buffer
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed by the server")
        buffer += chunk


def open_session(port):
    """A connection that has read the 220 greeting and had its EHLO answered 250."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        greeting, rest = read_reply(sock, b"")
        if not greeting.startswith("220"):
            raise RuntimeError(f"greeting {greeting!r}")
        sock.sendall(b"EHLO client.test\r\n")
        reply, _ = read_reply(sock, rest)
        if not reply.startswith("250"):
            raise RuntimeError(f"EHLO answered {reply!r}")
    except BaseException:
        sock.close()
        raise
    return sock


def idle_sessions(tern, count):
    """Opens `count` SMTP sessions that stay idle after EHLO; returns Tern's VmRSS in KiB before, while they are
    open, and one second after they are closed. Ten sessions come and go first, so that what the first session
    sets up once is not counted."""
    for _ in range(10):
        open_session(tern.port).close()
    time.sleep(1)
    before = rss_kib(tern.process.pid)
    sockets = []
    try:
        for _ in range(count):
            sockets.append(open_session(tern.port))
        time.sleep(1)
        during = rss_kib(tern.process.pid)
    finally:
        for sock in sockets:
            sock.close()
    time.sleep(1)
    after = rss_kib(tern.process.pid)
    return before, during, after


# --- report --------------------------------------------------------------------------------------------------

def size_label(size):
    return f"{size // 1024} KB" if size % 1024 == 0 else f"{size} B"


def median_of(results, key):
    values = [result[key] for result in results if not result["error"]]
    return statistics.median(values) if values else None


def describe_machine(binary):
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"
    changed = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True).stdout.strip()
    built = datetime.datetime.fromtimestamp(binary.stat().st_mtime).isoformat(timespec="seconds")
    postfix = run(["postconf", "-d", "-h", "mail_version"]).stdout.strip()
    return (f"{os.cpu_count()} cores ({model}), Linux {platform.release()}; Tern binary built {built} from "
            f"{commit}{' with uncommitted changes' if changed else ''}; Postfix {postfix}")


def print_table(points, names):
    """One row a point: each server's median rate, the ratio of each to the last (Postfix), and each one's CPU."""
    log("")
    reference = names[-1]
    columns = ([f"{name} msg/s" for name in names] + [f"{name}/{reference}" for name in names[:-1]]
               + [f"{name} CPU ms/msg" for name in names])
    if len(names) == 3:
        columns.append(f"{names[0]}/{names[1]} msg/s")
    header = f"{'sessions':>8}  {'size':>6}  {'N':>5}  " + "  ".join(f"{column:>{max(len(column), 8)}}" for column in columns)
    log(header)
    log("-" * len(header))
    for (sessions, size, count), results in points.items():
        rates = [median_of(results[name], "rate") for name in names]
        values = [fmt(rate, "{:.0f}") for rate in rates]
        values += [fmt(rate / rates[-1] if rate and rates[-1] else None, "{:.2f}") for rate in rates[:-1]]
        values += [fmt(median_of(results[name], "cpu_ms"), "{:.2f}") for name in names]
        if len(names) == 3:
            values.append(fmt(rates[0] / rates[1] if rates[0] and rates[1] else None, "{:.3f}"))
        failures = sum(1 for name in names for result in results[name] if result["error"])
        log(f"{sessions:>8}  {size_label(size):>6}  {count:>5}  "
            + "  ".join(f"{value:>{max(len(column), 8)}}" for value, column in zip(values, columns))
            + (f"  ({failures} failed runs)" if failures else ""))


def parse_list(text):
    return [int(part) for part in text.split(",") if part]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=parse_list, default=[1, 20, 100], help="comma-separated (1,20,100)")
    parser.add_argument("--sizes", type=parse_list, default=[1024, 102400], help="octets, comma-separated")
    parser.add_argument("--messages", type=parse_list, default=[3000, 1000],
                        help="messages per run, one count per size (3000,1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each point on each server (3)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds one run may take (120)")
    parser.add_argument("--idle-sessions", type=int, default=1000, help="idle SMTP sessions opened to Tern (1000)")
    parser.add_argument("--connection-per-message", action="store_true",
                        help="let smtp-source open a new connection per message (default: -d, one per session)")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also measure an earlier build (DIR/tern and DIR/plugins), alternating with this one")
    parser.add_argument("--quick", action="store_true", help="small runs, to check the script works")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder, and print where it is")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.repeat, args.idle_sessions = [100, 20], 1, 100
    if len(args.messages) != len(args.sizes):
        parser.error("--messages needs one count per size")
    if os.geteuid() != 0:
        parser.error("run as root: Postfix's private instance needs it")
    reuse = not args.connection_per_message

    # SIGTERM and SIGHUP end the run like Ctrl-C does, through the finally blocks below.
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, interrupt)

    ensure_postfix()
    # Enough descriptors for the idle sessions, here and in `tern serve`, which inherits the limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(soft, min(hard, args.idle_sessions * 2 + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))

    root = Path(tempfile.mkdtemp(prefix="tern-bench-"))
    root.chmod(0o755)  # Postfix's daemons and the Maildir owner (uid 65534) must reach into it
    servers = [Tern(root)] + ([Tern(root, "Baseline", args.baseline)] if args.baseline else []) + [Postfix(root)]
    started = datetime.datetime.now()
    try:
        for server in servers:
            server.setup()
            server.start()
        log(f"SMTP intake benchmark, {started:%Y-%m-%d %H:%M}: {describe_machine(servers[0].binary)}")
        log(f"Client (smtp-source) and both servers share the machine's {os.cpu_count()} cores.")
        mode = ("-d: one connection per session, reused for every message" if reuse
                else "without -d: a new connection per message")
        log(f"smtp-source {mode}; {args.repeat} runs per point and server, alternating; medians shown, and the ratio "
            "of the medians.")
        log(f"A run lasts from the start of smtp-source until every message is in {RECIPIENT}'s mailbox "
            "(Tern: rows of its messages table; Postfix: files in the Maildir).")
        log("CPU: Tern = utime+stime of the tern process (all threads); Postfix = the master, its children alive "
            "(smtpd, cleanup, qmgr, trivial-rewrite, virtual, postlogd, ...) and those it reaped during the run. "
            "'others' = cores used meanwhile by every other process and kernel thread (the machine is shared).")
        idle_line = None
        if args.idle_sessions:  # on the fresh server: memory freed by the mail runs would hide the sessions' own
            before, during, after = idle_sessions(servers[0], args.idle_sessions)
            idle_line = (f"\nTern memory per idle SMTP session: {(during - before) / args.idle_sessions:.1f} KiB "
                         f"({args.idle_sessions} sessions after greeting and EHLO, on the freshly started server; "
                         f"VmRSS {before} KiB before, {during} KiB with them open, {after} KiB one second after "
                         f"closing them; kernel socket buffers are not in VmRSS)")
            log(idle_line.strip())
        for server in servers:  # warm up: spawn Postfix's daemons, open Tern's files
            warm = measure(server, 5, 1024, 50, reuse, args.timeout)
            if warm["error"]:
                raise RuntimeError(f"{server.name} warm-up failed: {warm['error']}")
        points = {}
        for sessions in args.sessions:
            for size, count in zip(args.sizes, args.messages):
                results = points[(sessions, size, count)] = {server.name: [] for server in servers}
                for repeat in range(args.repeat):
                    # Each server goes first in turn; with two, the order simply alternates.
                    order = servers[repeat % len(servers):] + servers[:repeat % len(servers)]
                    for server in order:
                        result = measure(server, sessions, size, count, reuse, args.timeout)
                        results[server.name].append(result)
                        log(f"  {server.name:<7} sessions {sessions:>3}  {size_label(size):>6}  N {count:>5}: "
                            f"{result['rate']:7.0f} msg/s  (in mailbox {result['elapsed']:6.2f} s, smtp-source done "
                            f"{result['client']:6.2f} s)  CPU {result['cpu_ms']:.2f} ms/msg, smtp-source "
                            f"{result['client_ms']:.2f} ms/msg, others {result['others']:.2f} cores"
                            + (f"  FAILED: {result['error']}" if result["error"] else ""))
        print_table(points, [server.name for server in servers])
        others = [result["others"] for results in points.values() for runs in results.values() for result in runs]
        log(f"(client and servers share the machine's {os.cpu_count()} cores; other processes and kernel threads "
            f"used a median of {statistics.median(others):.2f} cores, at most {max(others):.2f}, during the runs)")
        log(f"Tern's peak RSS (VmHWM) over the whole run: {rss_kib(servers[0].process.pid, 'VmHWM')} KiB")
        if args.baseline:
            log(f"Baseline: {servers[1].source_binary} (built "
                f"{datetime.datetime.fromtimestamp(servers[1].source_binary.stat().st_mtime).isoformat(timespec='seconds')})")
        if idle_line:
            log(idle_line)
        log_problems(servers)
    finally:
        clean_up(servers, root, args.keep)


if __name__ == "__main__":
    run_bench(main)
