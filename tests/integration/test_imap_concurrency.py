"""Ten IMAP clients on one INBOX at once (issue 15), each checking every response against its own model of the
mailbox: tests/support/imap_stress.py. What one session does must reach the others as RFC 3501 says (EXPUNGE
numbers, EXISTS, UIDs that only grow, FLAGS announced before they are used, FETCH served from the session's view
when another session expunged the message), and nothing may hang, disconnect or answer NO under the load.

The run is random but seeded: the seed is printed, and TERN_STRESS_SEED replays a run's choices (the threads'
interleaving differs)."""

import os
import sys
from pathlib import Path

import pytest

from conftest import ALICE, ALICE_PASSWORD, Tern

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import imap_stress  # noqa: E402  (tests/support is no package)

SECONDS = 20


def test_ten_clients_on_one_inbox_see_a_consistent_mailbox(tmp_path):
    server = Tern(tmp_path, listeners={"imap": ("imap", "none", True)})
    server.add_users()
    server.start()
    try:
        seed = os.environ.get("TERN_STRESS_SEED")
        result = imap_stress.run_stress("127.0.0.1", server.port("imap"), ALICE, ALICE_PASSWORD, clients=10,
                                        seconds=SECONDS, logins=True, seed=int(seed) if seed else None)
        alive = server.process.poll() is None
    finally:
        server.stop()
    assert alive, f"tern exited during the run ({server.process.returncode}):\n{server.stderr()}"
    assert result.commands > 100, f"only {result.commands} commands in {result.elapsed:.0f} s"
    if result.errors:
        pytest.fail(result.summary(), pytrace=False)
