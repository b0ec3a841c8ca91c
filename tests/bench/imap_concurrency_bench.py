#!/usr/bin/python3
"""IMAP concurrency benchmark (issue 15): the stress mix of tests/support/imap_stress.py against Tern and a
private Dovecot side by side, on loopback, with and without logins in the mix.

N clients (10) work on one INBOX for --seconds (20) per run: SELECT/EXAMINE, NOOP, FETCH and UID FETCH of flags,
bodies, structures and header fields, STORE of flags and keywords, APPEND, EXPUNGE, IDLE and, in the "logins"
mix, LOGOUT and a new LOGIN now and then. Before each run the INBOX is emptied and given the same 50 messages
(not timed). Runs alternate which server goes first, --repeat (3) of each; the medians of commands per second
and of server CPU time per command are printed with the ratio Tern/Dovecot (commands/s above 1 and CPU/command
below 1: Tern does better), and every protocol error the checker found on each server. Server CPU time is read
from /proc: utime+stime of the server's process and of all its living descendants, with what they collected
from the children they reaped, before and after each run; for Dovecot that is its master, imap-login, imap,
auth, config, anvil, log and stats processes.

Logins cost the same on both: Tern keeps argon2id hashes, and Dovecot's passwd-file gets the very hash Tern
stored for the bench user (read from Tern's SQLite database), as {ARGON2ID}, so both verify the same Argon2id
parameters. Dovecot's authentication cache is on (auth_cache_size = 10M), since Tern is to get an equivalent
one; the CPU time of Dovecot's auth processes per LOGIN is printed ('auth ms/login'): about one argon2id
verification even with the cache on, which spares the passdb lookup, not the hash. Dovecot otherwise runs as
Debian ships it: a new imap-login and imap process for each connection.

The client is one Python process with a thread per IMAP client, parsing and checking every response: when it
uses about one core, commands per second measure the client as much as the servers, and the CPU time per
command is the comparison to read. Run it as root with Debian's /usr/bin/python3 after tools/build (standard
library only); it installs dovecot-imapd with apt-get when it is missing, and stops every process it started,
by PID, when it ends, fails or is interrupted.
"""

import argparse
import datetime
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imap_bench as base
from bench_support import all_pids, clean_up, fmt, interrupt, log, machine_busy_ticks, proc_stat, run, run_bench

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


class Tern(base.Tern):
    """The IMAP bench's Tern; its CPU time is that of its process tree."""

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
            raise RuntimeError(f"no argon2id hash for {base.USER} in Tern's database: {row!r}")
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


def measure(server, logins, args, seed):
    """One run of the stress mix on one server: the INBOX prepared (not timed), then `args.clients` clients for
    `args.seconds`. Returns a dict of the figures."""
    prepared = imap_stress.prepare_mailbox("127.0.0.1", server.port, base.USER, base.PASSWORD, args.messages, seed,
                                           args.timeout)
    time.sleep(0.5)  # the preparing session's processes end
    cpu_before = server.cpu_ticks()
    auth_before = server.auth_ticks() if isinstance(server, Dovecot) else 0
    own_before, machine_before = time.process_time(), machine_busy_ticks()
    result = imap_stress.run_stress("127.0.0.1", server.port, base.USER, base.PASSWORD, clients=args.clients,
                                    seconds=args.seconds, logins=logins, seed=seed, prepared=prepared,
                                    timeout=args.timeout, log=None)
    time.sleep(0.5)  # the last sessions' processes end and are reaped
    if not server.alive():
        raise RuntimeError(f"{server.name} exited during the run; its log ends:\n"
                           + "\n".join(server.log_text().splitlines()[-20:]))
    cpu = (server.cpu_ticks() - cpu_before) / CLOCK_TICKS
    own = time.process_time() - own_before
    machine = (machine_busy_ticks() - machine_before) / CLOCK_TICKS
    logins_done = result.by_command.get("LOGIN", 0)
    auth = (server.auth_ticks() - auth_before) / CLOCK_TICKS if isinstance(server, Dovecot) else None
    return {"rate": result.rate, "commands": result.commands, "cpu": cpu,
            "cpu_ms": 1000 * cpu / max(result.commands, 1), "errors": result.errors, "kinds": result.kinds,
            "samples": result.error_samples, "logins": logins_done, "elapsed": result.elapsed,
            "client": own / max(result.elapsed, 1e-6),
            "others": max(0.0, machine - cpu - own) / (result.elapsed + 0.5),
            "auth_ms": 1000 * auth / logins_done if auth is not None and logins_done else None,
            "latency": result.latency, "by_command": result.by_command}


def median(runs, key):
    values = [run_[key] for run_ in runs if run_.get(key) is not None]
    return statistics.median(values) if values else None


def print_table(points, servers):
    log("")
    header = (f"{'mix':<10} {'server':<12} {'commands/s':>10} {'CPU ms/command':>14} {'errors/run':>10} "
              f"{'logins/run':>10} {'client cores':>12} {'others cores':>12}")
    log(header)
    log("-" * len(header))
    for mix, _ in MIXES:
        for server in servers:
            runs = points[mix][server.name]
            log(f"{mix:<10} {server.name:<12} {fmt(median(runs, 'rate'), '{:.0f}'):>10} "
                f"{fmt(median(runs, 'cpu_ms'), '{:.3f}'):>14} {fmt(median(runs, 'errors'), '{:.0f}'):>10} "
                f"{fmt(median(runs, 'logins'), '{:.0f}'):>10} {fmt(median(runs, 'client'), '{:.2f}'):>12} "
                f"{fmt(median(runs, 'others'), '{:.2f}'):>12}")
        tern, dovecot = points[mix]["Tern"], points[mix]["Dovecot"]
        rate = median(tern, "rate") / median(dovecot, "rate") if median(dovecot, "rate") else None
        cpu = median(tern, "cpu_ms") / median(dovecot, "cpu_ms") if median(dovecot, "cpu_ms") else None
        log(f"{mix:<10} {'Tern/Dovecot':<12} {fmt(rate, '{:.2f}'):>10} {fmt(cpu, '{:.2f}'):>14}")


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20, help="seconds of each run (20)")
    parser.add_argument("--clients", type=int, default=10, help="IMAP clients on the one INBOX (10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mix on each server (3)")
    parser.add_argument("--messages", type=int, default=50, help="messages in the INBOX at the start of a run (50)")
    parser.add_argument("--seed", type=int, default=15, help="seed of the first run; run k uses seed + k (15)")
    parser.add_argument("--timeout", type=float, default=10, help="seconds a command may take (10)")
    parser.add_argument("--quick", action="store_true",
                        help="one 2-second run of each on 30 messages (about 20 s), to check the script works")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder, and print where it is")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.repeat, args.messages = 2, 1, 30
    if os.geteuid() != 0:
        parser.error("run as root: Dovecot's private instance needs it")
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, interrupt)

    base.ensure_dovecot()
    root = Path(tempfile.mkdtemp(prefix="tern-imap-concurrency-"))
    root.chmod(0o755)  # Dovecot's processes (uid 65534, dovenull) must reach into it
    tern = Tern(root)
    servers = [tern]
    started = datetime.datetime.now()
    try:
        tern.setup()
        dovecot = Dovecot(root, tern.password_hash())
        servers.append(dovecot)
        dovecot.check_hash()
        tern.start()
        dovecot.setup([])
        dovecot.start()
        log(f"IMAP concurrency benchmark, {started:%Y-%m-%d %H:%M}: {base.describe_machine()}")
        log(f"Tern: {tern.version()}; Dovecot {dovecot.version()}")
        log(f"{args.clients} clients on one INBOX ({args.messages} messages at the start), {args.seconds:g} s a run, "
            f"{args.repeat} run(s) of each mix on each server, alternating which goes first; medians shown.")
        log("Passwords: both servers verify the same argon2id hash, Tern's (" + dovecot.password_hash.split("$")[3]
            + "), Dovecot through {ARGON2ID} in its passwd-file (doveadm pw -t: verified); Dovecot's auth cache is on "
            "(auth_cache_size = 10M), as Tern is to get an equivalent cache.")
        log("CPU: utime+stime of each server's process tree (Dovecot: master, imap-login, imap, auth, ...), "
            "with what it reaped. 'client': the checking client's own CPU use; 'others': cores other processes "
            "used meanwhile (the machine may be shared).")
        points = {mix: {server.name: [] for server in servers} for mix, _ in MIXES}
        for repeat in range(args.repeat):
            for mix, logins in MIXES:
                order = servers if repeat % 2 == 0 else servers[::-1]
                for server in order:
                    result = measure(server, logins, args, args.seed + repeat)
                    points[mix][server.name].append(result)
                    kinds = ", ".join(f"{kind} {count}" for kind, count in
                                      sorted(result["kinds"].items(), key=lambda item: -item[1]))
                    auth = f", auth {result['auth_ms']:.1f} ms/login" if result["auth_ms"] is not None else ""
                    log(f"  run {repeat + 1} {mix:<9} {server.name:<7} {result['rate']:6.0f} commands/s "
                        f"({result['commands']} in {result['elapsed']:.1f} s, {result['logins']} logins)  CPU "
                        f"{result['cpu']:5.2f} s = {result['cpu_ms']:.3f} ms/command{auth}  client "
                        f"{result['client']:.2f} cores, others {result['others']:.2f} cores  errors "
                        f"{result['errors']}" + (f" ({kinds})" if kinds else ""))
        print_table(points, servers)
        print_latencies(points, servers)
        print_errors(points, servers)
        for server in servers:
            problems = server.problems()
            log(f"\n{server.name} log: {len(problems)} warning/error lines" + (":" if problems else ""))
            for line in problems[:10]:
                log(f"  {line}")
    finally:
        clean_up(servers, root, args.keep)


if __name__ == "__main__":
    run_bench(main, failures=(RuntimeError, OSError, subprocess.SubprocessError, sqlite3.Error))
