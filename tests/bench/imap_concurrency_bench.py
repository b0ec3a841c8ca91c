#!/usr/bin/python3
"""IMAP concurrency benchmark (issue 15): the stress mix of tests/support/imap_stress.py against Tern and a
private Dovecot side by side, on loopback, with and without logins in the mix, then logins per second, then the
same mix from a native client that costs little.

N clients (10) work on one INBOX for --seconds (20) per run: SELECT/EXAMINE, NOOP, FETCH and UID FETCH of flags,
bodies, structures and header fields, STORE of flags and keywords, APPEND, EXPUNGE and, in the "logins" mix,
LOGOUT and a new LOGIN now and then. IDLE is left out (run_stress(idle=False)): its 0.1 to 0.8 s of waiting is
chosen by the client, not work of the server, and with it in the mix each client spent most of its time idling,
so that commands per second came out the same for both servers whatever they did. Before each run the INBOX is
emptied and given the same 50 messages (not timed). Runs rotate which server goes first, --repeat (3) of each;
the medians of commands per second and of server CPU time per command are printed with the ratio Tern/Dovecot
(commands/s above 1 and CPU/command below 1: Tern does better), and every protocol error the checker found on
each server. Server CPU time is read from /proc: utime+stime of the server's process and of all its living
descendants, with what they collected from the children they reaped, before and after each run; for Dovecot that
is its master, imap-login, imap, auth, config, anvil, log and stats processes.

Logins per second: K client threads (--login-clients, 10), raw sockets, each looping on a fresh TCP connection:
greeting, LOGIN, LOGOUT, close, for --login-seconds (10) per run, --repeat runs on each server; printed are
logins per second, failed attempts, each server's CPU time per login (process tree, as above) and, for Dovecot,
that of its auth processes alone.

Logins cost the same on both: Tern keeps argon2id hashes, and Dovecot's passwd-file gets the very hash Tern
stored for the bench user (read from Tern's SQLite database), as {ARGON2ID}, so both verify the same Argon2id
parameters. Dovecot's authentication cache is on (auth_cache_size = 10M); Tern runs with its login cache as it
ships ([limits] auth_cache_ttl, 300 s). Dovecot's cache spares the passdb lookup, not the hash: its auth
processes still spend about one argon2id verification per LOGIN ('auth ms/login'). Dovecot otherwise runs as
Debian ships it: a new imap-login and imap process for each connection.

--baseline DIR (a folder holding an earlier build's `tern` and `plugins/`, as for smtp_intake.py) measures that
build too, in the same run and in turn with the others, for the mix (both clients) and the logins, with the
ratio Tern/Baseline.

The mix is run by two clients, one after the other. The checking client (tests/support/imap_stress.py) is one
Python process with a thread per IMAP client, parsing every response and holding it against its model: it
counts protocol errors, but spends about 0.5 ms of CPU on a command and tops out near 1,700 commands/s (its
threads share one interpreter lock), so its commands per second measure the client as much as the servers and
its CPU time per command is the comparison to read. After all the checking runs, the native client
(imap_load_client.c and imap_load_mix.c, compiled with cc into the temporary folder at startup; imap_load.py
runs it) sends the same mix, IDLE left out, from one C thread per client, keeping only the message count and
UIDs it needs: with --repeat runs of each mix on each server, in turn, the INBOX prepared as for the checking
runs, it prints commands per second, server CPU time per command, its own CPU time (from the reaped child's
rusage) per command and in cores, latency, and the NO (some are races, such as a UID EXPUNGE of a message
already gone), BAD and other protocol trouble it met, with the ratios Tern/Dovecot (and Tern/Baseline). It
checks no data: the checking runs are the ones that find wrong answers.

Run it as root with Debian's /usr/bin/python3 after tools/build (standard library and a C compiler only); it
installs dovecot-imapd with apt-get when it is missing, and stops every process it started, by PID, when it
ends, fails or is interrupted.
"""

import argparse
import collections
import datetime
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import imap_bench as base
import imap_load
from bench_support import (all_pids, clean_up, counts_text, fmt, interrupt, log, log_problems, log_ratio_rows,
                           machine_busy_ticks, median, proc_stat, ratio, run, run_bench, tern_paths)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import imap_stress  # noqa: E402  (tests/support is no package)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIXES = (("logins", True), ("no logins", False))


def process_tree(root):
    """`root` and its living descendants, with their /proc stat (ppid, own ticks, reaped children's ticks)."""
    stats = {pid: proc_stat(pid) for pid in all_pids()}
    children = {}
    for pid, stat in stats.items():
        if stat:
            children.setdefault(stat[0], []).append(pid)
    found, frontier = {}, [root]
    while frontier:
        pid = frontier.pop()
        if stats.get(pid):
            found[pid] = stats[pid]
            frontier.extend(children.get(pid, ()))
    return found


def tree_ticks(root):
    """CPU ticks of a process tree: each living process's own time and what it collected from the children it
    reaped (which holds what those collected in turn), so that a process that ended during a run still counts."""
    return sum(own + reaped for _, own, reaped in process_tree(root).values())


def comm(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def built(path):
    return datetime.datetime.fromtimestamp(path.stat().st_mtime).isoformat(timespec="seconds")


class Tern(base.Tern):
    """The IMAP bench's Tern; its CPU time is that of its process tree. `build` is the folder of an earlier build's
    binary and plugins/ (--baseline), or None for this tree's build."""

    def __init__(self, root, name="Tern", build=None):
        super().__init__(root)
        self.build = build
        tern_paths(self, root, name, build, base.TERN, base.PLUGIN_DIR)

    def setup(self):
        """Copies the binary and the plugins first: a rebuild during the run then changes nothing measured. The
        binary may be missing for a moment while it is relinked: that is waited for (a minute at most)."""
        self.root.mkdir(mode=0o755)
        deadline = time.monotonic() + 60
        while True:
            try:
                shutil.copy2(self.source_binary, self.binary)
                break
            except FileNotFoundError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        self.plugins.mkdir()
        libraries = list(self.source_plugins.glob("*.so"))
        if not libraries:
            raise RuntimeError(f"no plugins (*.so) in {self.source_plugins}")
        for library in libraries:
            shutil.copy2(library, self.plugins)
        self.write_config()
        self.cli("domain", "add", "example.test")
        self.cli("user", "add", base.USER, input=base.PASSWORD + "\n")

    def version(self):
        if not self.build:
            return super().version()
        return (f"{self.source_binary}, binary built {built(self.binary)}, imap plugin "
                f"{built(self.plugins / 'tern-imap.so')}")

    def cpu_ticks(self):
        return tree_ticks(self.process.pid)

    def password_hash(self):
        """The hash Tern stored for the bench user, from its SQLite database (read-only)."""
        database = sqlite3.connect(f"file:{self.data / 'tern.db'}?mode=ro", uri=True)
        try:
            row = database.execute("SELECT password_hash FROM users WHERE address = ?", (base.USER,)).fetchone()
        finally:
            database.close()
        if not row or not row[0].startswith("$argon2id$"):
            raise RuntimeError(f"no argon2id hash for {base.USER} in {self.name}'s database: {row!r}")
        return row[0]


class Dovecot(base.Dovecot):
    """The IMAP bench's Dovecot, its user's password being Tern's argon2id hash, with the authentication cache."""

    def __init__(self, root, password_hash):
        super().__init__(root)
        self.password_hash = password_hash

    def write_config(self):
        super().write_config()
        (self.root / "passwd").write_text(f"{base.USER}:{{ARGON2ID}}{self.password_hash}:{base.MAIL_UID}:"
                                          f"{base.MAIL_UID}::{self.home}::\n")
        text = self.config.read_text()
        if "scheme=PLAIN" not in text:
            raise RuntimeError("the IMAP bench's Dovecot config has no scheme=PLAIN to replace")
        self.config.write_text(text.replace("scheme=PLAIN", "scheme=ARGON2ID") + "auth_cache_size = 10M\n")

    def check_hash(self):
        """doveadm's own verdict on the hash and the bench password."""
        result = run(["doveadm", "pw", "-t", f"{{ARGON2ID}}{self.password_hash}", "-p", base.PASSWORD], check=False)
        if result.returncode != 0 or "(verified)" not in result.stdout:
            raise RuntimeError(f"Dovecot does not accept Tern's hash: {result.stdout}{result.stderr}")

    def cpu_ticks(self):
        return tree_ticks(self.master)

    def auth_ticks(self):
        return sum(own + reaped for pid, (_, own, reaped) in process_tree(self.master).items() if comm(pid) == "auth")


class Usage:
    """What a server, this client and the rest of the machine spend over one run: start it before, `end` after."""

    def __init__(self, server):
        self.server = server
        self.cpu = server.cpu_ticks()
        self.auth = server.auth_ticks() if isinstance(server, Dovecot) else 0
        self.own, self.machine = time.process_time(), machine_busy_ticks()

    def end(self, what):
        """Seconds of server CPU, client CPU, machine CPU and Dovecot auth CPU (None for Tern) since the start;
        RuntimeError when the server died during `what`."""
        time.sleep(0.5)  # the last sessions' processes end and are reaped
        if not self.server.alive():
            raise RuntimeError(f"{self.server.name} exited during {what}; its log ends:\n"
                               + "\n".join(self.server.log_text().splitlines()[-20:]))
        cpu = (self.server.cpu_ticks() - self.cpu) / CLOCK_TICKS
        own = time.process_time() - self.own
        machine = (machine_busy_ticks() - self.machine) / CLOCK_TICKS
        auth = (self.server.auth_ticks() - self.auth) / CLOCK_TICKS if isinstance(self.server, Dovecot) else None
        return cpu, own, machine, auth


def measure(server, logins, args, seed):
    """One run of the stress mix, IDLE left out, on one server: the INBOX prepared (not timed), then
    `args.clients` clients for `args.seconds`. Returns a dict of the figures."""
    prepared = imap_stress.prepare_mailbox("127.0.0.1", server.port, base.USER, base.PASSWORD, args.messages, seed,
                                           args.timeout)
    time.sleep(0.5)  # the preparing session's processes end
    usage = Usage(server)
    result = imap_stress.run_stress("127.0.0.1", server.port, base.USER, base.PASSWORD, clients=args.clients,
                                    seconds=args.seconds, logins=logins, seed=seed, prepared=prepared,
                                    timeout=args.timeout, log=None, idle=False)
    cpu, own, machine, auth = usage.end("the run")
    logins_done = result.by_command.get("LOGIN", 0)
    return {"rate": result.rate, "commands": result.commands, "cpu": cpu,
            "cpu_ms": 1000 * cpu / max(result.commands, 1), "errors": result.errors, "kinds": result.kinds,
            "samples": result.error_samples, "logins": logins_done, "elapsed": result.elapsed,
            "client": own / max(result.elapsed, 1e-6),
            "others": max(0.0, machine - cpu - own) / (result.elapsed + 0.5),
            "auth_ms": 1000 * auth / logins_done if auth is not None and logins_done else None,
            "latency": result.latency, "by_command": result.by_command}


# --- logins per second ---------------------------------------------------------------------------------------

class Lines:
    """CRLF-ended lines from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""

    def line(self):
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def tagged(self, tag):
        """The tagged reply to `tag`, untagged lines skipped."""
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                return line


def login_client(port, deadline, timeout, tally):
    """Until `deadline`: connect, read the greeting, LOGIN, LOGOUT, close, each on a fresh TCP connection. Adds
    to `tally` the logins completed (LOGIN and LOGOUT answered OK), the failures by kind, and the time from
    connecting to LOGIN's OK of each."""
    login = f'a LOGIN "{base.USER}" "{base.PASSWORD}"\r\n'.encode()
    done, failures, latencies = 0, collections.Counter(), []
    while time.monotonic() < deadline:
        start = time.monotonic()
        sock = None
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            lines = Lines(sock)
            greeting = lines.line()
            if not greeting.startswith(b"* OK"):
                failures["greeting " + greeting[:60].decode(errors="replace")] += 1
                continue
            sock.sendall(login)
            reply = lines.tagged(b"a")
            if not reply.startswith(b"a OK"):
                failures["LOGIN answered " + re.sub(r"\d+", "N", reply[2:80].decode(errors="replace"))] += 1
                continue
            latencies.append(time.monotonic() - start)
            sock.sendall(b"b LOGOUT\r\n")
            reply = lines.tagged(b"b")
            if not reply.startswith(b"b OK"):
                failures["LOGOUT answered " + re.sub(r"\d+", "N", reply[2:80].decode(errors="replace"))] += 1
                continue
            done += 1
        except socket.timeout:
            failures[f"no answer within {timeout:g} s"] += 1
        except OSError as error:  # ConnectionError included
            failures[f"{type(error).__name__}: {error.strerror or error}"] += 1
        finally:
            if sock is not None:
                sock.close()
    with tally["lock"]:
        tally["logins"] += done
        tally["failures"].update(failures)
        tally["latencies"].extend(latencies)


def measure_logins(server, args):
    """One run of logins per second on one server: `args.login_clients` threads for `args.login_seconds`."""
    usage = Usage(server)
    tally = {"lock": threading.Lock(), "logins": 0, "failures": collections.Counter(), "latencies": []}
    start = time.monotonic()
    deadline = start + args.login_seconds
    threads = [threading.Thread(target=login_client, args=(server.port, deadline, args.timeout, tally),
                                name=f"login-{index}", daemon=True) for index in range(args.login_clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.1, deadline + 2 * args.timeout + 5 - time.monotonic()))
    elapsed = time.monotonic() - start
    stuck = sum(thread.is_alive() for thread in threads)
    cpu, own, machine, auth = usage.end("the logins")
    with tally["lock"]:
        logins, failures, latencies = tally["logins"], dict(tally["failures"]), sorted(tally["latencies"])
    if stuck:
        failures[f"client thread still waiting {2 * args.timeout + 5:g} s after the end"] = stuck
    return {"rate": logins / elapsed, "logins": logins, "failures": sum(failures.values()), "kinds": failures,
            "elapsed": elapsed, "cpu": cpu, "cpu_ms": 1000 * cpu / logins if logins else None,
            "auth_ms": 1000 * auth / logins if auth is not None and logins else None,
            "latency_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
            "client": own / max(elapsed, 1e-6), "others": max(0.0, machine - cpu - own) / (elapsed + 0.5)}


# --- report --------------------------------------------------------------------------------------------------

def comparisons(servers):
    """(label, first, second) pairs of server names for the ratio rows: Tern against each of the others."""
    names = [server.name for server in servers]
    pairs = [("Tern", other) for other in names[1:]]
    if "Baseline" in names and "Dovecot" in names:
        pairs.append(("Baseline", "Dovecot"))
    return [(f"{first}/{second}", first, second) for first, second in pairs]


def print_table(points, servers):
    log("\nThe stress mix (IDLE left out) from the checking client, medians of the runs:")
    header = (f"{'mix':<10} {'server':<17} {'commands/s':>10} {'CPU ms/command':>14} {'errors/run':>10} "
              f"{'logins/run':>10} {'client cores':>12} {'others cores':>12}")
    log(header)
    log("-" * len(header))
    for mix, _ in MIXES:
        for server in servers:
            runs = points[mix][server.name]
            log(f"{mix:<10} {server.name:<17} {fmt(median(runs, 'rate'), '{:.0f}'):>10} "
                f"{fmt(median(runs, 'cpu_ms'), '{:.3f}'):>14} {fmt(median(runs, 'errors'), '{:.0f}'):>10} "
                f"{fmt(median(runs, 'logins'), '{:.0f}'):>10} {fmt(median(runs, 'client'), '{:.2f}'):>12} "
                f"{fmt(median(runs, 'others'), '{:.2f}'):>12}")
        log_ratio_rows(mix, points, comparisons(servers))


def print_logins(logins, servers, args):
    log(f"\nLogins per second: {args.login_clients} clients, each greeting + LOGIN + LOGOUT on a fresh TCP "
        f"connection, {args.login_seconds:g} s a run; medians of the runs:")
    header = (f"{'server':<17} {'logins/s':>9} {'failures/run':>12} {'CPU ms/login':>12} {'auth ms/login':>13} "
              f"{'ms to LOGIN OK':>14} {'client cores':>12} {'others cores':>12}")
    log(header)
    log("-" * len(header))
    for server in servers:
        runs = logins[server.name]
        log(f"{server.name:<17} {fmt(median(runs, 'rate'), '{:.1f}'):>9} {fmt(median(runs, 'failures'), '{:.0f}'):>12} "
            f"{fmt(median(runs, 'cpu_ms'), '{:.2f}'):>12} {fmt(median(runs, 'auth_ms'), '{:.2f}'):>13} "
            f"{fmt(median(runs, 'latency_ms'), '{:.1f}'):>14} {fmt(median(runs, 'client'), '{:.2f}'):>12} "
            f"{fmt(median(runs, 'others'), '{:.2f}'):>12}")
    for label, first, second in comparisons(servers):
        one, other = logins[first], logins[second]
        log(f"{label:<17} {fmt(ratio(median(one, 'rate'), median(other, 'rate')), '{:.2f}'):>9} {'':>12} "
            f"{fmt(ratio(median(one, 'cpu_ms'), median(other, 'cpu_ms')), '{:.3f}'):>12}")
    for server in servers:
        kinds = collections.Counter()
        for run_ in logins[server.name]:
            kinds.update(run_["kinds"])
        if kinds:
            log(f"  {server.name} failures: " + ", ".join(f"{kind} x{count}" for kind, count in kinds.most_common(8)))


def print_latencies(points, servers):
    """Median time from a command's line to its tagged reply, per command, as the checking client saw it (the
    median of each run's median; 90th percentile likewise)."""
    for mix, _ in MIXES:
        names = sorted({name for server in servers for run_ in points[mix][server.name] for name in run_["latency"]})
        log(f"\nLatency, {mix} mix: ms to the tagged reply, median (90th percentile), and commands per run")
        log(f"{'command':<12} " + " ".join(f"{server.name:>24}" for server in servers))
        for name in names:
            cells = []
            for server in servers:
                runs = [run_ for run_ in points[mix][server.name] if name in run_["latency"]]
                if not runs:
                    cells.append(f"{'—':>24}")
                    continue
                middle = statistics.median(run_["latency"][name][0] for run_ in runs) * 1000
                high = statistics.median(run_["latency"][name][1] for run_ in runs) * 1000
                count = statistics.median(run_["by_command"][name] for run_ in runs)
                cells.append(f"{f'{middle:.1f} ({high:.1f}) x{count:.0f}':>24}")
            log(f"{name:<12} " + " ".join(cells))


def print_errors(points, servers):
    for server in servers:
        runs = [run_ for mix, _ in MIXES for run_ in points[mix][server.name]]
        kinds = {}
        for run_ in runs:
            for kind, count in run_["kinds"].items():
                kinds[kind] = kinds.get(kind, 0) + count
        total = sum(kinds.values())
        seconds = sum(run_["elapsed"] for run_ in runs)
        log(f"\n{server.name}: {total} protocol errors in {len(runs)} runs ({total / max(seconds, 1e-6) * 20:.0f} per "
            "20 s)" + (": " + ", ".join(f"{kind} {count}" for kind, count in
                                         sorted(kinds.items(), key=lambda item: -item[1])) if kinds else ""))
        seen = []
        for run_ in runs:
            for sample in run_["samples"]:
                text = sample.split(": ", 1)[-1]
                if text not in seen and len(seen) < 8:
                    seen.append(text)
                    log(f"  - {sample}")


def argon2_parameters(password_hash):
    return password_hash.split("$")[3]


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20, help="seconds of each run of the mix (20)")
    parser.add_argument("--clients", type=int, default=10, help="IMAP clients on the one INBOX (10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mix, and of the logins, on each server (3)")
    parser.add_argument("--messages", type=int, default=50, help="messages in the INBOX at the start of a run (50)")
    parser.add_argument("--seed", type=int, default=15, help="seed of the first run; run k uses seed + k (15)")
    parser.add_argument("--timeout", type=float, default=10, help="seconds a command may take (10)")
    parser.add_argument("--login-clients", type=int, default=10,
                        help="client threads logging in and out, each on a fresh connection every time (10)")
    parser.add_argument("--login-seconds", type=float, default=10, help="seconds of each run of logins (10)")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also measure an earlier build (DIR/tern and DIR/plugins), in turn with this one")
    parser.add_argument("--quick", action="store_true",
                        help="one 2-second run of each on 30 messages, and 2 s of logins, to check the script works")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder, and print where it is")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.repeat, args.messages, args.login_seconds = 2, 1, 30, 2
    if os.geteuid() != 0:
        parser.error("run as root: Dovecot's private instance needs it")
    if args.baseline and not (Path(args.baseline) / "tern").is_file():
        parser.error(f"--baseline {args.baseline}: no tern binary in it")
    return args


def log_setup(args, terns, dovecot, started):
    log(f"IMAP concurrency benchmark, {started:%Y-%m-%d %H:%M}: {base.describe_machine()}")
    for tern in terns:
        log(f"{tern.name}: {tern.version()}")
    log(f"Dovecot {dovecot.version()}")
    log(f"{args.clients} clients on one INBOX ({args.messages} messages at the start), {args.seconds:g} s a run, "
        f"{args.repeat} run(s) of each mix on each server, rotating which goes first; medians shown.")
    log("IDLE is left out of the mix: its 0.1-0.8 s waits are chosen by the client, not server work, and would "
        "make commands/s the client's figure.")
    log("Passwords: Dovecot verifies Tern's own argon2id hash (" + argon2_parameters(dovecot.password_hash)
        + "), through {ARGON2ID} in its passwd-file (doveadm pw -t: verified)"
        + "".join(f"; {tern.name} verifies the one it stored ({argon2_parameters(tern.password_hash())})"
                  for tern in terns[1:])
        + ". Dovecot's auth cache is on (auth_cache_size = 10M); Tern's login cache is as it ships "
        "([limits] auth_cache_ttl, 300 s).")
    log("CPU: utime+stime of each server's process tree (Dovecot: master, imap-login, imap, auth, ...), "
        "with what it reaped. 'client': the client's own CPU use; 'others': cores other processes "
        "used meanwhile (the machine may be shared).")
    log("First the checking client (Python, every response held against a model: it counts protocol errors), "
        "then the native one (C: it costs little, so commands/s and CPU/command are the servers').")


def log_mix_run(repeat, mix, server, result):
    kinds = counts_text(result["kinds"])
    auth = f", auth {result['auth_ms']:.1f} ms/login" if result["auth_ms"] is not None else ""
    log(f"  run {repeat + 1} {mix:<9} {server.name:<8} {result['rate']:6.0f} commands/s "
        f"({result['commands']} in {result['elapsed']:.1f} s, {result['logins']} logins)  CPU "
        f"{result['cpu']:5.2f} s = {result['cpu_ms']:.3f} ms/command{auth}  client "
        f"{result['client']:.2f} cores, others {result['others']:.2f} cores  errors "
        f"{result['errors']}" + (f" ({kinds})" if kinds else ""))


def log_login_run(repeat, server, result):
    auth = f", auth {result['auth_ms']:.2f} ms/login" if result["auth_ms"] is not None else ""
    kinds = ", ".join(f"{kind} x{count}" for kind, count in
                      sorted(result["kinds"].items(), key=lambda item: -item[1])[:3])
    log(f"  run {repeat + 1} {'LOGIN loop':<9} {server.name:<8} {result['rate']:8.1f} logins/s "
        f"({result['logins']} in {result['elapsed']:.1f} s, {result['failures']} failed)  CPU "
        f"{result['cpu']:5.2f} s = {fmt(result['cpu_ms'], '{:.2f}')} ms/login{auth}  client "
        f"{result['client']:.2f} cores, others {result['others']:.2f} cores" + (f"  ({kinds})" if kinds else ""))


def checking_runs(servers, args):
    """--repeat rounds, each server going first in turn: each mix with the checking client, then the logins.
    Returns the mixes' results {mix: {name: [result]}} and the logins' {name: [result]}."""
    points = {mix: {server.name: [] for server in servers} for mix, _ in MIXES}
    logins = {server.name: [] for server in servers}
    for repeat in range(args.repeat):
        # Each server goes first in turn; with two, the order simply alternates.
        order = servers[repeat % len(servers):] + servers[:repeat % len(servers)]
        for mix, with_logins in MIXES:
            for server in order:
                result = measure(server, with_logins, args, args.seed + repeat)
                points[mix][server.name].append(result)
                log_mix_run(repeat, mix, server, result)
        for server in order:
            result = measure_logins(server, args)
            logins[server.name].append(result)
            log_login_run(repeat, server, result)
    return points, logins


def main():
    args = parse_arguments()
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, interrupt)

    base.ensure_dovecot()
    root = Path(tempfile.mkdtemp(prefix="tern-imap-concurrency-"))
    root.chmod(0o755)  # Dovecot's processes (uid 65534, dovenull) must reach into it
    terns = [Tern(root)] + ([Tern(root, "Baseline", args.baseline)] if args.baseline else [])
    servers = list(terns)
    started = datetime.datetime.now()
    try:
        client = imap_load.build_client(root)
        for tern in terns:
            tern.setup()
        dovecot = Dovecot(root, terns[0].password_hash())
        servers.append(dovecot)
        dovecot.check_hash()
        for tern in terns:
            tern.start()
        dovecot.setup([])
        dovecot.start()
        log_setup(args, terns, dovecot, started)
        points, logins = checking_runs(servers, args)
        native = imap_load.run_all(client, servers, args, MIXES, Usage)
        print_table(points, servers)
        print_logins(logins, servers, args)
        print_latencies(points, servers)
        print_errors(points, servers)
        imap_load.print_table(native, servers, MIXES, comparisons(servers))
        imap_load.print_latencies(native, servers, MIXES)
        imap_load.print_answers(native, servers, MIXES)
        log_problems(servers)
    finally:
        clean_up(servers, root, args.keep)


if __name__ == "__main__":
    run_bench(main, failures=(RuntimeError, OSError, subprocess.SubprocessError, sqlite3.Error))
