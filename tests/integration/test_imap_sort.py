"""IMAP SORT and THREAD (RFC 5256) with Python's imaplib, on mail delivered over SMTP: the orders a user sees
in a client that asks the server to sort or thread its message list."""

import imaplib
import smtplib

import pytest

from conftest import ALICE, ALICE_PASSWORD, insecure_context


def deliver(server, subject, sender="carol@remote.test", date=None, message_id=None, in_reply_to=None,
            references=None):
    """Sends one message to alice over SMTP; the header fields not given are left out."""
    fields = [("From", sender), ("To", ALICE), ("Subject", subject), ("Date", date), ("Message-ID", message_id),
              ("In-Reply-To", in_reply_to), ("References", references)]
    header = "".join(f"{name}: {value}\r\n" for name, value in fields if value is not None)
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        client.ehlo("client.test")
        client.sendmail("carol@remote.test", [ALICE], header + "\r\nHello.\r\n")


def inbox(server):
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=insecure_context(), timeout=30)
    client.login(ALICE, ALICE_PASSWORD)
    client.select("INBOX")
    return client


def test_sort_and_thread_are_advertised(running):
    client = inbox(running)
    capabilities = client.capabilities
    assert {"SORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"} <= set(capabilities)
    client.logout()


def test_sort_by_subject_ignores_reply_forward_and_list_prefixes(running):
    for subject in ("Re: Budget", "[team] Agenda", "Fwd: budget", "coffee", "[team] Re: [team] Budget (fwd)"):
        deliver(running, subject)
    client = inbox(running)
    assert client.sort("(SUBJECT)", "UTF-8", "ALL") == ("OK", [b"2 1 3 5 4"])
    # REVERSE turns the subjects round; messages of one subject stay in mailbox order.
    assert client.sort("(REVERSE SUBJECT)", "US-ASCII", "ALL") == ("OK", [b"4 1 3 5 2"])
    client.logout()


def test_sort_by_reverse_date_reads_the_zone_and_falls_back_to_arrival(running):
    deliver(running, "a", date="Mon, 7 Jul 2025 10:00:00 +0200")  # 08:00 UTC
    deliver(running, "b", date="Mon, 7 Jul 2025 09:30:00 +0000")  # 09:30 UTC
    deliver(running, "c", date="Mon, 7 Jul 2025 02:45:00 -0500")  # 07:45 UTC
    deliver(running, "d")  # no Date: the arrival time, later than all the others
    client = inbox(running)
    assert client.sort("(REVERSE DATE)", "UTF-8", "ALL") == ("OK", [b"4 2 1 3"])
    assert client.sort("(DATE)", "UTF-8", "ALL") == ("OK", [b"3 1 2 4"])
    client.logout()


def test_sort_by_from_compares_the_mailbox_not_the_display_name(running):
    deliver(running, "one", sender="Zoe <adam@remote.test>")
    deliver(running, "two", sender="Adam <zoe@remote.test>")
    deliver(running, "three", sender="mallory@remote.test")
    client = inbox(running)
    assert client.sort("(FROM)", "UTF-8", "ALL") == ("OK", [b"1 3 2"])
    assert client.sort("(REVERSE FROM)", "UTF-8", "ALL") == ("OK", [b"2 3 1"])
    client.logout()


def test_sort_with_search_criteria_and_uid_sort(running):
    for subject in ("Zebra", "Apple", "Mango", "Banana"):
        deliver(running, subject)
    client = inbox(running)
    client.store("1,3", "+FLAGS", "(\\Flagged)")
    assert client.sort("(SUBJECT)", "UTF-8", "FLAGGED") == ("OK", [b"3 1"])
    assert client.sort("(SUBJECT)", "UTF-8", "NOT", "FLAGGED") == ("OK", [b"2 4"])
    assert client.sort("(SUBJECT)", "UTF-8", "SUBJECT", "\"nothing like this\"") == ("OK", [b""])
    uids = client.uid("SEARCH", "ALL")[1][0].split()
    status, data = client.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")
    assert status == "OK"
    assert data[0].split() == [uids[1], uids[3], uids[2], uids[0]]
    client.logout()


def test_thread_references_groups_a_reply_chain(running):
    deliver(running, "Trip to Lisbon", message_id="<trip@remote.test>", date="Mon, 7 Jul 2025 08:00:00 +0000")
    deliver(running, "Invoice", message_id="<invoice@remote.test>", date="Mon, 7 Jul 2025 09:00:00 +0000")
    deliver(running, "Re: Trip to Lisbon", message_id="<reply1@remote.test>", in_reply_to="<trip@remote.test>",
            date="Mon, 7 Jul 2025 10:00:00 +0000")
    deliver(running, "Re: Re: Trip to Lisbon", message_id="<reply2@remote.test>",
            references="<trip@remote.test> <reply1@remote.test>", date="Mon, 7 Jul 2025 11:00:00 +0000")
    # A second answer to the first message, written earlier than the first answer: siblings go in sent order.
    deliver(running, "Re: Trip to Lisbon", message_id="<reply3@remote.test>", references="<trip@remote.test>",
            date="Mon, 7 Jul 2025 09:30:00 +0000")
    client = inbox(running)
    assert client.thread("REFERENCES", "UTF-8", "ALL") == ("OK", [b"(1 (5)(3 4))(2)"])
    uids = client.uid("SEARCH", "ALL")[1][0].split()
    status, data = client.uid("THREAD", "REFERENCES", "UTF-8", "ALL")
    assert status == "OK"
    expected = b"(%s (%s)(%s %s))(%s)" % (uids[0], uids[4], uids[2], uids[3], uids[1])
    assert data == [expected]
    # Only the messages the search criteria choose are threaded.
    assert client.thread("REFERENCES", "UTF-8", "SUBJECT", "Lisbon") == ("OK", [b"(1 (5)(3 4))"])
    client.logout()


def test_thread_orderedsubject_groups_by_base_subject(running):
    deliver(running, "Lunch", date="Mon, 7 Jul 2025 12:00:00 +0000")
    deliver(running, "Beer", date="Mon, 7 Jul 2025 18:00:00 +0000")
    deliver(running, "Re: lunch", date="Mon, 7 Jul 2025 12:30:00 +0000")
    deliver(running, "Re: Lunch", date="Mon, 7 Jul 2025 12:10:00 +0000")
    deliver(running, "Breakfast", date="Mon, 7 Jul 2025 07:00:00 +0000")
    client = inbox(running)
    assert client.thread("ORDEREDSUBJECT", "UTF-8", "ALL") == ("OK", [b"(5)(1 (4)(3))(2)"])
    client.logout()


def test_bad_sort_key_or_thread_algorithm_is_a_tagged_bad(running):
    deliver(running, "one")
    client = inbox(running)
    with pytest.raises(imaplib.IMAP4.error, match="Syntax"):
        client.sort("(COLOR)", "UTF-8", "ALL")
    with pytest.raises(imaplib.IMAP4.error, match="Syntax"):
        client.sort("(REVERSE)", "UTF-8", "ALL")
    with pytest.raises(imaplib.IMAP4.error, match="Unknown thread algorithm"):
        client.thread("X-WHATEVER", "UTF-8", "ALL")
    with pytest.raises(imaplib.IMAP4.error, match="search key"):
        client.sort("(DATE)", "UTF-8", "NO-SUCH-KEY")
    # The session goes on.
    assert client.sort("(DATE)", "UTF-8", "ALL") == ("OK", [b"1"])
    client.logout()


def test_unknown_charset_is_no_badcharset(running):
    deliver(running, "one")
    client = inbox(running)
    status, data = client.sort("(DATE)", "KOI8-R", "ALL")
    assert status == "NO" and data[0].startswith(b"[BADCHARSET")
    status, data = client.thread("REFERENCES", "X-UNKNOWN", "ALL")
    assert status == "NO" and data[0].startswith(b"[BADCHARSET")
    client.logout()

