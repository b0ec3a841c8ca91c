"""POP3 complete (issue 5): CAPA, AUTH PLAIN and LOGIN (RFC 5034), the maildrop lock ([IN-USE]), pipelined
commands, and what IMAP and POP3 see of each other's deletions and of restarts."""

import base64
import imaplib
import poplib
import smtplib
import socket

import pytest

from conftest import ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, insecure_context

MESSAGE = "From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: {subject}\r\n\r\nbody {subject}\r\n"


def send(server, subject, recipient=ALICE):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        client.sendmail("carol@remote.test", [recipient], MESSAGE.format(subject=subject))


def pop3s(server):
    return poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=insecure_context(), timeout=30)


def b64(text):
    return base64.b64encode(text.encode()).decode()


def test_capa_names_sasl_resp_codes_and_pipelining_but_never_apop(running):
    plain = poplib.POP3("127.0.0.1", running.port("pop3"), timeout=30)
    capabilities = plain.capa()
    assert "STLS" in capabilities and "USER" not in capabilities and "SASL" not in capabilities
    plain.stls(context=insecure_context())
    capabilities = plain.capa()
    for name in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION"):
        assert name in capabilities
    assert capabilities["SASL"] == ["PLAIN", "LOGIN"]
    assert "STLS" not in capabilities and "APOP" not in capabilities
    with pytest.raises(poplib.error_proto):
        plain.apop(ALICE, ALICE_PASSWORD)
    plain.quit()


def test_auth_plain_and_login_with_and_without_initial_responses(running):
    send(running, "a1")
    credentials = base64.b64encode(f"\0{ALICE}\0{ALICE_PASSWORD}".encode()).decode()
    client = pop3s(running)
    assert client._shortcmd(f"AUTH PLAIN {credentials}").startswith(b"+OK")
    assert client.stat()[0] == 1
    client.quit()

    client = pop3s(running)
    assert client._shortcmd("AUTH PLAIN") == b"+ "
    assert client._shortcmd(credentials).startswith(b"+OK")
    client.quit()

    # "=" is an empty initial response: the credentials follow a challenge.
    client = pop3s(running)
    assert client._shortcmd("AUTH PLAIN =") == b"+ "
    assert client._shortcmd(credentials).startswith(b"+OK")
    client.quit()

    client = pop3s(running)
    assert client._shortcmd("AUTH LOGIN") == b"+ VXNlcm5hbWU6"
    assert client._shortcmd(b64(ALICE)) == b"+ UGFzc3dvcmQ6"
    assert client._shortcmd(b64(ALICE_PASSWORD)).startswith(b"+OK")
    client.quit()

    client = pop3s(running)
    assert client._shortcmd(f"AUTH LOGIN {b64(BOB)}") == b"+ UGFzc3dvcmQ6"
    try:
        client._shortcmd(b64("wrong"))
        raise AssertionError("a wrong password was taken")
    except poplib.error_proto as error:
        assert error.args[0].startswith(b"-ERR [AUTH]")
    client._putline(b"AUTH PLAIN")
    assert client._getline()[0] == b"+ "
    try:
        client._shortcmd("*")
        raise AssertionError("a cancelled AUTH went on")
    except poplib.error_proto as error:
        assert b"cancelled" in error.args[0]
    for bad in ("AUTH CRAM-MD5", "AUTH PLAIN !!!notbase64"):
        try:
            client._shortcmd(bad)
            raise AssertionError(f"{bad} was taken")
        except poplib.error_proto as error:
            assert error.args[0].startswith(b"-ERR")
    listing = client._longcmd("AUTH")
    assert listing[1] == [b"PLAIN", b"LOGIN"]
    client.quit()


def test_one_session_holds_the_maildrop_and_a_second_gets_in_use(running):
    send(running, "l1")
    first = pop3s(running)
    first.user(ALICE)
    first.pass_(ALICE_PASSWORD)
    second = pop3s(running)
    second.user(ALICE)
    try:
        second.pass_(ALICE_PASSWORD)
        raise AssertionError("two sessions held one maildrop")
    except poplib.error_proto as error:
        assert error.args[0].startswith(b"-ERR [IN-USE]")
    # Another user's maildrop is free, and the first one is again once its session quits.
    other = pop3s(running)
    other.user(BOB)
    assert other.pass_(BOB_PASSWORD).startswith(b"+OK")
    other.quit()
    first.quit()
    second.user(ALICE)
    assert second.pass_(ALICE_PASSWORD).startswith(b"+OK")
    assert second.stat()[0] == 1
    second.quit()


def test_pipelined_commands_are_all_answered_in_order(running):
    for subject in ("p1", "p2", "p3"):
        send(running, subject)
    raw = insecure_context().wrap_socket(socket.create_connection(("127.0.0.1", running.port("pop3s"))),
                                         server_hostname="mx.example.test")
    stream = raw.makefile("rb")
    assert stream.readline().startswith(b"+OK")
    raw.sendall(f"USER {ALICE}\r\nPASS {ALICE_PASSWORD}\r\nSTAT\r\nRETR 1\r\nRETR 3\r\nDELE 2\r\nSTAT\r\nQUIT\r\n".encode())
    replies = []
    while True:
        line = stream.readline()
        if not line:
            break
        replies.append(line)
    text = b"".join(replies)
    assert text.count(b"+OK") == 8
    assert b"+OK 3 " in text and b"+OK 2 " in text
    assert text.index(b"Subject: p1") < text.index(b"Subject: p3")
    assert b"Subject: p2" not in text


def test_what_imap_expunges_pop3_no_longer_lists_and_uidls_survive_a_restart(tern):
    server = tern.start()
    for subject in ("u1", "u2", "u3"):
        send(server, subject)
    client = pop3s(server)
    client.user(ALICE)
    client.pass_(ALICE_PASSWORD)
    before = [line.split()[1] for line in client.uidl()[1]]
    client.quit()
    imap = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=insecure_context(), timeout=30)
    imap.login(ALICE, ALICE_PASSWORD)
    imap.select("INBOX")
    imap.store("2", "+FLAGS", "(\\Deleted)")
    imap.expunge()
    imap.logout()
    server.stop()
    server = tern.start()
    send(server, "u4")
    client = pop3s(server)
    client.user(ALICE)
    client.pass_(ALICE_PASSWORD)
    after = [line.split()[1] for line in client.uidl()[1]]
    client.quit()
    # The two left keep their UIDLs; the new message has a new one, never the expunged one's.
    assert after[:2] == [before[0], before[2]]
    assert len(after) == 3 and after[2] not in before


def test_a_message_imap_expunged_during_a_pop3_session_is_still_served_to_that_session(running):
    for subject in ("x1", "x2"):
        send(running, subject)
    client = pop3s(running)
    client.user(ALICE)
    client.pass_(ALICE_PASSWORD)
    assert client.stat()[0] == 2
    imap = imaplib.IMAP4_SSL("127.0.0.1", running.port("imaps"), ssl_context=insecure_context(), timeout=30)
    imap.login(ALICE, ALICE_PASSWORD)
    imap.select("INBOX")
    imap.store("2", "+FLAGS", "(\\Deleted)")
    imap.expunge()
    imap.logout()
    # The maildrop stays as the session found it (RFC 1939 section 8): the store keeps a removed message
    # readable for a while, so the download in progress completes instead of failing half-way.
    assert b"Subject: x1" in b"\r\n".join(client.retr(1)[1])
    assert b"Subject: x2" in b"\r\n".join(client.retr(2)[1])
    client.dele(2)
    client.quit()
    again = pop3s(running)
    again.user(ALICE)
    again.pass_(ALICE_PASSWORD)
    assert again.stat()[0] == 1
    again.quit()
