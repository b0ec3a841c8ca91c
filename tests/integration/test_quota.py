"""Quotas (issue 5's per-user limits): set and shown with `tern user quota`, enforced by SMTP at RCPT and by
IMAP APPEND and COPY, reported by IMAP QUOTA (RFC 9208)."""

import imaplib
import smtplib

from conftest import ALICE, ALICE_PASSWORD, BOB, insecure_context

MESSAGE = "From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: {n}\r\n\r\n{body}\r\n"


def send(server, recipients, body="hello"):
    """Sends one message; returns the refused recipients with their (code, text)."""
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        client.ehlo("client.test")
        try:
            return client.sendmail("carol@remote.test", recipients, MESSAGE.format(n=1, body=body))
        except smtplib.SMTPRecipientsRefused as refused:
            return refused.recipients


def imap(server):
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=insecure_context(), timeout=30)
    client.login(ALICE, ALICE_PASSWORD)
    return client


def test_the_cli_shows_and_sets_limits_and_refuses_nonsense(tern):
    shown = tern.cli("user", "quota", ALICE).stdout
    assert "storage   0 octets, limit none" in shown and "messages  0, limit none" in shown
    shown = tern.cli("user", "quota", ALICE, "--storage", "2M", "--messages", "100").stdout
    assert "limit 2097152" in shown and "limit 100" in shown
    # One limit changed alone keeps the other.
    shown = tern.cli("user", "quota", ALICE, "--messages", "none").stdout
    assert "limit 2097152" in shown and "messages  0, limit none" in shown
    for option, value in (("--storage", "lots"), ("--storage", "-5M"), ("--messages", "1.5")):
        result = tern.cli("user", "quota", ALICE, option, value, check=False)
        assert result.returncode == 2 and value in result.stderr
    result = tern.cli("user", "quota", "nobody@example.test", check=False)
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_smtp_refuses_a_full_mailbox_with_452_and_a_message_too_big_for_it_with_552(tern):
    tern.cli("user", "quota", ALICE, "--messages", "2", "--storage", "100K")
    server = tern.start()
    assert send(server, [ALICE]) == {}
    assert send(server, [ALICE]) == {}
    # Full now: alice is refused for the moment, bob still gets the message.
    refused = send(server, [ALICE, BOB])
    assert list(refused) == [ALICE]
    code, text = refused[ALICE]
    assert code == 452 and text.startswith(b"4.2.2")
    tern.cli("user", "quota", ALICE, "--messages", "none")
    # A message announced larger than the whole quota can never fit.
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        client.ehlo("client.test")
        assert client.mail("carol@remote.test", ["SIZE=200000"])[0] == 250
        code, text = client.rcpt(ALICE)
        assert code == 552 and text.startswith(b"5.2.2")
        client.rset()
        assert client.mail("carol@remote.test", ["SIZE=2000"])[0] == 250
        assert client.rcpt(ALICE)[0] == 250
    assert "messages  2, limit none" in tern.cli("user", "quota", ALICE).stdout


def test_imap_reports_the_quota_and_refuses_append_and_copy_past_it(tern):
    tern.cli("user", "quota", ALICE, "--storage", "10K", "--messages", "3")
    server = tern.start()
    client = imap(server)
    assert "QUOTA" in client.capabilities and "QUOTA=RES-STORAGE" in client.capabilities
    assert "QUOTASET" not in client.capabilities
    message = MESSAGE.format(n=1, body="x" * 1500).encode()
    assert client.append("INBOX", None, None, message)[0] == "OK"
    status, data = client.getquotaroot("INBOX")
    assert status == "OK"
    assert data[0] == [b'"INBOX" ""']
    assert data[1] == [b'"" (STORAGE 2 10 MESSAGE 1 3)']
    status, data = client.getquota('""')
    assert data == [b'"" (STORAGE 2 10 MESSAGE 1 3)']
    assert client.getquota("elsewhere")[0] == "NO"
    assert client.setquota('""', "(STORAGE 100000)")[0] == "NO"
    # 10 KiB allow six more of these octets-wise, but only two more messages.
    assert client.append("INBOX", None, None, message)[0] == "OK"
    client.select("INBOX")
    assert client.copy("1", "Archive")[0] == "OK"
    status, data = client.copy("1", "Archive")
    assert status == "NO" and b"[OVERQUOTA]" in data[0]
    status, data = client.append("INBOX", None, None, message)
    assert status == "NO" and b"[OVERQUOTA]" in data[0]
    # A move takes no more room: still allowed when full.
    assert client._simple_command("MOVE", "1", "Trash")[0] == "OK"
    client.logout()


def test_a_user_without_limits_has_no_quota_root(running):
    client = imap(running)
    status, data = client.getquotaroot("INBOX")
    assert status == "OK" and data[0] == [b'"INBOX"'] and data[1] == [None]  # imaplib's way of saying: no QUOTA response
    assert client.getquotaroot("Nowhere")[0] == "NO"
    client.logout()


def test_without_size_the_quota_is_checked_after_data_too(tern):
    tern.cli("user", "quota", ALICE, "--storage", "10K")
    server = tern.start()
    big = MESSAGE.format(n=1, body="\r\n".join(["x" * 78] * 250))  # about 20 KB
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        client.ehlo("client.test")
        # No SIZE: RCPT cannot know; after the data, a message larger than the whole quota is refused for good.
        assert client.mail("carol@remote.test")[0] == 250
        assert client.rcpt(ALICE)[0] == 250
        code, text = client.data(big)
        assert code == 552 and text.startswith(b"5.2.2")
        tern.cli("user", "quota", ALICE, "--storage", "30K")
        assert client.mail("carol@remote.test")[0] == 250
        assert client.rcpt(ALICE)[0] == 250
        assert client.data(big)[0] == 250
        # The mailbox has room left, but not for this one: refused for now, the sender retries later.
        assert client.mail("carol@remote.test")[0] == 250
        assert client.rcpt(ALICE)[0] == 250
        code, text = client.data(big)
        assert code == 452 and text.startswith(b"4.2.2")
        # A recipient with room takes it even when another's mailbox is full.
        assert client.mail("carol@remote.test")[0] == 250
        assert client.rcpt(ALICE)[0] == 250
        assert client.rcpt(BOB)[0] == 250
        assert client.data(big)[0] == 250
    assert "messages  2, limit none" in tern.cli("user", "quota", ALICE).stdout
