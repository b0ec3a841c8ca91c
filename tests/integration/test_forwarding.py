"""Aliases that forward outside, catch-alls, loop and hop limits, and the domains Tern relays for (issue 6)."""

import smtplib
import sqlite3

import pytest

from conftest import ALICE, Tern


def queued_recipients(server):
    with sqlite3.connect(server.data / "tern.db") as db:
        return sorted(row for row in db.execute("SELECT address, notify, orcpt FROM queue_recipients"))


def inbox_count(server, user):
    with sqlite3.connect(server.data / "tern.db") as db:
        return db.execute("SELECT count(*) FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id "
                          "JOIN users u ON b.user_id = u.id WHERE u.address = ? AND b.name = 'INBOX'",
                          (user,)).fetchone()[0]


def queued_message(server):
    with sqlite3.connect(server.data / "tern.db") as db:
        (body,) = db.execute("SELECT b.body FROM queue q JOIN blobs b ON b.hash = q.blob").fetchone()
    return bytes(body).decode()


@pytest.fixture
def forwarding(tmp_path):
    # Everything outbound is held: what is forwarded stays on the queue for the test to read.
    server = Tern(tmp_path, listeners={"smtp": ("smtp", "none", False)},
                  extra='[plugin.smtp]\nrelay_domains = ["backup.test"]\n'
                        '[[plugin.outbound.route]]\ndomains = ["*"]\nvia = "hold"\n')
    server.add_users()
    server.cli("alias", "add", "team@example.test", ALICE)
    server.cli("alias", "add", "team@example.test", "friend@remote.test")
    server.cli("alias", "add", "@example.test", "bob@example.test")
    yield server.start()
    server.stop()


def send(server, recipients, message, sender="carol@remote.test", **options):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        return client.sendmail(sender, recipients, message, **options)


def test_an_alias_forwards_outside_and_keeps_a_local_copy_from_anyone(forwarding):
    # An MX client with no relay rights: the alias, not the client, sends it outside.
    assert send(forwarding, ["team@example.test"], "Subject: for the team\r\n\r\nhi\r\n",
                rcpt_options=["NOTIFY=FAILURE"]) == {}
    assert inbox_count(forwarding, ALICE) == 1
    assert queued_recipients(forwarding) == [("friend@remote.test", "FAILURE", "rfc822;team@example.test")]
    assert "Delivered-To: team@example.test\r\n" in queued_message(forwarding)


def test_a_message_that_already_passed_the_forwarding_alias_is_refused_as_a_loop(forwarding):
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(forwarding, ["team@example.test"], "Delivered-To: team@example.test\r\nSubject: again\r\n\r\nhi\r\n")
    assert refused.value.smtp_code == 554
    assert b"5.4.6" in refused.value.smtp_error and b"loop" in refused.value.smtp_error
    assert queued_recipients(forwarding) == []
    assert inbox_count(forwarding, ALICE) == 0


def test_a_message_with_too_many_received_fields_is_refused(forwarding):
    hops = "".join(f"Received: from hop{i}.test by hop{i + 1}.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                   for i in range(51))
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(forwarding, [ALICE], hops + "Subject: round and round\r\n\r\nhi\r\n")
    assert refused.value.smtp_code == 554 and b"5.4.6" in refused.value.smtp_error
    assert inbox_count(forwarding, ALICE) == 0


def test_the_catch_all_takes_unknown_addresses_of_its_domain(forwarding):
    assert send(forwarding, ["whoever@example.test"], "Subject: anyone there\r\n\r\nhi\r\n") == {}
    assert inbox_count(forwarding, "bob@example.test") == 1


def test_anyone_may_send_to_a_relay_domain_and_it_is_queued(forwarding):
    assert send(forwarding, ["user@backup.test"], "Subject: for the part-time server\r\n\r\nhi\r\n") == {}
    assert [address for address, _, _ in queued_recipients(forwarding)] == ["user@backup.test"]
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(forwarding, ["user@elsewhere.test"], "Subject: x\r\n\r\nhi\r\n")
