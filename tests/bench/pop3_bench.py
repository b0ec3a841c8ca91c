#!/usr/bin/python3
"""POP3 benchmark (issue 5): RETR of every message of a 10,000-message maildrop, Tern against a private Dovecot
(dovecot-pop3d) in the same run, on the same messages.

It reuses imap_bench.py's servers and messages: Tern gets them by IMAP APPEND, Dovecot as Maildir files with
realistic names. Each run logs in over POP3 (USER/PASS, plain TCP on 127.0.0.1), then RETRs messages 1 to N
and QUITs without DELE: one round with each RETR waiting for its whole reply, as fetchmail and getmail do,
and one with 16 RETRs under way at once (PIPELINING, which both servers advertise).
Runs alternate which server goes first; the median time of --repeat runs is printed with each server's CPU
time and the ratio Dovecot time / Tern time (above 1: Tern is faster). Every reply is checked: N messages and
the exact number of octets once dot-stuffing is undone and line ends are CRLF.

Run it as root with Debian's /usr/bin/python3 after tools/build; it installs dovecot-imapd and dovecot-pop3d
with apt-get when they are missing and stops every process it started, by PID, when it ends, fails or is
interrupted.
"""

import argparse
import contextlib
import datetime
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import imap_bench as base
from bench_support import free_port, interrupt, log


class Dovecot(base.Dovecot):
    """The IMAP bench's Dovecot with a POP3 listener too."""

    def __init__(self, root):
        super().__init__(root)
        self.imap_port, self.port = self.port, free_port()

    def write_config(self):
        imap_port, self.port = self.port, self.imap_port
        super().write_config()
        self.port = imap_port
        text = self.config.read_text().replace("protocols = imap", "protocols = imap pop3")
        text += f"""\
pop3_uidl_format = %08Xu%08Xv
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""
        self.config.write_text(text)


class Tern(base.Tern):
    """The IMAP bench's Tern with a plain POP3 listener too."""

    def __init__(self, root):
        super().__init__(root)
        self.imap_port, self.pop3_port = self.port, free_port()

    def write_config(self):
        super().write_config()
        with open(self.config, "a") as config:
            config.write(f'[[listener]]\nprotocol = "pop3"\naddress = "127.0.0.1:{self.pop3_port}"\n'
                         'tls = "none"\nallow_plaintext_auth = true\n')


def ensure_packages():
    missing = [name for name in ("dovecot-imapd", "dovecot-pop3d")
               if subprocess.run(["dpkg", "-s", name], capture_output=True).returncode != 0]
    if not missing:
        return
    log(f"installing {' '.join(missing)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    for command in (["systemctl", "disable", "--now", "dovecot"], ["service", "dovecot", "stop"]):
        subprocess.run(command, capture_output=True)


def build_client(root):
    """Compiles pop3_retr_client.c (beside this script) into root: a client in C costs the run little."""
    binary = root / "pop3_retr_client"
    source = Path(__file__).resolve().parent / "pop3_retr_client.c"
    subprocess.run(["cc", "-O2", "-o", str(binary), str(source)], check=True)
    return binary


def retrieve_all(client, port, count, timeout, window=1, server=None):
    """Logs in, then RETRs messages 1..count (`window` of them under way at once), QUITs. Returns (messages,
    octets after un-stuffing, seconds, server CPU seconds, other processes' cores), the last three measured
    from the first RETR to the QUIT's reply: the login is not timed."""
    process = subprocess.Popen([str(client), str(port), base.USER, base.PASSWORD, str(count), str(window)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if process.stdout.readline().strip() != "ready":
            process.wait(timeout=timeout)
            raise RuntimeError(f"the POP3 client failed on port {port}: {process.stderr.read().strip()}")
        cpu_before = server.cpu_ticks() if server else 0
        machine_before = base.machine_busy_ticks()
        start = time.monotonic()
        process.stdin.write("go\n")
        process.stdin.flush()
        output = process.stdout.readline()
        elapsed = time.monotonic() - start
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
    if process.returncode != 0 or not output:
        raise RuntimeError(f"the POP3 client failed on port {port}: {process.stderr.read().strip()}")
    time.sleep(0.1)  # let the server's processes finish what follows the reply before reading its CPU time
    cpu = (server.cpu_ticks() - cpu_before) / base.CLOCK_TICKS if server else 0.0
    others = max(0.0, (base.machine_busy_ticks() - machine_before) / base.CLOCK_TICKS - cpu) / max(elapsed, 1e-6)
    messages, octets = output.split()
    return int(messages), int(octets), elapsed, cpu, others


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10000, help="messages in the maildrop (10000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs on each server (3)")
    parser.add_argument("--seed", type=int, default=4, help="seed of the generated messages (4)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a reply may take (600)")
    parser.add_argument("--windows", type=lambda text: [int(part) for part in text.split(",")], default=[1, 16],
                        help="RETRs under way at once, one round each, comma-separated (1,16)")
    parser.add_argument("--quick", action="store_true", help="a small run, to check the script works")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.repeat = 500, 1
    if os.geteuid() != 0:
        parser.error("run as root: Dovecot's private instance needs it")
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, interrupt)
    ensure_packages()
    root = Path(tempfile.mkdtemp(prefix="tern-pop3-bench-"))
    root.chmod(0o755)
    tern, dovecot = Tern(root), Dovecot(root)
    started = datetime.datetime.now()
    try:
        client = build_client(root)
        messages, _ = base.make_messages(args.messages, args.seed)
        expected = sum(len(message) for message, _ in messages)
        tern.setup()
        tern.start()
        dovecot.setup(messages)
        dovecot.start()
        log(f"POP3 benchmark, {started:%Y-%m-%d %H:%M}: {base.describe_machine()}")
        log(f"Tern: {tern.version()}; Dovecot {dovecot.version()}")
        log(f"{args.messages} messages, {expected / 1e6:.1f} MB; client and both servers share the machine's "
            f"{os.cpu_count()} cores.")
        tern.port = tern.imap_port
        load = base.load_tern(tern, messages, 8, args.timeout)
        log(f"Loading Tern by IMAP APPEND: {load:.1f} s")
        ports = {"Tern": tern.pop3_port, "Dovecot": dovecot.port}
        # A first pass on each, not timed: Dovecot builds its index and UIDL list then.
        for server in (tern, dovecot):
            retrieve_all(client, ports[server.name], args.messages, args.timeout)
        for window in args.windows:
            results = {"Tern": [], "Dovecot": []}
            mode = "one RETR at a time" if window == 1 else f"{window} RETRs under way at once (pipelined)"
            log(f"\nRETR of {args.messages} messages, {mode}:")
            for repeat in range(args.repeat):
                order = (tern, dovecot) if repeat % 2 == 0 else (dovecot, tern)
                for server in order:
                    count, octets, elapsed, cpu, others = retrieve_all(client, ports[server.name], args.messages,
                                                                       args.timeout, window, server)
                    if octets != expected:
                        raise RuntimeError(f"{server.name} returned {octets} octets, expected {expected}")
                    results[server.name].append((elapsed, cpu, others))
                    log(f"  run {repeat + 1} {server.name:<7} RETR {count}: {elapsed:7.3f} s, "
                        f"{count / elapsed:7.0f} msg/s, CPU {cpu:5.2f} s, others {others:.2f} cores")
            tern_time = statistics.median(run[0] for run in results["Tern"])
            dovecot_time = statistics.median(run[0] for run in results["Dovecot"])
            log(f"{'server':<8} {'RETR s':>8} {'msg/s':>8} {'CPU s':>7}")
            for name, median in (("Tern", tern_time), ("Dovecot", dovecot_time)):
                cpu = statistics.median(run[1] for run in results[name])
                log(f"{name:<8} {median:8.3f} {args.messages / median:8.0f} {cpu:7.2f}")
            log(f"Dovecot/Tern time: {dovecot_time / tern_time:.2f} (target: at least 1.5)")
        for server in (tern, dovecot):
            problems = server.problems()
            log(f"{server.name} log: {len(problems)} warning/error lines")
            for line in problems[:5]:
                log(f"  {line}")
    finally:
        for server in (tern, dovecot):
            with contextlib.suppress(Exception):
                server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
