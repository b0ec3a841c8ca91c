"""The first mail path end to end: SMTP in, SQLite store, POP3 out, with real clients (smtplib, poplib, curl)."""

import poplib
import smtplib
import socket
import sqlite3
import subprocess
import time

import pytest

from conftest import ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, insecure_context

MESSAGE = (
    "From: Carol <carol@remote.test>\r\n"
    "To: Alice <alice@example.test>\r\n"
    "Subject: Byte for byte\r\n"
    "Message-ID: <1@remote.test>\r\n"
    "\r\n"
    "First line.\r\n"
    ".A line that starts with a dot, stuffed on the wire.\r\n"
    "..Two dots.\r\n"
    "\r\n"
    "Tabs\tand trailing spaces   \r\n"
    "Last line.\r\n"
)


def send(server, message=MESSAGE, recipients=(ALICE,), sender="carol@remote.test"):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        client.starttls(context=insecure_context())
        return client.sendmail(sender, list(recipients), message)


def pop3_login(server, user=ALICE, password=ALICE_PASSWORD):
    client = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=insecure_context(), timeout=30)
    client.user(user)
    client.pass_(password)
    return client


def pop3_login_once_released(server):
    """Logs in after a dropped session: its maildrop is locked ([IN-USE]) until the server has seen the drop."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return pop3_login(server)
        except poplib.error_proto as error:
            if b"[IN-USE]" not in error.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def strip_trace(raw):
    """The message as stored, less the Received: field Tern put on top (it may be folded)."""
    lines = raw.split(b"\r\n")
    assert lines[0].startswith(b"Received: from "), lines[0]
    index = 1
    while lines[index].startswith((b"\t", b" ")):
        index += 1
    return b"\r\n".join(lines[index:])


def retrieve(client, number):
    response, lines, _ = client.retr(number)
    assert response.startswith(b"+OK")
    return b"\r\n".join(lines) + b"\r\n"


def test_sent_mail_reads_back_byte_identical_then_delete_at_quit_removes_it(running):
    assert send(running) == {}
    client = pop3_login(running)
    count, _ = client.stat()
    assert count == 1
    raw = retrieve(client, 1)
    assert strip_trace(raw) == MESSAGE.encode()
    assert b"by mx.example.test (Tern) with ESMTPS" in raw
    assert b"for <alice@example.test>" in raw
    client.dele(1)
    client.quit()

    client = pop3_login(running)
    assert client.stat() == (0, 0)
    client.quit()


def test_deletion_happens_only_at_quit(running):
    send(running)
    client = pop3_login(running)
    client.dele(1)
    client.file.close()
    client.sock.close()  # the connection drops without QUIT

    client = pop3_login_once_released(running)
    assert client.stat()[0] == 1
    client.dele(1)
    client.rset()
    client.quit()
    client = pop3_login(running)
    assert client.stat()[0] == 1
    client.quit()


def test_uidls_are_stable_and_list_sizes_match_retr(running):
    send(running)
    send(running, MESSAGE.replace("Byte for byte", "Second"))
    client = pop3_login(running)
    _, listing, _ = client.uidl()
    first_uidls = [line.split()[1] for line in listing]
    assert len(set(first_uidls)) == 2
    _, scan, _ = client.list()
    sizes = {int(line.split()[0]): int(line.split()[1]) for line in scan}
    assert sizes[1] == len(retrieve(client, 1))
    client.quit()

    running.stop()
    running.start()
    client = pop3_login(running)
    _, listing, _ = client.uidl()
    assert [line.split()[1] for line in listing] == first_uidls
    client.quit()


def test_top_returns_headers_and_the_asked_number_of_body_lines(running):
    send(running)
    client = pop3_login(running)
    _, lines, _ = client.top(1, 2)
    body_start = lines.index(b"")
    assert lines[body_start + 1:] == [b"First line.", b".A line that starts with a dot, stuffed on the wire."]
    client.quit()


def test_wrong_password_is_refused(running):
    client = poplib.POP3_SSL("127.0.0.1", running.port("pop3s"), context=insecure_context(), timeout=30)
    client.user(ALICE)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client.pass_("not-the-password")
    client.quit()


def test_users_see_only_their_own_mail(running):
    send(running, recipients=[ALICE])
    client = pop3_login(running, BOB, BOB_PASSWORD)
    assert client.stat() == (0, 0)
    client.quit()


def test_password_login_without_tls_is_refused_until_stls(running):
    client = poplib.POP3("127.0.0.1", running.port("pop3"), timeout=30)
    assert "USER" not in client.capa()
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client.user(ALICE)
    client.stls(context=insecure_context())
    client.user(ALICE)
    client.pass_(ALICE_PASSWORD)
    client.quit()


def test_a_listener_can_allow_plaintext_login(running):
    client = poplib.POP3("127.0.0.1", running.port("pop3_plain"), timeout=30)
    client.user(ALICE)
    assert client.pass_(ALICE_PASSWORD).startswith(b"+OK")
    client.quit()


def test_one_copy_for_several_recipients_and_aliases(running):
    running.cli("alias", "add", "team@example.test", ALICE)
    running.cli("alias", "add", "team@example.test", BOB)
    send(running, recipients=["team@example.test", ALICE])
    for user, password in ((ALICE, ALICE_PASSWORD), (BOB, BOB_PASSWORD)):
        client = pop3_login(running, user, password)
        assert client.stat()[0] == 1, user
        client.quit()
    with sqlite3.connect(running.data / "tern.db") as db:
        assert db.execute("SELECT count(*), sum(refs) FROM blobs").fetchone() == (1, 2)


def test_unknown_local_user_is_rejected_550_5_1_1(running):
    with smtplib.SMTP("127.0.0.1", running.port("smtp"), timeout=30) as client:
        client.ehlo("client.test")
        client.mail("carol@remote.test")
        code, text = client.rcpt("nobody@example.test")
        assert code == 550
        assert text.startswith(b"5.1.1")


def test_mail_for_other_domains_is_not_relayed(running):
    with smtplib.SMTP("127.0.0.1", running.port("smtp"), timeout=30) as client:
        client.ehlo("client.test")
        client.mail("carol@remote.test")
        for address in ("someone@remote.test", "alice%remote.test@example.test", "@example.test:someone@remote.test"):
            code, text = client.rcpt(address)
            assert code >= 500, address


def test_a_message_that_got_250_survives_kill_9(running):
    send(running)
    running.kill()
    running.start()
    client = pop3_login(running)
    assert strip_trace(retrieve(client, 1)) == MESSAGE.encode()
    client.quit()


def test_submission_requires_authentication_and_tls_for_it(running):
    with smtplib.SMTP("127.0.0.1", running.port("submission"), timeout=30) as client:
        client.ehlo("client.test")
        assert not client.has_extn("auth")
        code, _ = client.mail("alice@example.test")
        assert code == 530
        client.rset()
        client.starttls(context=insecure_context())
        client.ehlo("client.test")
        assert "PLAIN" in client.esmtp_features["auth"]
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(ALICE, "wrong")
        client.login(ALICE, ALICE_PASSWORD)
        assert client.sendmail(ALICE, [BOB], "Subject: from alice\r\n\r\nhi\r\n") == {}
    client = pop3_login(running, BOB, BOB_PASSWORD)
    assert client.stat()[0] == 1
    client.quit()


def test_implicit_tls_submission_with_auth_login(running):
    with smtplib.SMTP_SSL("127.0.0.1", running.port("submissions"), context=insecure_context(), timeout=30) as client:
        client.ehlo("client.test")
        client.user, client.password = ALICE, ALICE_PASSWORD
        code, _ = client.auth("LOGIN", client.auth_login, initial_response_ok=False)
        assert code == 235
        assert client.sendmail(ALICE, [BOB], "Subject: over 465\r\n\r\nhi\r\n") == {}


def test_curl_sends_over_smtp_and_reads_over_pop3(running, tmp_path):
    message = tmp_path / "mail.txt"
    message.write_bytes(b"From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: curl\r\n\r\nvia curl\r\n")
    subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", f"smtp://127.0.0.1:{running.port('smtp')}",
                    "--mail-from", "carol@remote.test", "--mail-rcpt", ALICE, "--upload-file", str(message)],
                   check=True, timeout=60)
    listing = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", f"pop3://127.0.0.1:{running.port('pop3')}/",
                              "--user", f"{ALICE}:{ALICE_PASSWORD}"], check=True, capture_output=True, timeout=60)
    assert listing.stdout.startswith(b"1 ")
    fetched = subprocess.run(["curl", "-sS", "-k", f"pop3s://127.0.0.1:{running.port('pop3s')}/1",
                              "--user", f"{ALICE}:{ALICE_PASSWORD}"], check=True, capture_output=True, timeout=60)
    assert fetched.stdout.endswith(b"Subject: curl\r\n\r\nvia curl\r\n")
    denied = subprocess.run(["curl", "-sS", "-k", f"pop3s://127.0.0.1:{running.port('pop3s')}/1",
                             "--user", f"{ALICE}:wrong"], capture_output=True, timeout=60)
    assert denied.returncode != 0


def test_oversized_and_unknown_commands_get_protocol_errors(running):
    with socket.create_connection(("127.0.0.1", running.port("smtp")), timeout=30) as raw:
        stream = raw.makefile("rb")
        stream.readline()
        raw.sendall(b"NONSENSE\r\n")
        assert stream.readline().startswith(b"500 5.5.2")
        raw.sendall(b"NOOP " + b"x" * 600 + b"\r\n")
        assert stream.readline().startswith(b"500 5.5.2")
        raw.sendall(b"RCPT TO:<alice@example.test>\r\n")
        assert stream.readline().startswith(b"503 5.5.1")
        raw.sendall(b"VRFY alice\r\n")
        assert stream.readline().startswith(b"252")
        raw.sendall(b"EXPN staff\r\n")
        assert stream.readline().startswith(b"502 5.5.1")
        raw.sendall(b"HELP\r\n")
        assert stream.readline().startswith(b"214 2.0.0")
        raw.sendall(b"QUIT\r\n")
        assert stream.readline().startswith(b"221")
