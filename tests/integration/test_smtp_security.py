"""The SMTP attacks a public MX meets, sent raw over a socket: relay tricks, smuggling, STARTTLS injection."""

import socket
import sqlite3
import ssl
import warnings

import pytest

from conftest import Tern, insecure_context
from test_smtp_extensions import RawSmtp


def stored_count(server):
    with sqlite3.connect(server.data / "tern.db") as db:
        return db.execute("SELECT count(*) FROM messages").fetchone()[0]


RELAY_TRICKS = [
    "someone@remote.test",
    "someone%remote.test@example.test",
    '"someone@remote.test"@example.test',
    "@example.test:someone@remote.test",
    "@example.test,@other.test:someone@remote.test",
    "someone@remote.test@example.test",
    "remote.test!someone@example.test",
    "someone@[127.0.0.1]",
    "someone@[IPv6:::1]",
    "SOMEONE@REMOTE.TEST",
    "someone@remote.test.",
    "someone@example.test.remote.test",
]


@pytest.mark.parametrize("recipient", RELAY_TRICKS)
def test_no_relay_trick_gets_a_remote_recipient_accepted(running, recipient):
    smtp = RawSmtp(running.port("smtp"))
    smtp.command(b"EHLO client.test")
    assert smtp.command(b"MAIL FROM:<carol@remote.test>").startswith(b"250")
    answer = smtp.command(b"RCPT TO:<" + recipient.encode() + b">")
    assert answer[:1] == b"5", answer
    assert smtp.command(b"DATA")[:1] == b"5"
    smtp.close()
    assert stored_count(running) == 0


def test_an_alias_forwards_only_where_the_administrator_pointed_it(running):
    # Forwarding is the administrator's choice (test_forwarding.py); the target itself stays closed to relaying.
    running.cli("alias", "add", "forward@example.test", "someone@remote.test")
    smtp = RawSmtp(running.port("smtp"))
    smtp.command(b"EHLO client.test")
    smtp.command(b"MAIL FROM:<carol@remote.test>")
    assert smtp.command(b"RCPT TO:<forward@example.test>").startswith(b"250")
    assert smtp.command(b"RCPT TO:<someone@remote.test>").startswith(b"554 5.7.1")
    smtp.close()


SMUGGLING_ENDINGS = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r", b"\r.\r\n"]


@pytest.mark.parametrize("ending", SMUGGLING_ENDINGS, ids=lambda e: e.decode().replace("\r", "CR").replace("\n", "LF"))
def test_no_end_of_data_variant_smuggles_a_second_message(running, ending):
    smtp = RawSmtp(running.port("smtp"))
    smtp.command(b"EHLO client.test")
    smtp.command(b"MAIL FROM:<carol@remote.test>")
    smtp.command(b"RCPT TO:<alice@example.test>")
    assert smtp.command(b"DATA").startswith(b"354")
    smuggled = (b"Subject: first\r\n\r\nbody" + ending + b"MAIL FROM:<mallory@remote.test>\r\n"
                b"RCPT TO:<bob@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n")
    smtp.send(smuggled)
    answer = smtp.reply()
    assert answer.startswith(b"550 5.6.0"), answer
    # Nothing of the smuggled transaction was taken as commands: the next reply answers our NOOP.
    assert smtp.command(b"NOOP").startswith(b"250 2.0.0")
    smtp.close()
    assert stored_count(running) == 0


def test_commands_injected_before_the_tls_handshake_are_discarded(running):
    smtp = RawSmtp(running.port("smtp"))
    smtp.command(b"EHLO client.test")
    smtp.send(b"STARTTLS\r\nMAIL FROM:<injected@remote.test>\r\nRCPT TO:<alice@example.test>\r\n")
    assert smtp.reply().startswith(b"220 2.0.0")
    tls = insecure_context().wrap_socket(smtp.sock, server_hostname="mx.example.test")
    stream = tls.makefile("rb")
    # EHLO state is reset after TLS: MAIL needs a new EHLO, and the injected MAIL never happened.
    tls.sendall(b"MAIL FROM:<carol@remote.test>\r\n")
    assert stream.readline().startswith(b"503 5.5.1")
    tls.sendall(b"EHLO client.test\r\n")
    line = stream.readline()
    assert line.startswith(b"250-mx.example.test")
    while line[3:4] == b"-":
        assert b"STARTTLS" not in line
        line = stream.readline()
    tls.sendall(b"RCPT TO:<alice@example.test>\r\n")
    assert stream.readline().startswith(b"503 5.5.1")
    tls.close()


def test_tls_below_1_2_is_refused(running):
    context = insecure_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # old versions are what this test offers
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with socket.create_connection(("127.0.0.1", running.port("submissions")), timeout=30) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
            context.wrap_socket(raw, server_hostname="mx.example.test").recv(1)


def test_recipients_beyond_the_limit_get_452(tmp_path):
    server = Tern(tmp_path, extra="[plugin.smtp]\nmax_recipients = 2\n")
    server.add_users()
    server.cli("alias", "add", "team@example.test", "alice@example.test")
    server.start()
    try:
        smtp = RawSmtp(server.port("smtp"))
        smtp.command(b"EHLO client.test")
        smtp.command(b"MAIL FROM:<carol@remote.test>")
        assert smtp.command(b"RCPT TO:<alice@example.test>").startswith(b"250")
        assert smtp.command(b"RCPT TO:<bob@example.test>").startswith(b"250")
        assert smtp.command(b"RCPT TO:<team@example.test>").startswith(b"452 4.5.3")
        smtp.close()
    finally:
        server.stop()


def test_too_many_bad_commands_end_the_session_with_421(tmp_path):
    server = Tern(tmp_path, extra="[plugin.smtp]\nmax_errors = 3\n")
    server.start()
    try:
        smtp = RawSmtp(server.port("smtp"))
        assert smtp.command(b"FOO").startswith(b"500")
        assert smtp.command(b"BAR").startswith(b"500")
        assert smtp.command(b"BAZ").startswith(b"421 4.7.0")
        assert smtp.stream.readline() == b""
        smtp.close()
    finally:
        server.stop()


def test_a_text_line_over_1000_octets_refuses_the_message(running):
    smtp = RawSmtp(running.port("smtp"))
    smtp.command(b"EHLO client.test")
    smtp.command(b"MAIL FROM:<carol@remote.test>")
    smtp.command(b"RCPT TO:<alice@example.test>")
    smtp.command(b"DATA")
    smtp.send(b"Subject: long\r\n\r\n" + b"x" * 1200 + b"\r\n.\r\n")
    assert smtp.reply().startswith(b"500 5.5.2")
    smtp.close()
    assert stored_count(running) == 0


def test_an_over_long_line_ending_in_a_bare_lf_does_not_end_data_early(running):
    smtp = RawSmtp(running.port("smtp"))
    smtp.command(b"EHLO client.test")
    smtp.command(b"MAIL FROM:<carol@remote.test>")
    smtp.command(b"RCPT TO:<alice@example.test>")
    smtp.command(b"DATA")
    smtp.send(b"Subject: long\r\n\r\n" + b"x" * 1200 + b"\n.\r\nMAIL FROM:<mallory@remote.test>\r\n.\r\n")
    assert smtp.reply().startswith(b"500 5.5.2")
    assert smtp.command(b"NOOP").startswith(b"250 2.0.0")
    smtp.close()


def queued(server):
    """The queue's entries: each a line (id, arrival, size, sender) and its recipients' lines."""
    entries = []
    for line in server.cli("queue", "list").stdout.splitlines():
        if line[:1].isdigit():
            entries.append(line)
        elif line.startswith(" ") and entries:
            entries[-1] += "\n" + line
    return entries


# Remote mail stays on the queue, whatever DNS this machine has: these tests look at the queue, not at delivery.
HOLD_ALL = '[[plugin.outbound.route]]\ndomains = ["*"]\nvia = "hold"\n'


@pytest.fixture
def holding(tern):
    """The `running` server, with every remote recipient held on the queue."""
    tern.write_config(HOLD_ALL)
    yield tern.start()


def test_authenticated_users_relay_and_the_message_waits_on_the_queue(holding):
    import smtplib
    from conftest import ALICE, ALICE_PASSWORD
    running = holding
    with smtplib.SMTP("127.0.0.1", running.port("submission"), timeout=30) as client:
        client.starttls(context=insecure_context())
        client.login(ALICE, ALICE_PASSWORD)
        assert client.sendmail(ALICE, ["friend@remote.test", "bob@example.test"], "Subject: out\r\n\r\nhi\r\n",
                               rcpt_options=["NOTIFY=FAILURE"]) == {}
    (entry,) = queued(running)
    assert "<alice@example.test>" in entry and "friend@remote.test" in entry and "bob@example.test" not in entry
    with sqlite3.connect(running.data / "tern.db") as db:
        assert db.execute("SELECT notify FROM queue_recipients").fetchall() == [("FAILURE",)]
        # One stored body, shared by Bob's mailbox and the queue.
        assert db.execute("SELECT count(*), sum(refs) FROM blobs").fetchone() == (1, 2)


def test_relay_networks_may_relay_without_auth_and_others_may_not(tmp_path):
    server = Tern(tmp_path, listeners={"smtp": ("smtp", "none", False)},
                  extra='[plugin.smtp]\nrelay_networks = ["127.0.0.2/32", "2001:db8::/32"]\n' + HOLD_ALL)
    server.add_users()
    server.start()
    try:
        inside = RawSmtp(server.port("smtp"), source="127.0.0.2")
        inside.command(b"EHLO client.test")
        inside.command(b"MAIL FROM:<app@example.test>")
        assert inside.command(b"RCPT TO:<someone@remote.test>").startswith(b"250")
        assert inside.command(b"DATA").startswith(b"354")
        assert inside.command(b"Subject: from the LAN\r\n\r\nhi\r\n.").startswith(b"250")
        inside.close()
        outside = RawSmtp(server.port("smtp"), source="127.0.0.3")
        outside.command(b"EHLO client.test")
        outside.command(b"MAIL FROM:<app@example.test>")
        assert outside.command(b"RCPT TO:<someone@remote.test>").startswith(b"554 5.7.1")
        outside.close()
        assert len(queued(server)) == 1
    finally:
        server.stop()


def test_a_bad_relay_network_is_a_config_error(tmp_path):
    server = Tern(tmp_path, extra='[plugin.smtp]\nrelay_networks = ["192.0.2.0/40"]\n')
    result = server.cli("config", "check", check=False)
    assert result.returncode == 2
    assert "plugin.smtp.relay_networks: \"192.0.2.0/40\" is not an IP network" in result.stderr


def test_postmaster_without_a_domain_is_accepted(running):
    running.cli("alias", "add", "postmaster@example.test", "alice@example.test")
    smtp = RawSmtp(running.port("smtp"))
    smtp.command(b"EHLO client.test")
    smtp.command(b"MAIL FROM:<carol@remote.test>")
    assert smtp.command(b"RCPT TO:<Postmaster>").startswith(b"250")
    assert smtp.command(b"DATA").startswith(b"354")
    assert smtp.command(b"Subject: to the postmaster\r\n\r\nhello\r\n.").startswith(b"250")
    smtp.close()
    assert stored_count(running) == 1
