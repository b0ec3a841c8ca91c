"""What the benches in tests/bench share: ports, processes, commands, output formatting, CPU time from /proc and
a private Postfix instance."""

import contextlib
import os
import pwd
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def fmt(value, pattern):
    return "—" if value is None else pattern.format(value)


def median(runs, key):
    """The median of `key` over the runs (dicts) that have it, or None."""
    values = [run_[key] for run_ in runs if run_.get(key) is not None]
    return statistics.median(values) if values else None


def ratio(top, bottom):
    return top / bottom if top is not None and bottom else None


def counts_text(counts):
    """"kind n, kind n" for a dict of counts, the largest first."""
    return ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items(), key=lambda item: -item[1]))


def log_ratio_rows(mix, points, comparisons):
    """The ratio rows under a mix's table: commands/s and CPU per command of `first` over `second`, for each
    (label, first, second) of `comparisons`; `points[mix][server name]` holds the runs."""
    for label, first, second in comparisons:
        one, other = points[mix][first], points[mix][second]
        log(f"{mix:<10} {label:<17} {fmt(ratio(median(one, 'rate'), median(other, 'rate')), '{:.2f}'):>10} "
            f"{fmt(ratio(median(one, 'cpu_ms'), median(other, 'cpu_ms')), '{:.2f}'):>14}")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def interrupt(number, frame):
    raise KeyboardInterrupt


def log(text):
    print(text, flush=True)


def run(command, input=None, timeout=120, check=True):
    result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} exited {result.returncode}:\n"
                           f"{result.stdout}{result.stderr}")
    return result


def wait_listening(port, process_alive, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive():
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False



# --- /proc ---------------------------------------------------------------------------------------------------

def proc_stat(pid):
    """(ppid, utime + stime, cutime + cstime) in clock ticks, or None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses
    # fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def all_pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children_of(parent):
    found = []
    for pid in all_pids():
        stat = proc_stat(pid)
        if stat and stat[0] == parent:
            found.append(pid)
    return found


def machine_busy_ticks():
    """Clock ticks all CPUs spent on anything but idle and I/O wait, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pid_alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- Postfix -------------------------------------------------------------------------------------------------

def ensure_postfix():
    """Installs postfix (which brings smtp-source and smtp-sink) when dpkg says it is missing, preseeded so that no
    system instance is configured to start; `apt-get update` only if the first attempt fails."""
    if subprocess.run(["dpkg", "-s", "postfix"], capture_output=True).returncode != 0:
        log("postfix is missing: installing it with apt-get (the system instance is not started)")
        run(["debconf-set-selections"], input="postfix postfix/main_mailer_type select Local only\n")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = ["apt-get", "install", "-y", "postfix"]
        if subprocess.run(install, env=env).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, check=True)
            subprocess.run(install, env=env, check=True)
    for tool in (SMTP_SOURCE, SMTP_SINK):
        if not Path(tool).exists():
            raise RuntimeError(f"{tool} is missing although postfix is installed")


class PostfixInstance:
    """A private Postfix instance in root/postfix: its own config, queue, data and log file, no chroot, no DNS, an
    smtpd on 127.0.0.1:port that lets 127.0.0.0/8 relay. A bench adds its delivery settings by extending
    `settings()` and `prepare()`."""

    name = "Postfix"

    def __init__(self, root):
        self.root = root / "postfix"
        self.etc = self.root / "etc"
        self.queue = self.root / "queue"
        self.data = self.root / "data"
        self.maillog = self.root / "maillog"
        self.port = free_port()
        self.master = None

    def postconf(self, *args):
        run(["postconf", "-c", str(self.etc), *args])

    def settings(self):
        """main.cf parameters, name -> value."""
        return {
            "queue_directory": str(self.queue),
            "data_directory": str(self.data),
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(self.root),
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "postfix.bench.test",
            "mydomain": "bench.test",
            "mydestination": "localhost",
            "mynetworks": "127.0.0.0/8",
            "alias_maps": "",
            "alias_database": "",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination",
            # No DNS and no reverse lookups of the loopback client.
            "smtpd_peername_lookup": "no",
            "smtp_host_lookup": "native",
            "lmtp_host_lookup": "native",
            "smtp_dns_support_level": "disabled",
            # No per-client connection limit for 127.0.0.1, and room for 100 sessions plus the other daemons.
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_event_limit_exceptions": "127.0.0.0/8",
            "default_process_limit": "200",
        }

    def prepare(self):
        """Folders and table files the settings refer to; called after etc is copied."""

    def setup(self):
        postfix_user = pwd.getpwnam("postfix")
        self.root.mkdir(mode=0o755)
        shutil.copytree("/etc/postfix", self.etc)
        # main.cf from scratch: tools/install-deps installs postfix unconfigured, so the system's may be missing.
        (self.etc / "main.cf").write_text("compatibility_level = 3.6\n")
        self.queue.mkdir(mode=0o755)
        self.data.mkdir(mode=0o700)
        os.chown(self.data, postfix_user.pw_uid, postfix_user.pw_gid)
        self.prepare()
        self.postconf("-e", *(f"{name} = {value}" for name, value in self.settings().items()))
        self.postconf("-F", "*/*/chroot = n")
        self.postconf("-M#", "smtp/inet")
        self.postconf("-M", f"127.0.0.1:{self.port}/inet = 127.0.0.1:{self.port} inet n - n - - smtpd")

    def start(self):
        run(["postfix", "-c", str(self.etc), "start"], timeout=60)
        pid_file = self.queue / "pid" / "master.pid"
        deadline = time.monotonic() + 20
        while self.master is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                self.master = int(pid_file.read_text().split()[0])
            time.sleep(0.05)
        if self.master is None or not wait_listening(self.port, lambda: pid_alive(self.master)):
            raise RuntimeError(f"postfix did not start:\n{self.log_text()}")

    def stop(self):
        if self.master is None:  # `postfix start` may have failed after the master started
            with contextlib.suppress(OSError, ValueError):
                self.master = int((self.queue / "pid" / "master.pid").read_text().split()[0])
        if self.master is None:
            return
        subprocess.run(["postfix", "-c", str(self.etc), "stop"], capture_output=True, timeout=60)
        deadline = time.monotonic() + 20
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
        """The master's own time, what it collected from exited children, and its living children's time."""
        master = proc_stat(self.master)
        total = master[1] + master[2]
        for pid in children_of(self.master):
            stat = proc_stat(pid)
            if stat:
                total += stat[1]
        return total

    def log_text(self):
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def problems(self):
        return [line for line in self.log_text().splitlines()
                if any(word in line for word in ("warning:", "error:", "fatal:", "panic:", "status=deferred",
                                                 "status=bounced"))]


# --- Tern ----------------------------------------------------------------------------------------------------

def tern_config(data, plugins, log_file, port, more=(), disabled=()):
    """A bench server's config: one plain SMTP listener on 127.0.0.1:`port`, limits out of the way, the plugins
    `disabled` left out, then the `more` lines (plugin sections)."""
    return "\n".join([
        "[server]",
        'hostname = "tern.bench.test"',
        f'data_dir = "{data}"',
        "shutdown_grace = 5",
        "[plugins]",
        f'dirs = ["{plugins}"]',
        *(["disable = [" + ", ".join(f'"{name}"' for name in disabled) + "]"] if disabled else []),
        "[log]",
        f'file = "{log_file}"',
        "[limits]",
        "max_connections = 5000",
        "max_connections_per_client = 5000",
        "[[listener]]",
        'protocol = "smtp"',
        f'address = "127.0.0.1:{port}"',
        'tls = "none"',
        *more,
    ]) + "\n"


# Warnings a bench server gives by design: it makes its own certificate, and it runs as root like the bench.
EXPECTED_WARNINGS = ("made a self-signed certificate", "running as root")


def tern_log_problems(text):
    """The warning and error lines of a Tern log, but for those the benches expect."""
    return [line for line in text.splitlines() if len(line.split()) > 1
            and line.split()[1] in ("warn", "warning", "error", "critical")
            and not any(expected in line for expected in EXPECTED_WARNINGS)]


def tern_paths(server, root, name, build, tern, plugin_dir):
    """Where a bench's Tern named `name` lives under `root`, and the build it copies: the folder `build` holding an
    earlier build's `tern` and `plugins/` (--baseline), or this tree's binary `tern` and plugins `plugin_dir`."""
    server.name = name
    server.source_binary = Path(build) / "tern" if build else Path(tern)
    server.source_plugins = Path(build) / "plugins" if build else Path(plugin_dir)
    server.root = root / name.lower()
    server.data = server.root / "var"
    server.config = server.root / "tern.toml"
    server.log = server.root / "tern.log"
    server.binary = server.root / "tern"
    server.plugins = server.root / "plugins"


def log_problems(servers):
    """Prints each server's warning and error lines (the first ten) after a run: a figure from a server that
    complained is read with that in mind."""
    for server in servers:
        problems = server.problems()
        log(f"\n{server.name} log: {len(problems)} warning/error lines" + (":" if problems else ""))
        for line in problems[:10]:
            log(f"  {line}")


def stop_process(process, timeout=30):
    """SIGTERM, then SIGKILL when `process` has not ended within `timeout` seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- the end of a run ----------------------------------------------------------------------------------------

def clean_up(servers, root, keep, others=()):
    """Stops every server (last started first) and the `others` (a sink), and removes the run's folder unless
    `keep`. A second Ctrl-C meanwhile must not stop the cleanup."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    for server in [*reversed(servers), *others]:
        with contextlib.suppress(Exception):
            server.stop()
    if keep:
        log(f"kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


def run_bench(main, failures=(RuntimeError, OSError, subprocess.SubprocessError)):
    """Runs a bench's main(), turning Ctrl-C and the expected failures into an exit with a message."""
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted: servers stopped")
    except failures as failure:
        sys.exit(f"failed: {failure}\n(servers stopped)")
