"""The native client's runs of imap_concurrency_bench.py: imap_load_client.c and imap_load_mix.c (beside this file)
built at startup, run on each server in turn after the checking runs, and their table.

The checking client of tests/support/imap_stress.py spends about 0.5 ms of CPU on a command and its threads share
one interpreter lock: it tops out near 1,700 commands/s, so its commands per second are partly its own. The native
client sends the same mix (IDLE left out) from one thread per client in C, keeping only the number of messages and
the UIDs it needs for valid commands, and checks no data: its commands/s and server CPU per command are the
servers' when the client costs little. Its own CPU time is read from the rusage of the reaped child. It gives a
command 10 s (its own constant, whatever --timeout says) before it counts a timeout and connects again.
"""

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import imap_bench as base
from bench_support import children_cpu_seconds, counts_text, fmt, log, log_ratio_rows, median

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import imap_stress  # noqa: E402  (tests/support is no package)

HERE = Path(__file__).resolve().parent


def build_client(root):
    """Compiles the native client into root (plain POSIX sockets and pthreads, no other library)."""
    binary = root / "imap_load_client"
    sources = [str(HERE / "imap_load_client.c"), str(HERE / "imap_load_mix.c")]
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-pthread", "-o", str(binary), *sources], check=True)
    return binary


def measure(client, server, logins, args, seed, usage_type):
    """One run of the native client on one server: the INBOX prepared as for the checking runs (not timed), then
    `args.clients` clients for `args.seconds`. `usage_type` is the bench's Usage. Returns a dict of the figures."""
    imap_stress.prepare_mailbox("127.0.0.1", server.port, base.USER, base.PASSWORD, args.messages, seed, args.timeout)
    time.sleep(0.5)  # the preparing session's processes end
    usage = usage_type(server)
    before = children_cpu_seconds()
    command = [str(client), "127.0.0.1", str(server.port), base.USER, base.PASSWORD, str(args.clients),
               f"{args.seconds:g}", "1" if logins else "0", str(seed)]
    # A stuck command costs a client 10 s at most, and the LOGOUT at the end as much again.
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.seconds + 60)
    client_cpu = children_cpu_seconds() - before
    cpu, own, machine, auth = usage.end("the native client's run")
    if done.returncode != 0:
        raise RuntimeError(f"the native IMAP client exited {done.returncode} on {server.name}: {done.stderr.strip()}")
    report = json.loads(done.stdout)
    commands, elapsed = report["commands"], report["elapsed"]
    logins_done = report["logins"]
    return {"rate": commands / elapsed, "commands": commands, "elapsed": elapsed, "cpu": cpu,
            "cpu_ms": 1000 * cpu / max(commands, 1), "client_ms": 1000 * client_cpu / max(commands, 1),
            "client": client_cpu / elapsed, "others": max(0.0, machine - cpu - own - client_cpu) / (elapsed + 0.5),
            "no": sum(report["no"].values()), "no_by_command": report["no"], "bad": report["bad"],
            "errors": report["errors"], "error_kinds": report["error_kinds"], "samples": report["samples"],
            "logins": logins_done, "p50": report["p50_ms"], "p99": report["p99_ms"], "latency": report["latency_ms"],
            "by_command": report["by_command"],
            "auth_ms": 1000 * auth / logins_done if auth is not None and logins_done else None}


def describe(result):
    kinds = counts_text(result["error_kinds"])
    auth = f", auth {result['auth_ms']:.1f} ms/login" if result["auth_ms"] is not None else ""
    return (f"{result['rate']:6.0f} commands/s ({result['commands']} in {result['elapsed']:.1f} s, {result['logins']} "
            f"logins)  CPU {result['cpu']:5.2f} s = {result['cpu_ms']:.3f} ms/command{auth}  client "
            f"{result['client_ms']:.3f} ms/command = {result['client']:.2f} cores, others {result['others']:.2f} "
            f"cores  p50 {result['p50']:.2f} ms, p99 {result['p99']:.1f} ms  NO {result['no']} BAD {result['bad']} "
            f"errors {result['errors']}" + (f" ({kinds})" if kinds else ""))


def run_all(client, servers, args, mixes, usage_type):
    """--repeat runs of each mix on each server, each server going first in turn. Returns {mix: {name: [result]}}."""
    log(f"\nThe same mix from the native client ({client.name}, C: no checks but of NO, BAD and the protocol's "
        f"framing), {args.clients} clients, {args.seconds:g} s a run:")
    points = {mix: {server.name: [] for server in servers} for mix, _ in mixes}
    for repeat in range(args.repeat):
        order = servers[repeat % len(servers):] + servers[:repeat % len(servers)]
        for mix, with_logins in mixes:
            for server in order:
                result = measure(client, server, with_logins, args, args.seed + repeat, usage_type)
                points[mix][server.name].append(result)
                log(f"  run {repeat + 1} {mix:<9} {server.name:<8} {describe(result)}")
    return points


def print_table(points, servers, mixes, comparisons):
    """`comparisons`: (label, first, second) server names for the ratio rows."""
    log("\nThe mix from the native client, medians of the runs (client: its own CPU time, per command and in cores):")
    header = (f"{'mix':<10} {'server':<17} {'commands/s':>10} {'CPU ms/command':>14} {'client ms/cmd':>13} "
              f"{'client cores':>12} {'NO/run':>7} {'BAD/run':>7} {'errors/run':>10} {'logins/run':>10} "
              f"{'p50 ms':>7} {'p99 ms':>7} {'others cores':>12}")
    log(header)
    log("-" * len(header))
    for mix, _ in mixes:
        for server in servers:
            runs = points[mix][server.name]
            log(f"{mix:<10} {server.name:<17} {fmt(median(runs, 'rate'), '{:.0f}'):>10} "
                f"{fmt(median(runs, 'cpu_ms'), '{:.3f}'):>14} {fmt(median(runs, 'client_ms'), '{:.3f}'):>13} "
                f"{fmt(median(runs, 'client'), '{:.2f}'):>12} {fmt(median(runs, 'no'), '{:.0f}'):>7} "
                f"{fmt(median(runs, 'bad'), '{:.0f}'):>7} {fmt(median(runs, 'errors'), '{:.0f}'):>10} "
                f"{fmt(median(runs, 'logins'), '{:.0f}'):>10} {fmt(median(runs, 'p50'), '{:.2f}'):>7} "
                f"{fmt(median(runs, 'p99'), '{:.1f}'):>7} {fmt(median(runs, 'others'), '{:.2f}'):>12}")
        log_ratio_rows(mix, points, comparisons)


def print_latencies(points, servers, mixes):
    """Median and 99th percentile of each command's time to its tagged reply, the medians of the runs'."""
    for mix, _ in mixes:
        names = sorted({name for server in servers for run_ in points[mix][server.name] for name in run_["latency"]})
        log(f"\nLatency from the native client, {mix} mix: ms to the tagged reply, median (99th percentile), and "
            "commands per run")
        log(f"{'command':<12} " + " ".join(f"{server.name:>24}" for server in servers))
        for name in names:
            cells = []
            for server in servers:
                runs = [run_ for run_ in points[mix][server.name] if name in run_["latency"]]
                if not runs:
                    cells.append(f"{'—':>24}")
                    continue
                middle = statistics.median(run_["latency"][name][0] for run_ in runs)
                high = statistics.median(run_["latency"][name][1] for run_ in runs)
                count = statistics.median(run_["by_command"].get(name, 0) for run_ in runs)
                cells.append(f"{f'{middle:.2f} ({high:.1f}) x{count:.0f}':>24}")
            log(f"{name:<12} " + " ".join(cells))


def print_answers(points, servers, mixes):
    """NO (by command: some are races, such as a UID EXPUNGE of a message another session expunged), BAD and
    other protocol trouble each server gave the native client, with a few samples."""
    for server in servers:
        runs = [run_ for mix, _ in mixes for run_ in points[mix][server.name]]
        no, kinds = {}, {}
        for run_ in runs:
            for name, count in run_["no_by_command"].items():
                no[name] = no.get(name, 0) + count
            for kind, count in run_["error_kinds"].items():
                kinds[kind] = kinds.get(kind, 0) + count
        bad = sum(run_["bad"] for run_ in runs)
        log(f"\n{server.name}, native client, {len(runs)} runs: NO {sum(no.values())}"
            + (" (" + ", ".join(f"{name} {count}" for name, count in sorted(no.items())) + ")" if no else "")
            + f", BAD {bad}, other errors {sum(kinds.values())}"
            + (" (" + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())) + ")" if kinds else ""))
        seen = []
        for run_ in runs:
            for sample in run_["samples"]:
                if sample not in seen and len(seen) < 8:
                    seen.append(sample)
                    log(f"  - {sample}")
