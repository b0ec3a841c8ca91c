#!/usr/bin/python3
"""Outbound benchmark: messages per second from Tern's queue to smtp-sink, and from a private Postfix's queue to
the same sink, side by side on loopback.

One /usr/sbin/smtp-sink on 127.0.0.1 takes the mail of ten domains, d0.bench.test .. d9.bench.test (one recipient,
bench@dN.bench.test, in each). For each run, N messages of 4 KB (smtp-source -l 4096, about 4.2 KB with its
headers), N/10 per domain, go into a server's queue while they cannot leave; then the server is let go and the
run is timed until its queue is empty and the sink has counted the N messages.

- Postfix: a private instance whose smtpd puts every message on hold (`check_client_access static:HOLD`), so
  that the queue manager never sees them while the queue fills; transport_maps sends each domain to
  smtp:[127.0.0.1]:SINKPORT. Release: `postsuper -H ALL` (hold -> deferred, before the clock), then the clock
  starts and `postqueue -f` asks the queue manager to deliver all of it.
- Tern: `tern serve` with the outbound plugin disabled (`[plugins] disable = ["outbound"]`) while smtp-source
  fills the queue: the store queues the mail, due at once, and nothing takes it off. Then Tern is stopped and the
  clock starts with a new `tern serve` of the same config without that line, whose route relays the ten domains
  to 127.0.0.1:SINKPORT: its own queue runner's rate, process start included. (A `via = "hold"` route does not
  do here: it marks the recipients held, and held mail leaves only when its domain is flushed, `tern queue
  flush`, which delivers in the CLI's process; a restart with other routes leaves it held.)

Medians over the repeats (alternating which server goes first) are printed with each server's CPU time per
message and the ratio Tern/Postfix. Everything runs on 127.0.0.1 and in one temporary folder, is bounded in
time, and is stopped by PID at the end, on error and on Ctrl-C. Run it as root with Debian's /usr/bin/python3
(standard library only); it installs postfix with apt-get when it is missing, without starting the system's
instance.
"""

import argparse
import contextlib
import datetime
import os
import platform
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench_support import (CLOCK_TICKS, SMTP_SINK, SMTP_SOURCE, children_cpu_seconds, clean_up, ensure_postfix, fmt,
                           free_port, interrupt, log, log_problems, machine_busy_ticks, PostfixInstance, proc_stat, run,
                           run_bench, stop_process, tern_config, tern_log_problems, wait_listening)

REPO = Path(__file__).resolve().parents[2]
TERN = os.environ.get("TERN_BIN", str(REPO / "build" / "tern"))
PLUGIN_DIR = os.environ.get("TERN_PLUGIN_DIR", str(REPO / "build" / "plugins"))
OUTBOUND_PLUGIN = "tern-outbound.so"
DOMAINS = [f"d{number}.bench.test" for number in range(10)]
SENDER = "sender@client.test"
POSTFIX_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")


def recipient(domain):
    return f"bench@{domain}"


# --- the sink ------------------------------------------------------------------------------------------------

class Sink:
    """smtp-sink on 127.0.0.1:port as nobody, writing its running counters ("sess=S quit=Q mesg=M\\r", after each
    message and each session) to a file: the last line is the count."""

    COUNTER = re.compile(rb"sess=(\d+) quit=(\d+) mesg=(\d+)\r")

    def __init__(self, root):
        self.root = root / "sink"
        self.counter = self.root / "counters"
        self.port = free_port()
        self.process = None
        self.output = None
        self.baseline_fds = 0

    def start(self):
        self.root.mkdir(mode=0o755)
        self.output = open(self.counter, "wb")
        errors = open(self.root / "stderr", "wb")
        for _ in range(3):
            # -m: sessions handled at once (the rest wait in the backlog, 4096).
            self.process = subprocess.Popen([SMTP_SINK, "-u", "nobody", "-4", "-c", "-m", "2000",
                                             f"127.0.0.1:{self.port}", "4096"],
                                            stdout=self.output, stderr=errors, start_new_session=True)
            if wait_listening(self.port, lambda: self.process.poll() is None):
                break
            self.stop()
            self.port = free_port()
        else:
            raise RuntimeError(f"smtp-sink did not start: {(self.root / 'stderr').read_text(errors='replace')}")
        errors.close()
        time.sleep(0.1)
        self.baseline_fds = self.open_fds()

    def counts(self):
        """(sessions ended, messages) so far."""
        with open(self.counter, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - 256))
            found = self.COUNTER.findall(file.read())
        if not found:
            return 0, 0
        sessions, _, messages = found[-1]
        return int(sessions), int(messages)

    def open_fds(self):
        with contextlib.suppress(OSError):
            return len(os.listdir(f"/proc/{self.process.pid}/fd"))
        return 0

    def sessions_open(self):
        return max(0, self.open_fds() - self.baseline_fds)

    def cpu_ticks(self):
        return proc_stat(self.process.pid)[1]

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        stop_process(self.process, timeout=10)
        if self.output is not None:
            self.output.close()
            self.output = None


# --- Postfix -------------------------------------------------------------------------------------------------

class Postfix(PostfixInstance):
    """The private instance (bench_support), relaying the ten domains to the sink; its smtpd holds every message."""

    def __init__(self, root, sink):
        super().__init__(root)
        self.sink = sink

    def prepare(self):
        (self.etc / "transport").write_text(
            "".join(f"{domain} smtp:[127.0.0.1]:{self.sink.port}\n" for domain in DOMAINS))

    def settings(self):
        return dict(super().settings(), **{
            "transport_maps": f"texthash:{self.etc / 'transport'}",
            "smtp_tls_security_level": "none",
            # HOLD is not final: permit_mynetworks then lets loopback relay. Held mail never reaches the queue
            # manager, so nothing is tried, deferred or logged as deferred while the queue fills.
            "smtpd_recipient_restrictions": "check_client_access static:HOLD, permit_mynetworks, "
                                            "reject_unauth_destination",
            # Otherwise the queue manager warns at each run that the one next hop uses up all its active queue
            # entries and that flushing the whole queue is bad for performance: expected here, said once above.
            "qmgr_clog_warn_time": "0",
        })

    def queued(self):
        """Messages in the queues that hold mail (not the logs: bounce, defer, trace)."""
        total = 0
        for name in POSTFIX_QUEUES:
            for folder, _, files in os.walk(self.queue / name):
                total += len(files)
        return total

    def held(self):
        with contextlib.suppress(FileNotFoundError):
            return len(os.listdir(self.queue / "hold"))
        return 0

    def before_fill(self):
        pass  # the instance runs from start to end

    def wait_filled(self, count, timeout):
        """smtpd answers 250 once the queue file is in hold: when smtp-source is done, the queue is full."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            held, queued = self.held(), self.queued()
            if held >= count:
                if queued != held:
                    raise RuntimeError(f"Postfix: {queued - held} messages outside the hold queue after the fill")
                return f"{held} on hold"
            time.sleep(0.1)
        raise RuntimeError(f"Postfix: {self.held()} of {count} on hold after {timeout:.0f} s")

    def before_clock(self):
        """hold -> deferred, outside the timed run (it is how this bench holds mail, not how Postfix delivers)."""
        started = time.monotonic()
        run(["postsuper", "-c", str(self.etc), "-H", "ALL"], timeout=300)
        return time.monotonic() - started

    def release(self):
        run(["postqueue", "-c", str(self.etc), "-f"], timeout=60)

    def cpu_start(self):
        return self.cpu_ticks()

    def check_empty(self):
        """What `postqueue -p` says at the end of a run, outside the clock."""
        return run(["postqueue", "-c", str(self.etc), "-p"], timeout=120).stdout.strip().splitlines()[-1]

    def after_run(self):
        pass

    def status(self):
        return f"{self.queued()} queued ({self.held()} on hold)"


# --- Tern ----------------------------------------------------------------------------------------------------

class Tern:
    """`tern serve` with one plain smtp listener that lets 127.0.0.0/8 relay, and the outbound plugin routing the
    ten domains to the sink: disabled while the queue fills, enabled to deliver."""

    name = "Tern"

    def __init__(self, root, sink):
        self.root = root / "tern"
        self.data = self.root / "var"
        self.config = self.root / "tern.toml"
        self.log = self.root / "tern.log"
        self.binary = self.root / "tern"
        self.plugins = self.root / "plugins"
        self.sink = sink
        self.port = free_port()
        self.process = None
        self.stderr = None

    def write_config(self, delivering):
        domains = "[" + ", ".join(f'"{domain}"' for domain in DOMAINS) + "]"
        disabled = () if delivering else ("outbound",)
        self.config.write_text(tern_config(self.data, self.plugins, self.log, self.port, disabled=disabled, more=[
            "[plugin.smtp]",
            'relay_networks = ["127.0.0.0/8"]',
            "[plugin.outbound]",
            "retry_after = [300]",
            "[[plugin.outbound.route]]",
            f"domains = {domains}",
            'via = "relay"',
            'host = "127.0.0.1"',
            f"port = {self.sink.port}",
            'tls = "none"',
        ]))

    def cli(self, *args):
        return run([self.binary, "-c", str(self.config), *args], timeout=120)

    def setup(self):
        """Copies the binary and the plugins first: a rebuild during the run then changes nothing measured."""
        plugin = Path(PLUGIN_DIR) / OUTBOUND_PLUGIN
        for needed in (Path(TERN), plugin):
            if not needed.exists():
                raise RuntimeError(f"{needed} is missing: build Tern with the outbound plugin first, or pass "
                                   "--only postfix")
        self.root.mkdir(mode=0o755)
        shutil.copy2(TERN, self.binary)
        self.plugins.mkdir()
        for library in Path(PLUGIN_DIR).glob("*.so"):
            shutil.copy2(library, self.plugins)
        for delivering in (True, False):
            self.write_config(delivering)
            self.cli("config", "check")

    def spawn(self):
        if self.stderr is None:
            self.stderr = open(self.root / "stderr.log", "ab")
        # A session of its own: a Ctrl-C in the terminal reaches the bench, which then stops the server.
        self.process = subprocess.Popen([self.binary, "-c", str(self.config), "serve"], stdout=subprocess.DEVNULL,
                                        stderr=self.stderr, start_new_session=True)

    def start(self):
        """Starts the filling server (the outbound plugin disabled) and waits for its smtp port."""
        for _ in range(3):
            self.write_config(False)
            self.spawn()
            if wait_listening(self.port, lambda: self.process.poll() is None):
                return
            if self.process.poll() is None:
                self.stop()
            if "cannot listen on" not in self.log_text():
                break
            self.port = free_port()
        raise RuntimeError(f"tern serve did not start:\n{self.log_tail()}")

    def stop(self):
        stop_process(self.process)
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None

    def query(self, sql, *parameters):
        """One read-only query on the store's database; None when the database or the column is not there yet."""
        database = self.data / "tern.db"
        if not database.exists():
            return None
        try:
            with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)) as db:
                return db.execute(sql, parameters).fetchall()
        except sqlite3.OperationalError:
            return None

    def queued(self):
        rows = self.query("SELECT count(*) FROM queue")
        return rows[0][0] if rows else 0

    def queue_state(self):
        """Where the queue stands: recipients by status, entries leased, on hold, attempted, due later."""
        now = int(time.time())
        statuses = self.query("SELECT status, count(*) FROM queue_recipients GROUP BY status ORDER BY status") or []
        entries = self.query("SELECT count(*), sum(leased_until > ?1), sum(held), sum(attempts > 0), "
                             "sum(next_attempt > ?1) FROM queue", now)
        if not entries:
            entries = self.query("SELECT count(*), 0, 0, sum(attempts > 0), sum(next_attempt > ?1) FROM queue", now)
        total, leased, held, attempted, later = [value or 0 for value in entries[0]] if entries else (0, 0, 0, 0, 0)
        return {"entries": total, "leased": leased, "held": held, "attempted": attempted, "due later": later,
                "recipients": ", ".join(f"{count} {status}" for status, count in statuses) or "none"}

    def status(self):
        state = self.queue_state()
        return (f"{state['entries']} queued ({state['leased']} leased, {state['held']} on hold, {state['attempted']} "
                f"attempted, {state['due later']} due later; recipients: {state['recipients']})")

    def before_fill(self):
        if not self.alive():  # stopped at the end of the last run
            self.start()

    def wait_filled(self, count, timeout):
        """Waits for `count` queue entries, then until nothing changes for a second and nothing is leased (with the
        outbound plugin disabled nothing should), so that the delivering server finds every entry due."""
        deadline = time.monotonic() + timeout
        while self.queued() < count:
            if not self.alive():
                raise RuntimeError(f"tern exited while filling its queue:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Tern: {self.queued()} of {count} queued after {timeout:.0f} s")
            time.sleep(0.1)
        last, stable_since = None, time.monotonic()
        settle_deadline = time.monotonic() + 60
        while time.monotonic() < settle_deadline:
            state = self.queue_state()
            if state != last:
                last, stable_since = state, time.monotonic()
            elif state["leased"] == 0 and time.monotonic() - stable_since >= 1:
                break
            time.sleep(0.2)
        else:
            log(f"  (Tern's queue still changing 60 s after the fill: {self.status()})")
        if last["attempted"] or last["due later"] or last["held"]:
            raise RuntimeError(f"Tern: not all of the queue is due after the fill: {self.status()}")
        return self.status()

    def before_clock(self):
        """Stops the filling server and enables the outbound plugin; outside the timed run."""
        started = time.monotonic()
        self.stop()
        self.write_config(True)
        return time.monotonic() - started

    def release(self):
        """The clock runs: a new `tern serve`, whose queue runner finds the mail due (nothing connects to it)."""
        self.spawn()

    def cpu_start(self):
        return 0  # the process starts inside the timed run: all its CPU time counts

    def cpu_ticks(self):
        stat = proc_stat(self.process.pid)
        return stat[1] if stat else 0

    def check_empty(self):
        """What `tern queue list` says at the end of a run, outside the clock."""
        return (self.cli("queue", "list").stdout.strip().splitlines() or ["(no output)"])[-1]

    def after_run(self):
        self.stop()

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self):
        stderr = self.root / "stderr.log"
        return "\n".join(self.log_text().splitlines()[-20:]
                         + (stderr.read_text(errors="replace").splitlines()[-10:] if stderr.exists() else []))

    def problems(self):
        return tern_log_problems(self.log_text())


# --- measurement ---------------------------------------------------------------------------------------------

def shares(count, parts):
    return [count // parts + (1 if index < count % parts else 0) for index in range(parts)]


def fill(server, count, size, sessions, timeout):
    """Sends `count` messages to the server's smtpd, one smtp-source per domain, all at once; returns seconds."""
    server.before_fill()
    if server.queued():
        raise RuntimeError(f"{server.name}'s queue is not empty before the fill: {server.status()}")
    started = time.monotonic()
    clients = []
    try:
        for domain, share in zip(DOMAINS, shares(count, len(DOMAINS))):
            if share:
                clients.append(subprocess.Popen(
                    [SMTP_SOURCE, "-4", "-d", "-s", str(sessions), "-m", str(share), "-l", str(size), "-f", SENDER,
                     "-t", recipient(domain), "-M", "client.test", f"127.0.0.1:{server.port}"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        for client in clients:
            remaining = max(1.0, timeout - (time.monotonic() - started))
            _, errors = client.communicate(timeout=remaining)
            if client.returncode != 0:
                raise RuntimeError(f"smtp-source to {server.name} exited {client.returncode}: {errors.strip()[-500:]}")
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"filling {server.name}'s queue took more than {timeout:.0f} s") from None
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
                client.wait()
    state = server.wait_filled(count, timeout)
    return time.monotonic() - started, state


def drain(server, sink, count, timeout, stall):
    """Lets the queue go and times it until the queue is empty and the sink has counted `count` more messages."""
    prepare = server.before_clock()
    sessions_before, base = sink.counts()
    cpu_before, sink_before = server.cpu_start(), sink.cpu_ticks()
    machine_before, children_before, own_before = machine_busy_ticks(), children_cpu_seconds(), time.process_time()
    start = time.monotonic()
    server.release()
    release_children = children_cpu_seconds() - children_before  # postqueue -f: Postfix's work
    error, sink_done, first, peak_sessions, last_sample = None, None, None, 0, 0.0
    progress, progress_at = 0, start
    while True:
        now = time.monotonic()
        sent = sink.counts()[1] - base
        if sent != progress:
            progress, progress_at = sent, now
            if first is None:
                first = now - start
        if sent >= count and sink_done is None:
            sink_done = now
        if sink_done is not None and server.queued() == 0:
            break
        if now - last_sample >= 0.2:
            last_sample = now
            peak_sessions = max(peak_sessions, sink.sessions_open())
            if not server.alive():
                error = f"{server.name} exited with {sent} of {count} at the sink"
            elif not sink.alive():
                error = "smtp-sink exited"
            elif now - progress_at > stall:
                error = f"no progress for {stall:.0f} s: {sent} of {count} at the sink; {server.status()}"
            elif now - start > timeout:
                error = f"timeout after {timeout:.0f} s: {sent} of {count} at the sink; {server.status()}"
            if error:
                break
        time.sleep(0.01 if sink_done is None else 0.005)
    elapsed = time.monotonic() - start
    cpu = (server.cpu_ticks() - cpu_before) / CLOCK_TICKS + release_children if server.alive() else None
    sink_cpu = (sink.cpu_ticks() - sink_before) / CLOCK_TICKS
    machine = (machine_busy_ticks() - machine_before) / CLOCK_TICKS
    others = machine - (cpu if cpu is not None else release_children) - sink_cpu - (time.process_time() - own_before)
    result = {"elapsed": elapsed, "sink": (sink_done or time.monotonic()) - start, "rate": count / elapsed,
              "cpu_ms": cpu * 1000 / count if cpu is not None else None, "sink_ms": sink_cpu * 1000 / count,
              "others": max(others, 0.0) / elapsed, "peak": peak_sessions, "prepare": prepare, "first": first,
              "error": error, "end": None}
    if not error:
        result["end"] = server.check_empty()
    server.after_run()
    settle = time.monotonic() + 10  # Postfix keeps idle sessions cached for 2 s: count them once closed
    while sink.sessions_open() and time.monotonic() < settle:
        time.sleep(0.1)
    result["sessions"] = sink.counts()[0] - sessions_before
    return result


# --- report --------------------------------------------------------------------------------------------------

def median_of(results, key):
    values = [result[key] for result in results if not result["error"] and result[key] is not None]
    return statistics.median(values) if values else None


def describe_machine(servers):
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    parts = [f"{os.cpu_count()} cores ({model}), Linux {platform.release()}"]
    tern = next((server for server in servers if server.name == "Tern"), None)
    if tern:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip() or "?"
        changed = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True).stdout.strip()

        def built(path):
            return datetime.datetime.fromtimestamp(path.stat().st_mtime).isoformat(timespec="seconds")

        parts.append(f"Tern binary built {built(tern.binary)}, {OUTBOUND_PLUGIN} "
                     f"{built(tern.plugins / OUTBOUND_PLUGIN)}, at {commit}"
                     f"{' with uncommitted changes' if changed else ''}")
    parts.append(f"Postfix {run(['postconf', '-d', '-h', 'mail_version']).stdout.strip()}")
    return "; ".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10000, help="messages per run, spread over 10 domains "
                        "(10000; 500 is a quick check)")
    parser.add_argument("--size", type=int, default=4096, help="octets of body per message, smtp-source -l (4096)")
    parser.add_argument("--repeats", "--repeat", type=int, default=3, help="runs on each server, alternating (3)")
    parser.add_argument("--fill-sessions", type=int, default=2,
                        help="smtp-source sessions per domain filling a queue (2, so 20 in all)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one timed run may take (600)")
    parser.add_argument("--stall", type=float, default=60,
                        help="seconds without a message at the sink that end a run as failed (60)")
    parser.add_argument("--only", choices=("tern", "postfix"), help="run one server only")
    parser.add_argument("--quick", action="store_true", help="--messages 500 --repeats 1: check the script works")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder, and print where it is")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.repeats = 500, 1
    if args.messages < 1 or args.repeats < 1:
        parser.error("--messages and --repeats must be at least 1")
    if os.geteuid() != 0:
        parser.error("run as root: Postfix's private instance and smtp-sink -u nobody need it")

    # SIGTERM and SIGHUP end the run like Ctrl-C does, through the finally blocks below.
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, interrupt)

    ensure_postfix()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # for the sink's sessions, which inherits it
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))

    root = Path(tempfile.mkdtemp(prefix="tern-outbound-"))
    root.chmod(0o755)  # Postfix's daemons and the sink (nobody) must reach into it
    sink = Sink(root)
    servers = []
    started = datetime.datetime.now()
    try:
        sink.start()
        if args.only != "postfix":
            servers.append(Tern(root, sink))
        if args.only != "tern":
            servers.append(Postfix(root, sink))
        for server in servers:
            server.setup()
            server.start()
        log(f"Outbound benchmark, {started:%Y-%m-%d %H:%M}: {describe_machine(servers)}")
        log(f"Client (smtp-source, then this script polling), servers and smtp-sink share the machine's "
            f"{os.cpu_count()} cores.")
        log(f"{args.messages} messages of {args.size} octets of body (+ about 150 of headers) to {len(DOMAINS)} "
            f"domains (one recipient each, {DOMAINS[0]} .. {DOMAINS[-1]}), all relayed to one smtp-sink on "
            f"127.0.0.1:{sink.port}; {args.repeats} runs per server, alternating; medians shown, and the ratio of "
            "the medians.")
        log("A run: the queue is filled by smtp-source while mail cannot leave (Postfix: smtpd HOLD; Tern: the "
            "outbound plugin disabled), then the clock starts as the server is let go (Postfix: postqueue -f after "
            "postsuper -H ALL; Tern: tern serve restarted with the plugin enabled) and stops when its queue is empty "
            "(Postfix: no file in its queues; Tern: no row in the queue table) and the sink has counted every "
            "message.")
        log("CPU: Tern = utime+stime of the new tern process (start-up included); Postfix = the master, its "
            "children alive (qmgr, smtp, trivial-rewrite, ...) and those it reaped during the run, plus postqueue. "
            "'others' = cores used meanwhile by every other process and kernel thread (the machine is shared).")
        if any(server.name == "Postfix" for server in servers):
            concurrency = run(["postconf", "-c", str(servers[-1].etc), "-x", "-h",
                               "smtp_destination_concurrency_limit"]).stdout.strip()
            log(f"Postfix: the ten domains share one next hop, [127.0.0.1]:{sink.port}, so its per-destination "
                f"limit ({concurrency} sessions) holds for all of them together.")
        results = {server.name: [] for server in servers}
        for repeat in range(args.repeats):
            for server in (servers if repeat % 2 == 0 else servers[::-1]):
                fill_seconds, state = fill(server, args.messages, args.size, args.fill_sessions, args.timeout)
                log(f"  {server.name:<7} filled in {fill_seconds:6.2f} s: {state}")
                result = drain(server, sink, args.messages, args.timeout, args.stall)
                results[server.name].append(result)
                log(f"  {server.name:<7} N {args.messages}: {result['rate']:7.0f} msg/s  (queue empty "
                    f"{result['elapsed']:6.2f} s, all at the sink {result['sink']:6.2f} s)  CPU "
                    f"{fmt(result['cpu_ms'], '{:.3f}')} ms/msg, sink {result['sink_ms']:.3f} ms/msg, others "
                    f"{result['others']:.2f} cores; {result['sessions']} sessions at the sink, at most "
                    f"{result['peak']} seen open; first at the sink after {fmt(result['first'], '{:.2f}')} s; "
                    f"before the clock {result['prepare']:.2f} s"
                    + (f"; at the end: {result['end']}" if result["end"] else "")
                    + (f"  FAILED: {result['error']}" if result["error"] else ""))
                if result["error"]:
                    if server.name == "Tern":
                        log("  Tern's log ends:\n" + "\n".join("    " + line for line in
                                                              server.log_tail().splitlines()))
                    raise RuntimeError(f"{server.name}'s run failed: {result['error']}")

        log("")
        header = f"{'server':<8}  {'msg/s':>7}  {'CPU ms/msg':>10}  {'sink CPU ms/msg':>15}  {'sink sessions':>13}"
        log(header)
        log("-" * len(header))
        for name, runs in results.items():
            log(f"{name:<8}  {fmt(median_of(runs, 'rate'), '{:.0f}'):>7}  "
                f"{fmt(median_of(runs, 'cpu_ms'), '{:.3f}'):>10}  {fmt(median_of(runs, 'sink_ms'), '{:.3f}'):>15}  "
                f"{fmt(median_of(runs, 'sessions'), '{:.0f}'):>13}")
        others = [result["others"] for runs in results.values() for result in runs]
        log(f"(client, servers and sink share the machine's {os.cpu_count()} cores; other processes and kernel "
            f"threads used a median of {statistics.median(others):.2f} cores, at most {max(others):.2f}, during the "
            "timed runs)")
        if len(results) == 2:
            tern_rate, postfix_rate = median_of(results["Tern"], "rate"), median_of(results["Postfix"], "rate")
            tern_cpu, postfix_cpu = median_of(results["Tern"], "cpu_ms"), median_of(results["Postfix"], "cpu_ms")
            ratio = tern_rate / postfix_rate if tern_rate and postfix_rate else None
            log(f"Tern/Postfix messages per second: {fmt(ratio, '{:.2f}')} (target: at least 1)")
            log("\n| N | size | Tern msg/s | Postfix msg/s | Tern/Postfix | Tern CPU ms/msg | Postfix CPU ms/msg |")
            log("|---:|---:|---:|---:|---:|---:|---:|")
            log(f"| {args.messages} | {args.size // 1024 if args.size % 1024 == 0 else args.size}"
                f"{' KB' if args.size % 1024 == 0 else ' B'} | {fmt(tern_rate, '{:.0f}')} | "
                f"{fmt(postfix_rate, '{:.0f}')} | {fmt(ratio, '{:.2f}')} | {fmt(tern_cpu, '{:.2f}')} | "
                f"{fmt(postfix_cpu, '{:.2f}')} |")
        log_problems(servers)
    finally:
        clean_up(servers, root, args.keep, [sink])


if __name__ == "__main__":
    run_bench(main, (RuntimeError, OSError, subprocess.SubprocessError, sqlite3.Error))
