#!/usr/bin/python3
"""What the sender checks cost SMTP intake (issue 16): Tern with the spf and dnsbl plugins checking every message
against Tern without them, in one run, against a loopback DNS server (tests/integration/dns_fixture.py).

smtp-source sends N messages of one size over S parallel sessions from 127.0.0.1, as sender@client.test with HELO
client.test, to bench@example.test; a run is timed until every message is in the mailbox (as smtp_intake.py
does). With the checks on, each message gets an SPF evaluation of client.test (a TXT record that passes
127.0.0.0/8, reached through an include) and a look-up of 127.0.0.1 in one address block list; the server's
resolver keeps answers for their TTL (300 s), as it would for a sender that writes often. The two configurations
take turns, the first alternating between repeats; medians are printed with the ratio on/off.

    /usr/bin/python3 tests/bench/auth_checks_bench.py [--sessions 20] [--size 4096] [--count 3000] [--repeat 3]
"""

import argparse
import signal
import sys
import tempfile
from pathlib import Path

from bench_support import clean_up, fmt, interrupt, log, run_bench, tern_config
from smtp_intake import Tern, describe_machine, measure, median_of

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
from peers import DnsServer  # noqa: E402  (the integration tests' loopback DNS server, dns_fixture.py)
ZONE = {
    "client.test": [{"type": "TXT", "text": "v=spf1 include:_spf.client.test -all"}],
    "_spf.client.test": [{"type": "TXT", "text": "v=spf1 ip4:127.0.0.0/8 -all"}],
}
CHECKED = ("spf", "dnsbl")


class CheckingTern(Tern):
    """Tern with the checks on (`checks`) or their plugins disabled."""

    def __init__(self, root, name, checks, dns):
        super().__init__(root, name)
        self.checks = checks
        self.dns = dns

    def write_config(self):
        more = [f"[dns]\nservers = {self.dns.dns_servers}"] if self.checks else []
        if self.checks:
            more += ["[plugin.spf]", "skip_networks = []", "[plugin.dnsbl]", "allow = []",
                     "[[plugin.dnsbl.list]]", 'zone = "bl.test"']
        disabled = () if self.checks else CHECKED
        self.config.write_text(tern_config(self.data, self.plugins, self.log, self.port, more, disabled))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the run's folder")
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, interrupt)
    root = Path(tempfile.mkdtemp(prefix="tern-auth-bench-"))
    servers = []
    dns = None
    try:
        dns = DnsServer(root, ZONE)
        servers = [CheckingTern(root, "checks off", False, dns), CheckingTern(root, "checks on", True, dns)]
        log(f"Sender checks and SMTP intake: {describe_machine(servers[0].source_binary)}")
        log(f"{options.count} messages of {options.size} octets over {options.sessions} sessions, "
            f"{options.repeat} repeats; on = spf (an include, -all) and one address block list")
        for server in servers:
            server.setup()
            server.start()
        results = {server.name: [] for server in servers}
        for repeat in range(options.repeat):
            order = servers if repeat % 2 == 0 else list(reversed(servers))
            for server in order:
                result = measure(server, options.sessions, options.size, options.count, False, 300)
                if result["error"]:
                    raise RuntimeError(f"{server.name}: {result['error']}")
                results[server.name].append(result)
                log(f"  run {repeat + 1} {server.name:10} {result['rate']:8.0f} messages/s  "
                    f"CPU {result['cpu_ms']:.3f} ms/message")
        off = median_of(results["checks off"], "rate")
        on = median_of(results["checks on"], "rate")
        log(f"\nmedians: checks off {off:.0f} messages/s ({median_of(results['checks off'], 'cpu_ms'):.3f} ms CPU), "
            f"checks on {on:.0f} messages/s ({median_of(results['checks on'], 'cpu_ms'):.3f} ms CPU)")
        log(f"on/off: {fmt(on / off, '{:.2f}')} (the issue's target: at least 0.75)")
        queries = dns.queries()
        log(f"DNS queries the checks made: {len(queries)} ({', '.join(sorted(set(queries)))})")
        for server in servers:
            problems = server.problems()
            if problems:
                log(f"{server.name} log: " + "; ".join(problems[:5]))
    finally:
        clean_up(servers, root, options.keep, [dns] if dns is not None else [])


if __name__ == "__main__":
    run_bench(main)
