"""What the benches in tests/bench share: ports, processes, commands and output formatting."""

import socket
import subprocess
import time


def fmt(value, pattern):
    return "—" if value is None else pattern.format(value)


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
