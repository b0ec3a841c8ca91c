"""IMAP4rev1, first slice, with Python's imaplib: login, LIST with special-use, SELECT, FETCH, STORE, SEARCH,
EXPUNGE, and what POP3 and SMTP change seen from IMAP."""

import imaplib
import poplib
import re
import smtplib

import pytest

from conftest import ALICE, ALICE_PASSWORD, BOB, insecure_context
from imap_raw import RawImap

MESSAGE = ("From: Carol <carol@remote.test>\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
           "Message-ID: <{subject}@remote.test>\r\n\r\nHello {subject}.\r\n.dot line\r\n")


def send(server, subject, recipient=ALICE):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        client.ehlo("client.test")
        client.sendmail("carol@remote.test", [recipient], MESSAGE.format(subject=subject))


def imap(server):
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=insecure_context(), timeout=30)
    client.login(ALICE, ALICE_PASSWORD)
    return client


def test_every_user_has_inbox_and_the_special_use_mailboxes(running):
    client = imap(running)
    status, listing = client.list()
    assert status == "OK"
    names = {line.decode().rsplit(" ", 1)[1].strip('"'): line.decode() for line in listing}
    assert set(names) == {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}
    for name in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
        assert f"\\{name}" in names[name]
    assert client.logout()[0] == "BYE"


def test_select_fetch_and_read_back_byte_for_byte(running):
    send(running, "first")
    send(running, "second")
    client = imap(running)
    status, data = client.select("INBOX")
    assert (status, data) == ("OK", [b"2"])
    assert client.untagged_responses.get("UIDVALIDITY")
    status, data = client.fetch("1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[])")
    assert status == "OK"
    bodies = [part[1] for part in data if isinstance(part, tuple)]
    assert len(bodies) == 2
    assert bodies[0].endswith(MESSAGE.format(subject="first").encode())
    # The first session to select the mailbox since the messages came sees them as \Recent (RFC 3501 2.3.2).
    assert b"FLAGS (\\Recent)" in data[0][0]
    size = int(re.search(rb"RFC822.SIZE (\d+)", data[0][0]).group(1))
    assert size == len(bodies[0])
    status, data = client.fetch("2", "(BODY.PEEK[HEADER.FIELDS (Subject)])")
    assert data[0][1] == b"Subject: second\r\n\r\n"
    status, data = client.fetch("2", "(BODY[TEXT]<0.5>)")
    assert data[0][1] == b"Hello"
    # A non-peek fetch marks the message seen.
    status, data = client.fetch("2", "(FLAGS)")
    assert b"\\Seen" in data[0]
    client.logout()


def test_store_search_and_expunge(running):
    for subject in ("a", "b", "c"):
        send(running, subject)
    client = imap(running)
    client.select("INBOX")
    status, data = client.store("2", "+FLAGS", "(\\Flagged \\Deleted)")
    assert status == "OK" and b"\\Deleted" in data[0]
    assert client.search(None, "FLAGGED")[1] == [b"2"]
    assert client.search(None, "UNSEEN")[1] == [b"1 2 3"]
    assert client.search(None, "NOT", "DELETED")[1] == [b"1 3"]
    status, data = client.uid("SEARCH", "DELETED")
    deleted_uid = data[0]
    status, data = client.expunge()
    assert data == [b"2"]
    status, data = client.uid("FETCH", deleted_uid.decode(), "(FLAGS)")
    assert data == [None]
    assert client.search(None, "ALL")[1] == [b"1 2"]
    client.close()
    client.logout()


def test_examine_is_read_only(running):
    send(running, "ro")
    client = imap(running)
    client.select("INBOX", readonly=True)
    status, data = client.store("1", "+FLAGS", "(\\Deleted)")
    assert status == "NO" and b"READ-ONLY" in data[0]
    client.fetch("1", "(BODY[])")
    status, data = client.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]
    client.logout()


def test_what_pop3_deletes_imap_sees_expunged(running):
    send(running, "shared")
    client = imap(running)
    client.select("INBOX")
    pop = poplib.POP3_SSL("127.0.0.1", running.port("pop3s"), context=insecure_context(), timeout=30)
    pop.user(ALICE)
    pop.pass_(ALICE_PASSWORD)
    pop.dele(1)
    pop.quit()
    send(running, "newer")
    client.untagged_responses.clear()
    status, data = client.noop()
    assert client.untagged_responses.get("EXPUNGE") == [b"1"]
    assert client.untagged_responses.get("EXISTS") == [b"1"]
    status, data = client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1] == b"Subject: newer\r\n\r\n"
    client.logout()


def test_status_and_list_patterns(running):
    send(running, "counted")
    client = imap(running)
    status, data = client.status("INBOX", "(MESSAGES UNSEEN UIDNEXT)")
    assert status == "OK"
    assert b"MESSAGES 1" in data[0] and b"UNSEEN 1" in data[0]
    status, listing = client.list('""', "%")
    assert len(listing) == 6
    status, listing = client.list('""', "J*")
    assert len(listing) == 1 and listing[0].endswith(b'"Junk"')
    assert client.select("Nowhere")[0] == "NO"
    client.logout()


def test_plaintext_login_is_refused_until_starttls(running):
    client = imaplib.IMAP4("127.0.0.1", running.port("imap"), timeout=30)
    assert "LOGINDISABLED" in client.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        client.login(ALICE, ALICE_PASSWORD)
    client.starttls(ssl_context=insecure_context())
    assert client.login(ALICE, ALICE_PASSWORD)[0] == "OK"
    client.logout()


def test_wrong_password_and_authenticate_plain(running):
    client = imaplib.IMAP4_SSL("127.0.0.1", running.port("imaps"), ssl_context=insecure_context(), timeout=30)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        client.login(ALICE, "wrong")
    status, _ = client.authenticate("PLAIN", lambda _: f"\0{ALICE}\0{ALICE_PASSWORD}".encode())
    assert status == "OK"
    client.logout()


def test_bad_input_gets_tagged_bad_not_a_crash(running):
    import socket
    import ssl
    with socket.create_connection(("127.0.0.1", running.port("imaps")), timeout=30) as raw:
        tls = insecure_context().wrap_socket(raw, server_hostname="mx.example.test")
        stream = tls.makefile("rb")
        assert stream.readline().startswith(b"* OK")
        tls.sendall(b"a1 FROB\r\n")
        assert stream.readline() == b"a1 BAD Unknown command\r\n"
        tls.sendall(b"a2 SELECT INBOX\r\n")
        assert stream.readline() == b"a2 BAD Command not valid in this state\r\n"
        tls.sendall(b'a3 LOGIN "unterminated\r\n')
        assert stream.readline() == b"a3 BAD Syntax error\r\n"
        tls.sendall(b"a4 LOGIN {99999999999}\r\n")
        assert stream.readline().startswith(b"a4 BAD [TOOBIG]")
        tls.sendall(b"a5 NOOP\r\n")
        assert stream.readline() == b"a5 OK NOOP completed\r\n"
        tls.close()


def test_idle_hears_of_smtp_delivery_and_of_another_session_s_flags(running):
    send(running, "before")
    watcher = RawImap(running)
    watcher.command(f"a LOGIN {ALICE} {ALICE_PASSWORD}".encode())
    watcher.command(b"b SELECT INBOX")
    watcher.sock.sendall(b"c IDLE\r\n")
    assert watcher.stream.readline().startswith(b"+ ")
    send(running, "during")
    assert watcher.stream.readline() == b"* 2 EXISTS\r\n"
    assert watcher.stream.readline() == b"* 2 RECENT\r\n"
    other = imap(running)
    other.select("INBOX")
    other.store("1", "+FLAGS", "(\\Flagged)")
    assert watcher.stream.readline() == b"* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n"
    other.store("1", "+FLAGS", "(\\Deleted)")
    other.expunge()
    # The \Deleted flag may be reported before the expunge or, when the watcher wakes after both, not
    # at all: news of a message that is already gone is pointless.
    line = watcher.stream.readline()
    if line.startswith(b"* 1 FETCH"):
        assert b"\\Deleted" in line
        line = watcher.stream.readline()
    assert line == b"* 1 EXPUNGE\r\n"
    watcher.sock.sendall(b"DONE\r\n")
    assert watcher.stream.readline() == b"c OK IDLE terminated\r\n"
    other.logout()


def test_shutdown_ends_idle_with_bye(running):
    import signal
    watcher = RawImap(running)
    watcher.command(f"a LOGIN {ALICE} {ALICE_PASSWORD}".encode())
    watcher.command(b"b SELECT INBOX")
    watcher.sock.sendall(b"c IDLE\r\n")
    assert watcher.stream.readline().startswith(b"+ ")
    running.signal(signal.SIGTERM)
    assert watcher.stream.readline().startswith(b"* BYE")
    assert running.process.wait(timeout=30) == 0


def test_append_with_flags_and_date_then_copy_and_move_with_uidplus(running):
    client = imap(running)
    message = b"From: alice@example.test\r\nSubject: draft\r\n\r\nNot sent yet.\r\n"
    status, data = client.append("Drafts", "(\\Draft \\Seen)", '"05-Jan-2024 10:11:12 +0100"', message)
    assert status == "OK"
    appenduid = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
    assert appenduid
    client.select("Drafts")
    status, data = client.fetch("1", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert b"\\Draft" in data[0][0] and b"\\Seen" in data[0][0]
    assert b'INTERNALDATE "05-Jan-2024 09:11:12 +0000"' in data[0][0]
    assert data[0][1] == message
    status, data = client._simple_command("UID", "COPY", appenduid.group(2).decode(), "Archive")
    assert status == "OK" and b"COPYUID" in data[0]
    status, data = client._simple_command("MOVE", "1", "Sent")
    assert status == "OK"
    assert client.untagged_responses.get("EXPUNGE") == [b"1"]
    assert client.select("Drafts")[1] == [b"0"]
    assert client.select("Sent")[1] == [b"1"]
    assert client.select("Archive")[1] == [b"1"]
    status, data = client.append("Nowhere", None, None, message)
    assert status == "NO" and b"TRYCREATE" in data[0]
    client.logout()


def test_create_rename_delete_mailboxes(running):
    client = imap(running)
    assert client.create("Projects")[0] == "OK"
    assert client.create("Projects/Tern")[0] == "OK"
    assert client.create("Projects")[0] == "NO"
    assert client.delete("Projects")[0] == "NO"  # it has a child
    assert client.rename("Projects", "Work")[0] == "OK"
    status, listing = client.list('""', "Work*")
    names = sorted(line.decode().rsplit(" ", 1)[1].strip('"') for line in listing)
    assert names == ["Work", "Work/Tern"]
    assert b"\\HasChildren" in next(line for line in listing if line.endswith(b'"Work"'))
    assert client.delete("Work/Tern")[0] == "OK"
    assert client.delete("Work")[0] == "OK"
    assert client.delete("INBOX")[0] == "NO"
    assert client.subscribe("Sent")[0] == "OK"
    client.logout()


def test_uid_expunge_removes_only_the_named_deleted_messages(running):
    for subject in ("x", "y"):
        send(running, subject)
    client = imap(running)
    client.select("INBOX")
    client.store("1:2", "+FLAGS", "(\\Deleted)")
    status, data = client.uid("SEARCH", "ALL")
    first_uid, second_uid = data[0].split()
    status, data = client.uid("EXPUNGE", second_uid.decode())
    assert status == "OK"
    assert client.search(None, "ALL")[1] == [b"1"]
    client.logout()


MULTIPART = (
    "From: \"Carol, the sender\" <carol@remote.test>\r\n"
    "To: Alice <alice@example.test>, bob@example.test\r\n"
    "Subject: Report\r\n"
    "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
    "Message-ID: <report@remote.test>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    "\r\n"
    "--outer\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "See the attachment.\r\n"
    "--outer\r\n"
    "Content-Type: application/pdf; name=report.pdf\r\n"
    "Content-Disposition: attachment; filename=report.pdf\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "JVBERi0xLjQK\r\n"
    "--outer--\r\n"
)


def test_envelope_bodystructure_and_mime_part_sections(running):
    with smtplib.SMTP("127.0.0.1", running.port("smtp"), timeout=30) as client:
        client.ehlo("client.test")
        client.sendmail("carol@remote.test", [ALICE], MULTIPART)
    client = imap(running)
    client.select("INBOX")
    status, data = client.fetch("1", "(ENVELOPE BODYSTRUCTURE)")
    assert status == "OK"
    response = data[0] if isinstance(data[0], bytes) else b"".join(
        part if isinstance(part, bytes) else part[0] + part[1] for part in data)
    assert b'"Report"' in response
    assert b'(("Carol, the sender" NIL "carol" "remote.test"))' in response
    assert b'"<report@remote.test>"' in response
    assert b'"TEXT" "PLAIN" ("CHARSET" "utf-8")' in response
    assert b'"APPLICATION" "PDF"' in response
    assert b'"MIXED"' in response
    status, data = client.fetch("1", "(BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[2])")
    parts = [part[1] for part in data if isinstance(part, tuple)]
    # The CRLF before a boundary belongs to the boundary (RFC 2046 section 5.1.1).
    assert parts[0] == b"See the attachment."
    assert parts[1].startswith(b"Content-Type: application/pdf; name=report.pdf\r\n")
    assert parts[2] == b"JVBERi0xLjQK"
    status, data = client.fetch("1", "ALL")
    assert status == "OK"
    client.logout()


def test_search_on_header_fields_body_text_and_dates(running):
    with smtplib.SMTP("127.0.0.1", running.port("smtp"), timeout=30) as client:
        client.ehlo("client.test")
        client.sendmail("carol@remote.test", [ALICE], MULTIPART)
        client.sendmail("dave@remote.test", [ALICE],
                        "From: Dave <dave@remote.test>\r\nTo: alice@example.test\r\nSubject: Lunch\r\n"
                        "X-Priority: 1\r\n\r\nShall we meet at noon?\r\n")
    client = imap(running)
    client.select("INBOX")
    assert client.search(None, "FROM", "carol")[1] == [b"1"]
    assert client.search(None, "SUBJECT", "lunch")[1] == [b"2"]
    assert client.search(None, "TO", "BOB@example.test")[1] == [b"1"]
    assert client.search(None, "HEADER", "X-Priority", '""')[1] == [b"2"]
    assert client.search(None, "BODY", "NOON")[1] == [b"2"]
    assert client.search(None, "TEXT", "report.pdf")[1] == [b"1"]
    assert client.search(None, "OR", "FROM", "dave", "SUBJECT", "report")[1] == [b"1 2"]
    assert client.search(None, "NOT", "BODY", "noon")[1] == [b"1"]
    status, data = client.fetch("1", "(INTERNALDATE)")
    day = re.search(rb'INTERNALDATE "(\d+-\w+-\d+)', data[0]).group(1).decode()
    assert b"1" in client.search(None, "ON", day)[1][0].split()
    assert client.search(None, "BEFORE", "1-Jan-2000")[1] == [b""]
    assert client.search(None, "SINCE", "1-Jan-2000", "SUBJECT", "lunch")[1] == [b"2"]
    assert client.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT", "Report")[0] == "OK"
    # MULTIPART's Date is Sun, 22 Nov 2026; the lunch message has no Date at all.
    assert client.search(None, "SENTON", "22-Nov-2026")[1] == [b"1"]
    assert client.search(None, "SENTBEFORE", "22-Nov-2026")[1] == [b""]
    assert client.search(None, "SENTSINCE", "1-Jan-2000")[1] == [b"1"]
    client.logout()


def test_list_extended_special_use_selection_and_status_return(running):
    send(running, "counted")
    client = imap(running)
    status, listing = client._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
    assert status == "OK"
    lines = client.untagged_responses.pop("LIST")
    assert len(lines) == 5 and all(b"\\" in line for line in lines)
    status, _ = client._simple_command("LIST", '""', '("INBOX" "Junk")', "RETURN", "(STATUS (MESSAGES UNSEEN))")
    assert status == "OK"
    assert len(client.untagged_responses.pop("LIST")) == 2
    statuses = client.untagged_responses.pop("STATUS")
    assert any(b"INBOX" in line and b"MESSAGES 1 UNSEEN 1" in line for line in statuses)
    assert any(b"Junk" in line and b"MESSAGES 0" in line for line in statuses)
    client.logout()


def test_esearch_returns_min_max_count_and_a_compact_set(running):
    for subject in ("e1", "e2", "e3", "e4"):
        send(running, subject)
    client = imap(running)
    client.select("INBOX")
    client.store("3", "+FLAGS", "(\\Seen)")
    status, _ = client._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "UNSEEN")
    assert status == "OK"
    (line,) = client.untagged_responses.pop("ESEARCH")
    assert line.endswith(b"MIN 1 MAX 4 COUNT 3 ALL 1:2,4")
    status, _ = client._simple_command("UID", "SEARCH", "RETURN", "(COUNT)", "SEEN")
    (line,) = client.untagged_responses.pop("ESEARCH")
    assert b" UID COUNT 1" in line
    client.logout()


def test_condstore_modseq_changedsince_unchangedsince_and_search(running):
    for subject in ("m1", "m2", "m3"):
        send(running, subject)
    client = imap(running)
    assert "CONDSTORE" in client.capabilities
    assert client._simple_command("ENABLE", "CONDSTORE")[0] == "OK"
    assert client.untagged_responses.pop("ENABLED") == [b"CONDSTORE"]
    status, data = client._simple_command("SELECT", "INBOX", "(CONDSTORE)")
    assert status == "OK"
    client.state = "SELECTED"  # imaplib's select() cannot send the CONDSTORE parameter
    highest = int(client.untagged_responses.pop("HIGHESTMODSEQ")[-1])
    status, data = client.fetch("1:*", "(MODSEQ)")
    modseqs = [int(re.search(rb"MODSEQ \((\d+)\)", line).group(1)) for line in data]
    assert modseqs == sorted(modseqs) and modseqs[-1] == highest
    status, data = client.store("2", "+FLAGS", "(\\Seen)")
    assert re.match(rb"2 \(UID \d+ FLAGS", data[0])  # RFC 7162: with CONDSTORE on, STORE's FETCH has the UID
    changed = int(re.search(rb"MODSEQ \((\d+)\)", data[0]).group(1))
    assert changed == highest + 1
    status, data = client._simple_command("FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE {})".format(highest))
    fetched = client.untagged_responses.pop("FETCH")
    assert len(fetched) == 1 and fetched[0].startswith(b"2 (") and b"MODSEQ" in fetched[0]
    status, data = client._simple_command("STORE", "1:3", "(UNCHANGEDSINCE {})".format(highest), "+FLAGS",
                                          "(\\Flagged)")
    assert status == "OK" and b"[MODIFIED 2]" in data[0]
    status, data = client.search(None, "MODSEQ", str(highest + 1))
    assert data[0] == f"1 2 3 (MODSEQ {highest + 3})".encode()
    status, data = client.status("INBOX", "(HIGHESTMODSEQ)")
    assert int(re.search(rb"HIGHESTMODSEQ (\d+)", data[0]).group(1)) > changed
    client.logout()


def test_create_special_use_marks_the_new_mailbox(running):
    client = imap(running)
    assert "CREATE-SPECIAL-USE" in client.capabilities
    assert client._simple_command("CREATE", '"Old Mail"', "(USE (\\Archive))")[0] == "OK"
    status, listing = client.list('""', '"Old Mail"')
    assert b"\\Archive" in listing[0]
    status, data = client._simple_command("CREATE", "Odd", "(USE (\\Important))")
    assert status == "NO" and b"USEATTR" in data[0]
    client.logout()


def test_qresync_tells_what_vanished_and_changed_since_the_client_s_last_look(running):
    for subject in ("q1", "q2", "q3", "q4"):
        send(running, subject)
    client = RawImap(running)
    client.command(f"a LOGIN {ALICE} {ALICE_PASSWORD}".encode())
    reply, _ = client.command(b"b SELECT INBOX (QRESYNC (1 1))")
    assert reply.startswith(b"b BAD")  # not enabled yet
    reply, untagged = client.command(b"c ENABLE QRESYNC")
    assert untagged == [b"* ENABLED CONDSTORE QRESYNC\r\n"]
    reply, untagged = client.command(b"d SELECT INBOX")
    uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", b"".join(untagged)).group(1))
    highest = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(untagged)).group(1))
    reply, untagged = client.command(b"e UID SEARCH ALL")
    uids = [int(uid) for uid in untagged[0].split()[2:]]

    other = imap(running)
    other.select("INBOX")
    other.store("2", "+FLAGS", "(\\Flagged)")
    other.store("3", "+FLAGS", "(\\Deleted)")
    other.expunge()
    other.logout()

    # The session that stayed hears of the expunge as VANISHED, by UID, and of the flag with its UID.
    reply, untagged = client.command(b"f NOOP")
    assert f"* VANISHED {uids[2]}\r\n".encode() in untagged
    # This session selected the messages first: they are \Recent in it.
    assert any(line.startswith(f"* 2 FETCH (UID {uids[1]} FLAGS (\\Flagged \\Recent) MODSEQ (".encode())
               for line in untagged)
    assert not any(b"EXPUNGE" in line for line in untagged)

    # A client coming back with its last UIDVALIDITY and HIGHESTMODSEQ learns the same at SELECT.
    again = RawImap(running)
    again.command(f"a LOGIN {ALICE} {ALICE_PASSWORD}".encode())
    again.command(b"b ENABLE QRESYNC")
    reply, untagged = again.command(f"c SELECT INBOX (QRESYNC ({uidvalidity} {highest}))".encode())
    assert reply.startswith(b"c OK")
    assert f"* VANISHED (EARLIER) {uids[2]}\r\n".encode() in untagged
    changed = [line for line in untagged if b"FETCH" in line]
    assert len(changed) == 1 and changed[0].startswith(f"* 2 FETCH (UID {uids[1]} FLAGS (\\Flagged)".encode())
    # Limited to the UIDs it says it knows, it hears nothing of the others.
    reply, untagged = again.command(f"d SELECT INBOX (QRESYNC ({uidvalidity} {highest} {uids[3]}))".encode())
    assert untagged[0] == b"* OK [CLOSED] Previous mailbox closed\r\n"
    assert not any(b"VANISHED" in line or b"FETCH" in line for line in untagged)
    # A stale UIDVALIDITY gets no resync at all: the client must start over.
    reply, untagged = again.command(f"e EXAMINE INBOX (QRESYNC ({uidvalidity + 1} {highest}))".encode())
    assert reply.startswith(b"e OK") and not any(b"VANISHED" in line for line in untagged)
    # UID FETCH ... (CHANGEDSINCE n VANISHED) answers the same for a UID range.
    again.command(b"f SELECT INBOX")
    reply, untagged = again.command(f"g UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest} VANISHED)".encode())
    assert reply.startswith(b"g OK")
    assert untagged[0] == f"* VANISHED (EARLIER) {uids[2]}\r\n".encode()
    assert len(untagged) == 2 and f"UID {uids[1]} ".encode() in untagged[1]
    # Its own EXPUNGE is reported as VANISHED too.
    again.command(b"h STORE 1 +FLAGS.SILENT (\\Deleted)")
    reply, untagged = again.command(b"i EXPUNGE")
    assert untagged == [f"* VANISHED {uids[0]}\r\n".encode()]
    reply, _ = again.command(b"j UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED) trailing")
    assert reply.startswith(b"j BAD")


BINARY_MESSAGE = (b"From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: binary\r\nMIME-Version: 1.0\r\n"
                  b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
                  b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                  b"Caf=C3=A9 au lait, a long line that is soft=\r\n broken.\r\n"
                  b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                  b"AAEC/wBo\r\naQ==\r\n"
                  b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
                  b"begin 644 x\r\n"
                  b"--b--\r\n")


def test_binary_fetches_parts_decoded_and_append_takes_a_literal8(running):
    client = imap(running)
    assert "BINARY" in client.capabilities
    assert client.append("INBOX", None, None, BINARY_MESSAGE)[0] == "OK"
    client.select("INBOX")
    status, data = client.fetch("1", "(BINARY.PEEK[1] BINARY.PEEK[2] BINARY.SIZE[2])")
    assert status == "OK"
    assert data[0][1] == "Café au lait, a long line that is soft broken.".encode()  # the last CRLF is the boundary's
    assert data[1][0].endswith(b"BINARY[2] ~{7}")  # a NUL inside: a literal8
    assert data[1][1] == b"\x00\x01\x02\xff\x00hi"
    assert b"BINARY.SIZE[2] 7" in data[2]
    status, data = client.fetch("1", "(BINARY.PEEK[2]<2.3>)")
    assert data[0][0].endswith(b"BINARY[2]<2> ~{3}") and data[0][1] == b"\x02\xff\x00"
    assert b"\\Seen" not in client.fetch("1", "(FLAGS)")[1][0]
    status, data = client.fetch("1", "(BINARY.PEEK[3])")
    assert status == "NO" and b"[UNKNOWN-CTE]" in data[0]
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        client.fetch("1", "(BINARY[1.HEADER])")
    # A fetch without PEEK marks the message read, as BODY[] does.
    client.fetch("1", "(BINARY[2])")
    assert b"\\Seen" in client.fetch("1", "(FLAGS)")[1][0]
    client.logout()

    raw = RawImap(running)
    raw.command(f"a LOGIN {ALICE} {ALICE_PASSWORD}".encode())
    binary = b"Subject: nul\r\n\r\nbefore\x00after\r\n"
    raw.sock.sendall(b"b APPEND INBOX ~{%d}\r\n" % len(binary))
    assert raw.stream.readline().startswith(b"+ ")
    raw.sock.sendall(binary + b"\r\n")
    assert raw.stream.readline().startswith(b"b OK [APPENDUID")
    raw.command(b"c SELECT INBOX")
    raw.sock.sendall(b"d FETCH 2 (BINARY.PEEK[])\r\n")
    assert raw.stream.readline() == b"* 2 FETCH (BINARY[] ~{%d}\r\n" % len(binary)
    assert raw.stream.read(len(binary)) == binary


def test_mailbox_names_are_modified_utf7_for_imap4rev1_and_utf8_for_imap4rev2(running):
    client = imap(running)
    assert client.create("Entw&APw-rfe")[0] == "OK"
    assert client.create('"Tom &- Jerry"')[0] == "OK"
    status, listing = client.list('""', "*")
    assert any(line.endswith(b'"Entw&APw-rfe"') for line in listing)
    assert any(line.endswith(b'"Tom &- Jerry"') for line in listing)
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        client.create("Broken&Jjo")
    assert client.append("Entw&APw-rfe", None, None, b"Subject: draft\r\n\r\nbody\r\n")[0] == "OK"

    modern = RawImap(running)
    modern.command(f"a LOGIN {ALICE} {ALICE_PASSWORD}".encode())
    assert "IMAP4rev2" in client.capabilities or "IMAP4REV2" in client.capabilities
    reply, untagged = modern.command(b"b ENABLE IMAP4rev2")
    assert untagged == [b"* ENABLED IMAP4rev2\r\n"]
    name = "Entwürfe".encode()
    modern.sock.sendall(b'c LIST "" "Entw*"\r\n')
    # An 8-bit name travels as a literal.
    assert modern.stream.readline() == b'* LIST (\\HasNoChildren) "/" {%d}\r\n' % len(name)
    assert modern.stream.read(len(name)) == name
    assert modern.stream.readline() == b"\r\n"
    assert modern.stream.readline().startswith(b"c OK")
    modern.sock.sendall(b"d SELECT {%d+}\r\n%s\r\n" % (len(name), name))
    untagged = []
    while True:
        line = modern.stream.readline()
        if line.startswith(b"d "):
            break
        untagged.append(line)
    assert line.startswith(b"d OK [READ-WRITE]")
    assert b"* 1 EXISTS\r\n" in untagged
    assert not any(b"RECENT" in line for line in untagged)
    assert any(line.startswith(b'* LIST () "/" {') for line in untagged)
    reply, untagged = modern.command(b"e SELECT INBOX")
    assert untagged[0] == b"* OK [CLOSED] Previous mailbox closed\r\n"
    client.logout()


def test_status_size_and_deleted_and_renaming_inbox_moves_its_mail(running):
    for subject in ("r1", "r2", "r3"):
        send(running, subject)
    client = imap(running)
    client.select("INBOX")
    client.store("2", "+FLAGS", "(\\Deleted)")
    sizes = [int(re.search(rb"RFC822.SIZE (\d+)", line).group(1)) for line in client.fetch("1:*", "(RFC822.SIZE)")[1]]
    status, data = client.status("INBOX", "(MESSAGES SIZE DELETED)")
    assert data[0] == f'"INBOX" (MESSAGES 3 SIZE {sum(sizes)} DELETED 1)'.encode()
    client.unselect()  # CLOSE would expunge the \\Deleted one
    assert client.rename("INBOX", '"Old INBOX"')[0] == "OK"
    status, data = client.status("INBOX", "(MESSAGES)")
    assert data[0] == b'"INBOX" (MESSAGES 0)'
    status, data = client.status('"Old INBOX"', "(MESSAGES DELETED)")
    assert data[0] == b'"Old INBOX" (MESSAGES 3 DELETED 1)'
    # New mail still lands in INBOX.
    send(running, "r4")
    assert client.status("INBOX", "(MESSAGES)")[1][0] == b'"INBOX" (MESSAGES 1)'
    client.logout()


def test_imap4rev2_search_answers_esearch_and_searchres_saves_a_result_for_dollar(running):
    for subject in ("s1", "s2", "s3", "s4"):
        send(running, subject)
    client = RawImap(running)
    client.command(f"a LOGIN {ALICE} {ALICE_PASSWORD}".encode())
    client.command(b"b SELECT INBOX")
    client.command(b"c STORE 2,4 +FLAGS.SILENT (\\Flagged)")
    # SAVE alone answers nothing but the OK; "$" then names what it found.
    reply, untagged = client.command(b"d SEARCH RETURN (SAVE) FLAGGED")
    assert reply.startswith(b"d OK") and untagged == []
    reply, untagged = client.command(b"e FETCH $ (FLAGS)")
    assert [line.split()[1] for line in untagged] == [b"2", b"4"]
    reply, untagged = client.command(b"f SEARCH NOT $")
    assert untagged == [b"* SEARCH 1 3\r\n"]
    reply, untagged = client.command(b"g UID SEARCH RETURN (COUNT SAVE) UID $ SUBJECT s4")
    assert untagged[0].startswith(b'* ESEARCH (TAG "g") UID COUNT 1')
    # With MIN alone, only the smallest is saved (RFC 5182 section 2.4).
    client.command(b"g2 SEARCH RETURN (MIN SAVE) ALL")
    reply, untagged = client.command(b"g3 FETCH $ (UID)")
    assert len(untagged) == 1 and untagged[0].startswith(b"* 1 FETCH")
    # A UID EXPUNGE of a set that names nothing here removes nothing, \Deleted or not.
    client.command(b"g4 STORE 1 +FLAGS.SILENT (\\Deleted)")
    client.command(b"g5 SEARCH RETURN (SAVE) SUBJECT nothing-like-this")
    reply, untagged = client.command(b"g6 UID EXPUNGE $")
    assert reply.startswith(b"g6 OK") and untagged == []
    reply, untagged = client.command(b"g7 UID EXPUNGE 9999")
    assert reply.startswith(b"g7 OK") and untagged == []
    client.command(b"g8 STORE 1 -FLAGS.SILENT (\\Deleted)")
    reply, untagged = client.command(b"h ENABLE IMAP4rev2")
    reply, untagged = client.command(b"i SEARCH FLAGGED")
    assert untagged == [b'* ESEARCH (TAG "i") ALL 2,4\r\n']
    reply, untagged = client.command(b"j SEARCH DRAFT")
    assert untagged == [b'* ESEARCH (TAG "j")\r\n']
    reply, _ = client.command(b"k SEARCH RETURN (SIDEWAYS) ALL")
    assert reply.startswith(b"k BAD")


def test_search_finds_text_in_encoded_words_and_in_base64_and_quoted_printable_parts(running):
    client = imap(running)
    encoded = (b"From: carol@remote.test\r\nSubject: =?utf-8?Q?Caf=C3=A9_cr=C3=A8me?=\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
               b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
               b"Meet at the caf=C3=A9 on Tues=\r\nday.\r\n"
               b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
               b"c2VjcmV0IHJlY2lwZQ==\r\n--b--\r\n")
    client.append("INBOX", None, None, encoded)
    client.append("INBOX", None, None, b"Subject: plain\r\n\r\nnothing to see\r\n")
    client.select("INBOX")
    status, data = client.search(None, "BODY", '"nothing to"')
    assert data == [b"2"]
    client.logout()

    # UTF-8 search strings travel as literals, which imaplib cannot put in the middle of a command.
    raw = RawImap(running)
    raw.command(f"a LOGIN {ALICE} {ALICE_PASSWORD}".encode())
    raw.command(b"b SELECT INBOX")
    for key, value, expected in (("SUBJECT", "crème", b"1"), ("BODY", "Tuesday", b"1"), ("BODY", "secret recipe", b"1"),
                                 ("TEXT", "café", b"1"), ("BODY", "c2VjcmV0", b"1"), ("SUBJECT", "plain", b"2"),
                                 ("BODY", "Wednesday", b"")):
        data = value.encode()
        raw.sock.sendall(b"c SEARCH CHARSET UTF-8 %s {%d+}\r\n%s\r\n" % (key.encode(), len(data), data))
        found = raw.stream.readline()
        assert raw.stream.readline().startswith(b"c OK")
        assert found.rstrip(b"\r\n") == (b"* SEARCH " + expected).rstrip(), (key, value, found)


def test_news_of_other_sessions_comes_with_the_next_command_not_only_noop(running):
    send(running, "n1")
    send(running, "n2")
    watcher = RawImap(running)
    watcher.command(f"a LOGIN {ALICE} {ALICE_PASSWORD}".encode())
    watcher.command(b"b SELECT INBOX")
    other = imap(running)
    other.select("INBOX")
    other.store("1", "+FLAGS", "(\\Deleted)")
    other.expunge()
    send(running, "n3")
    # A FETCH may not hear of the expunge (its sequence numbers would shift under it)...
    reply, untagged = watcher.command(b"c FETCH 1:* (FLAGS)")
    assert not any(b"EXPUNGE" in line or b"EXISTS" in line for line in untagged)
    # ...but the next other command does, before its tagged reply.
    reply, untagged = watcher.command(b"d STATUS Sent (MESSAGES)")
    assert reply.startswith(b"d OK")
    assert b"* 1 EXPUNGE\r\n" in untagged and b"* 2 EXISTS\r\n" in untagged
    other.logout()


def test_a_mailbox_deleted_and_made_again_under_a_session_ends_it_and_gets_a_new_uidvalidity(running):
    client = imap(running)
    client.create("Work")
    client.append("Work", None, None, b"Subject: old\r\n\r\nold\r\n")
    first = client.status("Work", "(UIDVALIDITY)")[1][0]
    watcher = RawImap(running)
    watcher.command(f"a LOGIN {ALICE} {ALICE_PASSWORD}".encode())
    watcher.command(b"b SELECT Work")
    client.delete("Work")
    client.create("Work")
    client.append("Work", None, None, b"Subject: new\r\n\r\nnew\r\n")
    assert client.status("Work", "(UIDVALIDITY)")[1][0] != first
    # Its UID 1 is another message now: the watcher must not go on as if it were the same mailbox.
    reply, untagged = watcher.command(b"c NOOP")
    assert any(line.startswith(b"* BYE") for line in untagged + [reply])
    client.logout()


def test_id_namespace_check_lsub_subscribe_and_the_appendlimit(running):
    client = imap(running)
    status, data = client.xatom("ID", '("name" "pytest" "version" "1")')
    assert status == "OK" and b'"name" "Tern"' in client.untagged_responses.pop("ID")[0]
    status, data = client.namespace()
    assert data == [b'(("" "/")) NIL NIL']
    assert client.subscribe("Archive")[0] == "OK" and client.unsubscribe("Archive")[0] == "OK"
    status, listing = client.lsub('""', "*")
    assert any(line.endswith(b'"INBOX"') for line in listing) and len(listing) == 5
    assert not any(line.endswith(b'"Archive"') for line in listing)
    client.select("INBOX")
    assert client.check()[0] == "OK"
    limit = next(int(word.split("=")[1]) for word in client.capabilities if word.startswith("APPENDLIMIT="))
    assert limit == 64 * 1024 * 1024
    client.logout()

    # A synchronizing literal past the limit is refused before a byte of it is sent; the session goes on.
    raw = RawImap(running)
    raw.command(f"a LOGIN {ALICE} {ALICE_PASSWORD}".encode())
    raw.sock.sendall(b"b APPEND INBOX {%d}\r\n" % (limit + 1))
    reply = raw.stream.readline()
    assert reply.startswith(b"b NO [TOOBIG]")
    reply, _ = raw.command(b"c NOOP")
    assert reply.startswith(b"c OK")
    reply, untagged = raw.command(b"d LOGOUT")
    assert untagged[0].startswith(b"* BYE") and reply.startswith(b"d OK")


