"""ESMTP extensions with real clients: swaks for STARTTLS, AUTH, PIPELINING and SIZE; smtplib for 8BITMIME,
SMTPUTF8 and DSN parameters (swaks 20201014, Debian 12's, has no options for those); BDAT raw, as no
Debian client speaks CHUNKING."""

import base64
import poplib
import smtplib
import socket
import sqlite3
import subprocess

import pytest

from conftest import ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, Tern, insecure_context


def swaks(server, *args, port="smtp"):
    result = subprocess.run(["swaks", "--server", f"127.0.0.1:{server.port(port)}", "--timeout", "30",
                             "--from", "carol@remote.test", "--to", ALICE, "--helo", "client.test", *args],
                            capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout + result.stderr


def stored_messages(server, user=ALICE):
    with sqlite3.connect(server.data / "tern.db") as db:
        return [row[0] for row in db.execute(
            "SELECT m.blob FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id JOIN users u ON b.user_id = u.id "
            "WHERE u.address = ? ORDER BY m.uid", (user,))]


def read_back(server, user=ALICE, password=ALICE_PASSWORD):
    client = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=insecure_context(), timeout=30)
    client.user(user)
    client.pass_(password)
    messages = [b"\r\n".join(client.retr(n + 1)[1]) + b"\r\n" for n in range(client.stat()[0])]
    client.quit()
    return messages


def test_swaks_over_starttls(running):
    code, transcript = swaks(running, "--tls")
    assert code == 0, transcript
    assert "STARTTLS" in transcript and "250 2.0.0 Ok: queued" in transcript
    assert b"with ESMTPS" in read_back(running)[0]


def test_swaks_over_implicit_tls_with_auth_plain(running):
    code, transcript = swaks(running, "--tls-on-connect", "--auth", "PLAIN", "--auth-user", ALICE,
                             "--auth-password", ALICE_PASSWORD, "--from", ALICE, "--to", BOB, port="submissions")
    assert code == 0, transcript
    assert "235 2.7.0" in transcript
    assert b"with ESMTPSA" in read_back(running, BOB, BOB_PASSWORD)[0]


def test_swaks_auth_login_on_submission_and_a_wrong_password(running):
    code, transcript = swaks(running, "--tls", "--auth", "LOGIN", "--auth-user", ALICE, "--auth-password",
                             ALICE_PASSWORD, "--from", ALICE, "--to", BOB, port="submission")
    assert code == 0, transcript
    code, transcript = swaks(running, "--tls", "--auth", "LOGIN", "--auth-user", ALICE, "--auth-password", "nope",
                             "--from", ALICE, "--to", BOB, port="submission")
    assert code != 0
    assert "535 5.7.8" in transcript


def test_swaks_pipelining_gets_the_replies_of_a_group_in_one_write(running):
    code, transcript = swaks(running, "--pipeline", "--to", f"{ALICE},{BOB}")
    assert code == 0, transcript
    assert "250 2.1.5" in transcript
    assert len(stored_messages(running, ALICE)) == 1
    assert len(stored_messages(running, BOB)) == 1


def test_swaks_message_over_the_size_limit_is_refused_552(tmp_path):
    server = Tern(tmp_path, extra="[plugin.smtp]\nmax_message_size = 2000\n")
    server.add_users()
    server.start()
    try:
        code, transcript = swaks(server, "--body", "A line of fifty characters, give or take a few.\n" * 60)
        assert code != 0
        assert "552 5.3.4" in transcript
        with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
            client.ehlo("client.test")
            assert int(client.esmtp_features["size"]) == 2000
            code, text = client.mail("carol@remote.test", ["SIZE=5000"])
            assert (code, text[:5]) == (552, b"5.3.4")
        assert stored_messages(server) == []
    finally:
        server.stop()


def test_8bitmime_and_smtputf8_messages_are_stored_as_sent(running):
    utf8_body = "Subject: Grüße\r\n\r\nÄrger über Öl — ✓\r\n".encode()
    with smtplib.SMTP("127.0.0.1", running.port("smtp"), timeout=30) as client:
        client.ehlo("client.test")
        assert client.has_extn("8bitmime") and client.has_extn("smtputf8")
        assert client.sendmail("carol@remote.test", [ALICE], utf8_body, mail_options=["BODY=8BITMIME"]) == {}
        assert client.sendmail("jürgen@remote.test", [ALICE], utf8_body, mail_options=["SMTPUTF8"]) == {}
        code, text = client.mail("jürgen@remote.test".encode().decode("latin-1"))
        assert (code, text[:5]) == (553, b"5.6.7")
    messages = read_back(running)
    assert messages[0].endswith(utf8_body)
    assert b"with UTF8SMTP" in messages[1]


def test_dsn_parameters_are_accepted_and_malformed_ones_refused(running):
    with smtplib.SMTP("127.0.0.1", running.port("smtp"), timeout=30) as client:
        client.ehlo("client.test")
        assert client.has_extn("dsn")
        assert client.sendmail("carol@remote.test", [ALICE], "Subject: dsn\r\n\r\nx\r\n",
                               mail_options=["RET=HDRS", "ENVID=QQ314159+2B1"],
                               rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;alice+40example.test"]) == {}
        assert client.mail("carol@remote.test", ["RET=SOMETIMES"])[0] == 555
        assert client.mail("carol@remote.test", ["ENVID=bad=value"])[0] == 501
        assert client.mail("carol@remote.test", ["RET=FULL"])[0] == 250
        assert client.rcpt(ALICE, ["NOTIFY=NEVER,SUCCESS"])[0] == 501
        assert client.rcpt(ALICE, ["ORCPT=rfc822"])[0] == 501
        assert client.rcpt(ALICE, ["NOTIFY=NEVER"])[0] == 250


class RawSmtp:
    def __init__(self, port, source=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30,
                                             source_address=(source, 0) if source else None)
        self.stream = self.sock.makefile("rb")
        assert self.reply().startswith(b"220")

    def reply(self):
        line = self.stream.readline()
        while line[3:4] == b"-":
            line = self.stream.readline()
        return line

    def send(self, data):
        self.sock.sendall(data)

    def command(self, line):
        self.send(line + b"\r\n")
        return self.reply()

    def close(self):
        self.sock.close()


def test_bdat_chunks_make_one_message_byte_for_byte(running):
    smtp = RawSmtp(running.port("smtp"))
    assert smtp.command(b"EHLO client.test").startswith(b"250")
    assert smtp.command(b"MAIL FROM:<carol@remote.test>").startswith(b"250")
    assert smtp.command(b"RCPT TO:<alice@example.test>").startswith(b"250")
    first = b"Subject: chunked\r\n\r\nline one\r\n"
    second = b".starts with a dot, not stuffed in BDAT\r\nbinary \x00\xff\r\n"
    smtp.send(b"BDAT %d\r\n" % len(first) + first)
    assert smtp.reply().startswith(b"250 2.0.0")
    smtp.send(b"BDAT %d LAST\r\n" % len(second) + second)
    assert smtp.reply().startswith(b"250 2.0.0 Ok: queued")
    assert smtp.command(b"QUIT").startswith(b"221")
    smtp.close()
    (stored,) = read_back(running)
    assert stored.endswith(first + second)


def test_bdat_without_a_transaction_is_read_and_refused_503(running):
    smtp = RawSmtp(running.port("smtp"))
    smtp.command(b"EHLO client.test")
    smtp.send(b"BDAT 10 LAST\r\nQUIT\r\nQUIT")
    assert smtp.reply().startswith(b"503 5.5.1")
    assert smtp.command(b"NOOP").startswith(b"250")  # the 10 octets were eaten, not run as commands
    assert smtp.command(b"DATA").startswith(b"503")
    smtp.close()


def test_bdat_over_the_size_limit_is_refused_after_the_last_chunk(tmp_path):
    server = Tern(tmp_path, extra="[plugin.smtp]\nmax_message_size = 2000\n")
    server.add_users()
    server.start()
    try:
        smtp = RawSmtp(server.port("smtp"))
        smtp.command(b"EHLO client.test")
        smtp.command(b"MAIL FROM:<carol@remote.test>")
        smtp.command(b"RCPT TO:<alice@example.test>")
        smtp.send(b"BDAT 1500\r\n" + b"x" * 1500)
        assert smtp.reply().startswith(b"250")
        smtp.send(b"BDAT 1500 LAST\r\n" + b"y" * 1500)
        assert smtp.reply().startswith(b"552 5.3.4")
        assert smtp.command(b"NOOP").startswith(b"250")
        smtp.close()
        assert stored_messages(server) == []
    finally:
        server.stop()


def test_data_after_bdat_and_a_bad_bdat_are_refused(running):
    smtp = RawSmtp(running.port("smtp"))
    smtp.command(b"EHLO client.test")
    smtp.command(b"MAIL FROM:<carol@remote.test>")
    smtp.command(b"RCPT TO:<alice@example.test>")
    smtp.send(b"BDAT 3\r\nabc")
    assert smtp.reply().startswith(b"250")
    assert smtp.command(b"DATA").startswith(b"503 5.5.1")
    assert smtp.command(b"BDAT many").startswith(b"501 5.5.4")
    assert smtp.stream.readline() == b""  # the stream cannot be trusted after a chunk of unknown length
    smtp.close()


def test_submission_adds_date_and_message_id_and_checks_the_sender(running):
    with smtplib.SMTP("127.0.0.1", running.port("submission"), timeout=30) as client:
        client.starttls(context=insecure_context())
        client.login(ALICE, ALICE_PASSWORD)
        assert client.sendmail(ALICE, [BOB], "Subject: bare\r\n\r\nno date, no id\r\n") == {}
        assert client.sendmail(ALICE, [BOB], "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <k@x>\r\n"
                                             "Subject: full\r\n\r\nx\r\n") == {}
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(BOB, [ALICE], "Subject: forged\r\n\r\nx\r\n")
        assert refused.value.smtp_code == 553
    running.cli("alias", "add", "sales@example.test", ALICE)
    with smtplib.SMTP("127.0.0.1", running.port("submission"), timeout=30) as client:
        client.starttls(context=insecure_context())
        client.login(ALICE, ALICE_PASSWORD)
        assert client.sendmail("sales@example.test", [BOB], "Subject: as alias\r\n\r\nx\r\n") == {}
    bare, full, alias = read_back(running, BOB, BOB_PASSWORD)
    assert b"\r\nDate: " in bare and b"\r\nMessage-ID: <" in bare
    assert full.count(b"Message-ID:") == 1 and b"Message-ID: <k@x>" in full
    assert full.count(b"\r\nDate:") == 1


def test_repeated_auth_failures_end_in_421_for_that_address(tmp_path):
    server = Tern(tmp_path, extra="[limits]\nmax_auth_failures = 2\n")
    server.add_users()
    server.start()
    try:
        with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=60) as client:
            client.starttls(context=insecure_context())
            client.ehlo("client.test")

            def plain(password):
                return client.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0{ALICE}\0{password}".encode()).decode())

            for _ in range(2):
                assert plain("guess")[0] == 535
            # Blocked now, even with the right password: no check is made.
            code, text = plain(ALICE_PASSWORD)
            assert (code, text[:5]) == (421, b"4.7.0")
        server.wait_for_log("too many recent failures")
    finally:
        server.stop()
