"""Plugins in a running server: the out-of-tree example, refusals, and hooks that misbehave."""

import os
import poplib
import sqlite3
import smtplib
import subprocess
from pathlib import Path

import pytest

from conftest import ALICE, ALICE_PASSWORD, FIXTURE_PLUGINS, PLUGIN_DIR, TERN, Tern, insecure_context

EXAMPLE_DIR = os.environ.get("TERN_EXAMPLE_PLUGIN_DIR", str(Path(PLUGIN_DIR).parent / "example-plugin" / "plugins"))
REFUSED = [str(Path(FIXTURE_PLUGINS) / name) for name in ("wrong-sdk", "wrong-signature", "not-a-plugin", "garbage")]


def fetch_only_message(server):
    client = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=insecure_context(), timeout=30)
    client.user(ALICE)
    client.pass_(ALICE_PASSWORD)
    _, lines, _ = client.retr(1)
    client.quit()
    return b"\r\n".join(lines)


def send(server, recipient=ALICE):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        client.ehlo("client.test")
        return client.sendmail("carol@remote.test", [recipient], "Subject: plugin test\r\n\r\nbody\r\n")


def test_the_example_plugin_built_against_the_installed_sdk_loads_and_adds_its_header(tmp_path):
    assert (Path(EXAMPLE_DIR) / "tern-add-header.so").exists(), "run the sdk.example_builds_against_installed_sdk test"
    server = Tern(tmp_path, plugin_dirs=[PLUGIN_DIR, EXAMPLE_DIR],
                  extra='[plugin.add-header]\nname = "X-Checked-By"\nvalue = "the example plugin"\n')
    server.add_users()
    listing = server.cli("plugins").stdout
    assert any(line.startswith("add-header ") and "1.0.0" in line for line in listing.splitlines())
    server.start()
    try:
        send(server)
        message = fetch_only_message(server)
        assert b"\r\nX-Checked-By: the example plugin\r\nSubject: plugin test\r\n" in message
    finally:
        assert server.stop() == 0


def test_plugins_of_another_sdk_or_build_are_refused_and_the_server_still_serves(tmp_path):
    server = Tern(tmp_path, plugin_dirs=[PLUGIN_DIR, *REFUSED])
    server.add_users()
    listing = server.cli("plugins").stdout
    assert "refused:" in listing
    assert "built for SDK 99.0, but this server provides SDK 0." in listing
    server.start()
    try:
        log = server.log_text()
        assert "plugin \"wrong-sdk\" is refused: built for SDK 99.0, but this server provides SDK 0." in log
        assert "plugin \"wrong-signature\" is refused: built with \"gcc-4.8;libstdc++-4;boost-1_50;sdk-0\"" in log
        assert "not a Tern plugin" in log
        assert "tern-garbage.so: cannot be loaded" in log
        assert send(server) == {}
        assert b"Subject: plugin test" in fetch_only_message(server)
    finally:
        assert server.stop() == 0


def test_a_plugin_that_fails_to_register_stops_start_up_with_its_reason(tmp_path):
    server = Tern(tmp_path, plugin_dirs=[PLUGIN_DIR, str(Path(FIXTURE_PLUGINS) / "failing-registration")])
    result = subprocess.run([TERN, "-c", str(server.config), "serve"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "plugin.failing-registration: refused: cannot start: no widgets" in result.stderr


@pytest.fixture
def steered(tmp_path):
    server = Tern(tmp_path, plugin_dirs=[PLUGIN_DIR, str(Path(FIXTURE_PLUGINS) / "hooks")],
                  extra='[plugin.hooks]\nreject_text = "Go away politely"\n')
    server.add_users()
    for name in ("reject-me", "defer-me", "throw-me", "discard-me", "junk-me"):
        server.cli("alias", "add", f"{name}@example.test", ALICE)
    server.start()
    yield server
    server.stop()


def rcpt(server, address):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        client.ehlo("client.test")
        client.mail("carol@remote.test")
        return client.rcpt(address)


def test_a_hook_reject_carries_its_own_valid_reply(steered):
    assert rcpt(steered, "reject-me@example.test") == (553, b"5.7.1 Go away politely")


def test_a_hook_reply_that_breaks_the_rules_is_replaced_by_the_default(steered):
    code, text = rcpt(steered, "defer-me@example.test")
    assert code == 451
    assert text.startswith(b"4.7.1")
    steered.wait_for_log("hooks.steer supplied code 250")


def test_a_hook_that_throws_defers_and_the_server_keeps_serving(steered):
    code, text = rcpt(steered, "throw-me@example.test")
    assert code == 451
    assert text.startswith(b"4.3.0")
    steered.wait_for_log("hook hooks.steer failed at rcpt: hook exploded")
    assert rcpt(steered, ALICE)[0] == 250


def messages_in(server, folder):
    with sqlite3.connect(server.data / "tern.db") as db:
        (count,) = db.execute("SELECT count(*) FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id "
                              "WHERE b.name = ?", (folder,)).fetchone()
    return count


def test_a_discard_at_data_accepts_the_message_and_stores_nothing(steered):
    assert send(steered, "discard-me@example.test") == {}
    steered.wait_for_log("discarded by a hook")
    assert messages_in(steered, "INBOX") == 0


def test_a_quarantine_at_message_files_the_message_into_its_folder(steered):
    assert send(steered, "junk-me@example.test") == {}
    assert messages_in(steered, "Junk") == 1
    assert messages_in(steered, "INBOX") == 0


def test_a_refusal_at_each_stage_reaches_the_client_at_that_command(steered):
    import socket
    with socket.create_connection(("127.0.0.1", steered.port("smtp")), timeout=30,
                                  source_address=("127.0.0.2", 0)) as raw:
        assert raw.makefile("rb").readline().startswith(b"421 4.7.0 Come back later")
    with smtplib.SMTP("127.0.0.1", steered.port("smtp"), timeout=30) as client:
        assert client.ehlo("refuse.test") == (550, b"5.7.1 Bad HELO")
        assert client.ehlo("client.test")[0] == 250
        assert client.mail("later@remote.test") == (450, b"4.7.1 Greylisted, try again")
        assert client.mail("carol@remote.test")[0] == 250
        assert client.rcpt(ALICE)[0] == 250
        code, text = client.data("X-Spam: yes\r\nSubject: buy\r\n\r\nnow\r\n")
        assert (code, text) == (554, b"5.7.1 Looks like spam")
    assert messages_in(steered, "INBOX") == 0


def test_an_auth_hook_can_refuse_a_correct_password(steered):
    steered.cli("user", "add", "locked@example.test", input="pw\n")
    with smtplib.SMTP("127.0.0.1", steered.port("submission"), timeout=30) as client:
        client.starttls(context=insecure_context())
        client.ehlo("client.test")
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login("locked@example.test", "pw")
        assert refused.value.smtp_code == 535
