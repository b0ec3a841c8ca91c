"""Users' own delivery rules (issue 7): a script `tern script upload` stored for a user runs at `deliver` for
that user's mail only. It files into folders with flags, redirects, discards and answers with a vacation
reply (once per sender, never to lists or the null sender); a broken or runaway one is logged and the mail
lands in the inbox as if there were no script."""

import imaplib
import re
import smtplib

import pytest

from conftest import ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, Tern, insecure_context

FILING = """\
tern.hook("deliver", function(tx)
  local subject = tx:header("Subject") or ""
  if subject:find("[club]", 1, true) then
    tx:add_flag("\\\\Flagged")
    tx:add_flag("$Club")
    return tern.quarantine("Club/News")
  end
  if subject == "pass it on" then
    tx:redirect("bob@example.test")
    return tern.discard()
  end
end)
"""

VACATION = """\
tern.hook("deliver", function(tx)
  local sent, why = tx:vacation{days = 3, subject = "Away until Monday", text = "I am away.\\nBack on Monday."}
  tern.log("vacation for " .. tx.sender .. ": " .. tostring(sent) .. " " .. tostring(why))
end)
"""


@pytest.fixture
def server(tmp_path):
    server = Tern(tmp_path, extra="[plugin.lua]\nuser_scripts = true\n")
    server.add_users()
    yield server.start()
    server.stop()


def upload(server, user, source, check=True):
    return server.cli("script", "upload", user, "-", input=source, check=check)


def mailbox(server, user, password, folder="INBOX"):
    """The messages of a folder as (flags, text), in order."""
    with imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=insecure_context()) as client:
        client.login(user, password)
        status, data = client.select(f'"{folder}"', readonly=True)
        assert status == "OK", data
        messages = []
        for n in range(1, int(data[0]) + 1):
            parts = client.fetch(str(n), "(FLAGS BODY.PEEK[])")[1][0]
            messages.append((parts[0].decode(), parts[1].decode()))
        return messages


def send(server, sender, recipients, text):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        assert client.sendmail(sender, recipients, text) == {}


def test_a_users_script_files_into_a_folder_with_flags_that_imap_shows_and_only_for_that_user(server):
    upload(server, ALICE, FILING)
    send(server, "carol@remote.test", [ALICE, BOB], "Subject: [club] meeting\r\n\r\nThursday\r\n")
    send(server, "carol@remote.test", [ALICE], "Subject: hello\r\n\r\nhi\r\n")
    ((flags, text),) = mailbox(server, ALICE, ALICE_PASSWORD, "Club/News")
    assert "Subject: [club] meeting" in text
    assert "\\Flagged" in flags and "$Club" in flags and "\\Seen" not in flags
    ((_, inbox),) = mailbox(server, ALICE, ALICE_PASSWORD)
    assert "Subject: hello" in inbox
    # Bob has no script: the same message is in his inbox, unflagged.
    ((bob_flags, bob_text),) = mailbox(server, BOB, BOB_PASSWORD)
    assert "Subject: [club] meeting" in bob_text and "\\Flagged" not in bob_flags


def test_a_redirect_with_discard_moves_the_message_to_another_user(server):
    upload(server, ALICE, FILING)
    send(server, "carol@remote.test", [ALICE], "Subject: pass it on\r\n\r\nfor Bob\r\n")
    assert mailbox(server, ALICE, ALICE_PASSWORD) == []
    ((_, text),) = mailbox(server, BOB, BOB_PASSWORD)
    assert "Subject: pass it on" in text and "Delivered-To: alice@example.test" in text


def test_vacation_answers_each_sender_once_and_never_lists_or_the_null_sender(server):
    upload(server, ALICE, VACATION)
    letter = f"From: Bob <{BOB}>\r\nTo: Alice <{ALICE}>\r\nSubject: lunch?\r\nMessage-ID: <q1@example.test>\r\n\r\nnoon\r\n"
    send(server, BOB, [ALICE], letter)
    send(server, BOB, [ALICE], letter.replace("lunch?", "lunch, again?").replace("q1@", "q2@"))
    send(server, BOB, [ALICE], f"To: {ALICE}\r\nList-Id: <club.example.test>\r\nSubject: news\r\n\r\nlist\r\n")
    send(server, "", [ALICE], f"To: {ALICE}\r\nSubject: a bounce\r\n\r\nreport\r\n")
    send(server, BOB, [ALICE], "To: someone-else@example.org\r\nSubject: bcc\r\n\r\nblind\r\n")
    server.wait_for_log("vacation for : false")  # the last of the five, in order

    replies = mailbox(server, BOB, BOB_PASSWORD)
    assert len(replies) == 1, replies
    reply = replies[0][1]
    assert f"From: <{ALICE}>" in reply and "Subject: Away until Monday" in reply
    assert "Auto-Submitted: auto-replied" in reply and "In-Reply-To: <q1@example.test>" in reply
    assert "I am away.\r\nBack on Monday." in reply
    log = server.log_text()
    # tern.log writes into the session's log: its lines carry the session id, then the script and line.
    assert re.search(r"\[\w+\] lua: alice@example\.test\.lua:3: vacation for bob@example\.test: true", log)
    assert "this sender had a reply within 3 day(s)" in log
    assert "list mail gets no reply" in log
    assert "the null sender gets no reply" in log
    assert "not addressed to the user" in log
    # Alice still got all five.
    assert len(mailbox(server, ALICE, ALICE_PASSWORD)) == 5


def test_a_broken_runaway_or_overreaching_user_script_leaves_mail_in_the_inbox(server):
    upload(server, ALICE, "tern.hook('deliver', function(tx)\n  while true do end\nend)\n")
    send(server, "carol@remote.test", [ALICE], "Subject: one\r\n\r\n1\r\n")
    server.wait_for_log("alice@example.test.lua:2: time budget of 20 ms exceeded")

    upload(server, ALICE, "tern.hook('deliver', function(tx)\n  return tern.tcp('127.0.0.1', 25)\nend)\n")
    send(server, "carol@remote.test", [ALICE], "Subject: two\r\n\r\n2\r\n")
    server.wait_for_log("tern.tcp is not available to a user's script")

    upload(server, ALICE, "tern.hook('rcpt', function(tx) end)\n")
    send(server, "carol@remote.test", [ALICE], "Subject: three\r\n\r\n3\r\n")
    server.wait_for_log('a user\'s script hooks "deliver" only')

    upload(server, ALICE, "tern.hook('deliver', function(tx) return tern.reject(550, '5.7.1', 'go away') end)\n")
    send(server, "carol@remote.test", [ALICE], "Subject: four\r\n\r\n4\r\n")
    server.wait_for_log("returned a verdict a user's script may not give")

    subjects = [text.split("Subject: ")[1].split("\r\n")[0] for _, text in mailbox(server, ALICE, ALICE_PASSWORD)]
    assert subjects == ["one", "two", "three", "four"]


def test_tern_script_checks_uploads_and_lists_shows_and_removes_scripts(server):
    refused = upload(server, ALICE, "tern.hook('deliver', function(tx)\n  return (\nend)\n", check=False)
    assert refused.returncode == 2 and "alice@example.test.lua:3:" in refused.stderr, refused.stderr
    unknown = upload(server, "nobody@example.test", FILING, check=False)
    assert unknown.returncode == 1 and "no user nobody@example.test" in unknown.stderr
    assert server.cli("script", "list").stdout == ""

    upload(server, ALICE, FILING)
    assert server.cli("script", "list").stdout == f"{ALICE} {len(FILING)} octets\n"
    assert server.cli("script", "show", ALICE).stdout == FILING
    # A refused upload leaves the last good script in place.
    upload(server, ALICE, "return (", check=False)
    assert server.cli("script", "show", ALICE).stdout == FILING

    server.cli("script", "remove", ALICE)
    assert server.cli("script", "list").stdout == ""
    assert server.cli("script", "remove", ALICE, check=False).returncode == 1
    send(server, "carol@remote.test", [ALICE], "Subject: [club] after removal\r\n\r\nx\r\n")
    ((_, text),) = mailbox(server, ALICE, ALICE_PASSWORD)
    assert "after removal" in text
