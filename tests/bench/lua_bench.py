#!/usr/bin/python3
"""Lua hook overhead on SMTP intake (issue 7): Tern with no scripts against Tern with a five-hook script.

Two Tern instances, identical but for `[plugin.lua]`: one has no scripts, the other runs bench.lua, which
hooks connect, helo, mail, rcpt and message; each hook looks a string up in a table of 1,000 blocked entries
(the client's address, the HELO name, the sender, the recipient, the From header field) and the message hook
adds a header field, X-Bench. No look-up ever hits, so every hook returns nothing (next). /usr/sbin/smtp-source
sends N messages of 4 KB to bench@example.test over 20 sessions, with the options smtp_intake.py gives it, to
one instance and then to the other, alternating which goes first; a run is timed from the start of
smtp-source until every message is a row of the instance's messages table. Medians over the repeats are
printed with Tern's CPU time per message, and the ratio with scripts / without. At the end the bench checks
that every message the scripted instance stored carries X-Bench (and none of the other's does), and that its
log says "1 Lua script(s), 5 hook(s)".

Everything runs on 127.0.0.1 and in one temporary folder, is bounded in time, and is stopped by PID at the
end, on error and on Ctrl-C. Run it as root with Debian's /usr/bin/python3 (standard library only), from the
top of the repository after `tools/build`; it installs postfix (for smtp-source) with apt-get when it is
missing, without starting the system's instance.
"""

import argparse
import datetime
import os
import re
import signal
import statistics
import tempfile
from pathlib import Path

import smtp_intake
from bench_support import clean_up, ensure_postfix, fmt, interrupt, log, run_bench

RECIPIENT = smtp_intake.RECIPIENT
SIZE = 4096
SESSIONS = 20
HOOKS_LINE = "1 Lua script(s), 5 hook(s)"
X_BENCH = "X-Bench"

BENCH_LUA = """\
-- bench.lua, written by tests/bench/lua_bench.py: one hook per SMTP stage, each a look-up in a table of
-- 1,000 blocked strings; the message hook also adds a header field. Nothing the bench sends is blocked.
local blocked = {}
for i = 1, 250 do
  blocked[string.format("10.99.%d.%d", math.floor(i / 256), i % 256)] = true  -- client addresses
  blocked["mx" .. i .. ".blocked.test"] = true                                -- HELO names
  blocked["spammer" .. i .. "@blocked.test"] = true                           -- senders, From fields
  blocked["gone" .. i .. "@example.test"] = true                              -- recipients
end

tern.hook("connect", function(tx)
  if blocked[tx.client.address] then return tern.reject(554, "5.7.1", "Client blocked") end
end)

tern.hook("helo", function(tx)
  if blocked[tx.client.helo] then return tern.reject(550, "5.7.1", "HELO name blocked") end
end)

tern.hook("mail", function(tx)
  if blocked[tx.sender] then return tern.reject(550, "5.7.1", "Sender blocked") end
end)

tern.hook("rcpt", function(tx)
  if blocked[tx.recipient] then return tern.reject(550, "5.1.1", "Recipient blocked") end
end)

tern.hook("message", function(tx)
  if blocked[tx:header("From") or ""] then return tern.reject(550, "5.7.1", "Author blocked") end
  tx:add_header("X-Bench", "bench.lua")
end)
"""


class Tern(smtp_intake.Tern):
    """smtp_intake's Tern (one plain smtp listener, its own data folder, bench@example.test) in a folder of its
    own, with `[plugin.lua] scripts = [script]` when a script is given. Both instances load the same plugins,
    tern-lua.so included: without scripts it registers no hook."""

    def __init__(self, root, name, script=None, build=None):
        root.mkdir(mode=0o755)
        super().__init__(root, "Tern", build)
        self.name = name
        self.script = script

    def write_config(self):
        super().write_config()
        if self.script is not None:
            with self.config.open("a") as config:
                config.write(f'[plugin.lua]\nscripts = ["{self.script}"]\n')

    def header_counts(self):
        """(messages of bench@example.test, how many carry X-Bench in their header, one such field)."""
        rows = self.db.execute(
            "SELECT b.hash, b.body FROM messages m JOIN blobs b ON m.blob = b.hash "
            "JOIN mailboxes x ON m.mailbox_id = x.id JOIN users u ON x.user_id = u.id WHERE u.address = ?",
            (RECIPIENT,))
        total = tagged = 0
        sample = None
        for digest, body in rows:
            if body is None:  # a body over inline_max_size is a file named by its hash
                body = (self.data / "blobs" / digest[:2] / digest).read_bytes()
            header = re.split(rb"\r?\n\r?\n", bytes(body), maxsplit=1)[0]
            found = re.search(rb"(?mi)^" + X_BENCH.encode() + rb":[^\r\n]*", header)
            total += 1
            if found:
                tagged += 1
                sample = sample or found.group().decode(errors="replace")
        return total, tagged, sample


def plugin_built():
    library = Path(smtp_intake.PLUGIN_DIR) / "tern-lua.so"
    if not library.exists():
        raise RuntimeError(f"{library} is missing: build Tern with the lua plugin first (tools/build)")
    return datetime.datetime.fromtimestamp(library.stat().st_mtime).isoformat(timespec="seconds")


def run_line(tern, result, pair_ratio=None):
    return (f"  {tern.name:<12}: {result['rate']:7.0f} msg/s  (in mailbox {result['elapsed']:6.2f} s, smtp-source "
            f"done {result['client']:6.2f} s)  Tern CPU {result['cpu_ms']:.3f} ms/msg, smtp-source "
            f"{result['client_ms']:.2f} ms/msg, others {result['others']:.2f} cores"
            + (f"  [with/without this repeat: {pair_ratio:.3f}]" if pair_ratio else "")
            + (f"  FAILED: {result['error']}" if result["error"] else ""))


def ratio(numerator, denominator):
    return numerator / denominator if numerator and denominator else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10000, help="messages per run (10000)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each configuration (5)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one run may take (300)")
    parser.add_argument("--connection-per-message", action="store_true",
                        help="let smtp-source open a new connection per message (default: -d, one per session, as "
                             "smtp_intake.py's main figures)")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also measure an earlier build (DIR/tern and DIR/plugins), both configurations, "
                             "alternating with this one's")
    parser.add_argument("--quick", action="store_true", help="1,000 messages, 1 repeat: checks the bench works")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder, and print where it is")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.repeats = 1000, 1
    if os.geteuid() != 0:
        parser.error("run as root, as the other benches (smtp-source may have to be installed)")
    reuse = not args.connection_per_message

    # SIGTERM and SIGHUP end the run like Ctrl-C does, through the finally block below.
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, interrupt)

    ensure_postfix()  # smtp-source comes with postfix; its system instance is not started
    root = Path(tempfile.mkdtemp(prefix="tern-lua-bench-"))
    root.chmod(0o755)
    servers = []
    started = datetime.datetime.now()
    try:
        script = root / "bench.lua"
        script.write_text(BENCH_LUA)
        plain = Tern(root / "without", "no scripts")
        servers.append(plain)
        scripted = Tern(root / "with", "5 Lua hooks", script)
        servers.append(scripted)
        if args.baseline:
            servers.append(Tern(root / "baseline-without", "old, no scripts", None, args.baseline))
            servers.append(Tern(root / "baseline-with", "old, 5 hooks", script, args.baseline))
        lua_built = plugin_built()
        for server in servers:
            server.setup()
            server.start()
        log(f"Lua hook overhead on SMTP intake, {started:%Y-%m-%d %H:%M}: "
            f"{smtp_intake.describe_machine(plain.binary)} (smtp-source); tern-lua.so built {lua_built}")
        log(f"Client (smtp-source) and both Tern instances share the machine's {os.cpu_count()} cores; only one "
            "instance is sent mail at a time, the other is idle.")
        mode = ("-d: one connection per session, reused for every message, so the connect and helo hooks run once "
                "per session and mail, rcpt and message once per message" if reuse
                else "without -d: a new connection per message, so every hook runs once per message")
        log(f"{args.messages} messages of {SIZE} octets to {RECIPIENT} over {SESSIONS} sessions per run; smtp-source "
            f"{mode}.")
        log(f"{args.repeats} runs per configuration, alternating which goes first; medians shown. A run lasts from "
            "the start of smtp-source until every message is a row of the instance's messages table. CPU = "
            "utime+stime of the tern process (all threads); 'others' = cores used meanwhile by every other process.")
        for server in servers:  # warm up: open the files, make the Lua states of the event loop threads
            warm = smtp_intake.measure(server, SESSIONS, SIZE, 200, reuse, args.timeout)
            if warm["error"]:
                raise RuntimeError(f"{server.name} warm-up failed: {warm['error']}")
        results = {server.name: [] for server in servers}
        pair_ratios = {"rate": [], "cpu_ms": []}
        for repeat in range(args.repeats):
            # Each instance goes first in turn; with two, the order simply alternates.
            order = servers[repeat % len(servers):] + servers[:repeat % len(servers)]
            log(f" repeat {repeat + 1} of {args.repeats}, {order[0].name} first")
            this = {}
            for server in order:
                this[server.name] = smtp_intake.measure(server, SESSIONS, SIZE, args.messages, reuse, args.timeout)
                results[server.name].append(this[server.name])
            with_, without = this[scripted.name], this[plain.name]
            ok = not with_["error"] and not without["error"]
            if ok:
                for key in pair_ratios:
                    pair_ratios[key].append(with_[key] / without[key])
            for server in order:
                log(run_line(server, this[server.name],
                             with_["rate"] / without["rate"] if ok and server is scripted else None))

        medians = {name: {key: smtp_intake.median_of(runs, key) for key in ("rate", "cpu_ms", "others")}
                   for name, runs in results.items()}
        log("")
        header = f"{'configuration':<16}  {'msg/s':>7}  {'Tern CPU ms/msg':>15}  {'runs':>4}"
        log(header)
        log("-" * len(header))
        for server in servers:
            runs = results[server.name]
            good = sum(1 for result in runs if not result["error"])
            log(f"{server.name:<16}  {fmt(medians[server.name]['rate'], '{:.0f}'):>7}  "
                f"{fmt(medians[server.name]['cpu_ms'], '{:.3f}'):>15}  {good:>4}"
                + (f"  ({len(runs) - good} failed)" if good < len(runs) else ""))
        rate_ratio = ratio(medians[scripted.name]["rate"], medians[plain.name]["rate"])
        cpu_ratio = ratio(medians[scripted.name]["cpu_ms"], medians[plain.name]["cpu_ms"])
        log(f"{'with / without':<16}  {fmt(rate_ratio, '{:.3f}'):>7}  {fmt(cpu_ratio, '{:.3f}'):>15}  "
            "(ratios of the medians)")
        if args.baseline:
            for new, old in ((plain, servers[2]), (scripted, servers[3])):
                log(f"{'this / old, ' + ('with' if new.script else 'without'):<16}  "
                    f"{fmt(ratio(medians[new.name]['rate'], medians[old.name]['rate']), '{:.3f}'):>7}  "
                    f"{fmt(ratio(medians[new.name]['cpu_ms'], medians[old.name]['cpu_ms']), '{:.3f}'):>15}  "
                    f"(this build against {args.baseline}, ratios of the medians)")
        if pair_ratios["rate"]:
            log(f"Median of the per-repeat ratios: msg/s {statistics.median(pair_ratios['rate']):.3f}, "
                f"CPU per message {statistics.median(pair_ratios['cpu_ms']):.3f}.")
        if medians[scripted.name]["cpu_ms"] and medians[plain.name]["cpu_ms"]:
            extra = (medians[scripted.name]["cpu_ms"] - medians[plain.name]["cpu_ms"]) * 1000
            log(f"Tern CPU per message with the script minus without: {extra:+.0f} µs (difference of the medians; "
                "a negative one means the hooks' cost is below the noise).")
        if rate_ratio:
            verdict = "met" if rate_ratio >= 0.9 else "NOT met"
            change = (f"{(1 - rate_ratio) * 100:.1f}% slower" if rate_ratio < 1
                      else f"{(rate_ratio - 1) * 100:.1f}% faster")
            log(f"Target (issue 7), at most 10% slower with the script: {verdict} (with the script {change}, by the "
                "medians of msg/s).")
        others = [result["others"] for runs in results.values() for result in runs]
        log(f"(client and both instances share the machine's {os.cpu_count()} cores; other processes and kernel "
            f"threads used a median of {statistics.median(others):.2f} cores, at most {max(others):.2f}, during "
            "the runs)")

        # Did the script run? Its hooks in the log, its header on every message it saw, none on the others.
        log("")
        checks_failed = []
        for server in servers:
            total, tagged, sample = server.header_counts()
            expected = total if server.script is not None else 0
            log(f"{server.name}: {tagged} of {total} stored messages carry {X_BENCH}"
                + (f" (e.g. '{sample}')" if sample else "") + ("" if tagged == expected else "  UNEXPECTED"))
            if tagged != expected:
                checks_failed.append(f"{server.name}: {tagged} of {total} messages with {X_BENCH}")
            said = HOOKS_LINE in server.log_text()
            lua_lines = [line for line in server.log_text().splitlines() if "Lua script(s)" in line]
            log(f"{server.name}: log " + (f"says '{lua_lines[0].strip()}'" if lua_lines
                                           else "has no 'Lua script(s)' line"))
            if said != (server.script is not None):
                checks_failed.append(f"{server.name}: log {'has' if said else 'lacks'} '{HOOKS_LINE}'")
            problems = server.problems()
            log(f"{server.name}: {len(problems)} warning/error lines in the log" + (":" if problems else ""))
            for line in problems[:10]:
                log(f"  {line}")
            if problems:
                checks_failed.append(f"{server.name}: {len(problems)} warning/error lines in the log")
        if checks_failed:
            raise RuntimeError("checks failed: " + "; ".join(checks_failed))
        failures = sum(1 for runs in results.values() for result in runs if result["error"])
        if failures:
            raise RuntimeError(f"{failures} runs failed")
    finally:
        clean_up(servers, root, args.keep)


if __name__ == "__main__":
    run_bench(main)
