"""IMAP conformance over a raw socket, where imaplib would hide the fault: long command lines, ENVELOPE addresses
with comments, \\Recent, LIST-EXTENDED (RFC 5258) with real subscriptions, SEARCH MODSEQ with an entry name
(RFC 7162), mailbox names of every atom character, BINARY APPEND (RFC 3516), patience with bad commands, new
keywords announced in FLAGS, and a FETCH of a message another session expunged.

Every read has a timeout (imap_raw.RawImap): a server that never answers fails the test rather than hanging it."""

import re

from imap_raw import RawImap

UNTAGGED_DATA = re.compile(rb"\* (\d+ (EXISTS|RECENT|EXPUNGE|FETCH)|FLAGS) ")


def message(subject):
    return b"From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: " + subject + b"\r\n\r\nBody of " + \
        subject + b".\r\n"


def session(server, timeout=10):
    return RawImap(server, timeout=timeout, login=True)


def ok(client, line):
    reply, untagged = client.command(line)
    tag = line.split(b" ", 1)[0]
    assert reply.startswith(tag + b" OK"), (line[:200], reply, untagged)
    return untagged


def search_result(untagged):
    """The numbers of the one `* SEARCH` response (and its MODSEQ, or None)."""
    lines = [line for line in untagged if line.startswith(b"* SEARCH")]
    assert len(lines) == 1, untagged
    match = re.fullmatch(rb"\* SEARCH((?: \d+)*)(?: \(MODSEQ (\d+)\))?\r\n", lines[0])
    assert match, lines[0]
    return [int(number) for number in match.group(1).split()], match.group(2) and int(match.group(2))


def parse_list(line):
    """A LIST or LSUB response: (verb, lowercased attributes, delimiter, name, extended data)."""
    match = re.match(rb'\* (LIST|LSUB) \(([^)]*)\) (NIL|"(?:[^"\\]|\\.)") ', line)
    assert match, line
    rest = line[match.end():]
    if rest.startswith(b'"'):
        quoted = re.match(rb'"((?:[^"\\]|\\.)*)"', rest)
        name, rest = re.sub(rb"\\(.)", rb"\1", quoted.group(1)), rest[quoted.end():]
    elif rest.startswith(b"{"):
        literal = re.match(rb"\{(\d+)\}\r\n", rest)
        end = literal.end() + int(literal.group(1))
        name, rest = rest[literal.end():end], rest[end:]
    else:
        name, _, rest = rest.partition(b" ")
        name, rest = name.rstrip(b"\r\n"), b" " + rest
    attributes = {attribute.lower() for attribute in match.group(2).split()}
    return match.group(1), attributes, match.group(3), name, rest.strip()


def listing(untagged):
    """Name -> (attributes, extended data) of the LIST/LSUB responses."""
    entries = {}
    for line in untagged:
        if line.startswith((b"* LIST ", b"* LSUB ")):
            _, attributes, _, name, extended = parse_list(line)
            entries[name] = (attributes, extended)
    return entries


# 1. Long command lines.

def test_a_command_line_of_32_kb_gets_its_tagged_reply(running):
    client = session(running)
    client.append(b"INBOX", message(b"long"))
    # RFC 2971 lets the server refuse an ID value past 1024 octets, but only with a reply the client can match.
    reply, untagged = client.command(b'a ID ("name" "' + b"x" * 32768 + b'")')
    assert reply.startswith((b"a OK", b"a BAD", b"a NO")), reply
    assert not any(line.startswith(b"* BAD") for line in untagged), untagged
    # A long UID set is what a syncing client really sends: lines up to 64 KiB are accepted.
    ok(client, b"b SELECT INBOX")
    uid = int(re.search(rb"UID (\d+)", b"".join(ok(client, b"c FETCH 1 (UID)"))).group(1))
    uids = b",".join(b"%d" % number for number in range(uid + 1, uid + 16000, 2)) + b",%d" % uid
    assert 32 * 1024 < len(uids) < 60 * 1024
    untagged = ok(client, b"d UID FETCH " + uids + b" (UID)")
    assert untagged == [b"* 1 FETCH (UID %d)\r\n" % uid], untagged
    ok(client, b"e NOOP")


def test_a_command_line_of_200_kb_with_a_tag_gets_a_tagged_bad_and_the_session_goes_on(running):
    client = session(running)
    reply, untagged = client.command(b'd ID ("name" "' + b"x" * 200_000 + b'")')
    assert reply.startswith(b"d BAD"), reply
    assert not any(line.startswith(b"* BYE") for line in untagged), untagged
    # The rest of the line is thrown away, not read as further commands: the next command's answer is clean.
    assert ok(client, b"e NOOP") == []


def test_a_line_of_200_kb_without_a_readable_tag_gets_bye_and_the_connection_closes(running):
    client = session(running)
    client.send(b"x" * 200_000 + b"\r\n")
    lines = client.until_closed()
    assert any(line.startswith(b"* BYE") for line in lines), lines


# 2. ENVELOPE addresses and SEARCH FROM/TO.

def test_envelope_takes_the_display_name_from_a_comment_and_reads_obsolete_addresses(running):
    client = session(running)
    client.append(b"INBOX", b"From: user@example.org (Real Name)\r\nTo: alice@example.test\r\n"
                            b"Subject: one\r\n\r\nx\r\n")
    client.append(b"INBOX", b"From: Joe (comment) <joe (x) @ (y) example.net>\r\nTo: <user (c)@ (c) domain.org>\r\n"
                            b"Subject: two\r\n\r\nx\r\n")
    ok(client, b"s SELECT INBOX")
    # RFC 3501 names the phrase as an address's name; an old-style "addr (Real Name)" has its name in the comment,
    # and that is what a client should show (Dovecot answers so). Comments inside the address are no part of it.
    untagged = ok(client, b"f FETCH 1:2 ENVELOPE")
    real = b'(("Real Name" NIL "user" "example.org"))'
    joe = b'(("Joe" NIL "joe" "example.net"))'
    assert untagged == [
        b'* 1 FETCH (ENVELOPE (NIL "one" ' + real + b" " + real + b" " + real +
        b' ((NIL NIL "alice" "example.test")) NIL NIL NIL NIL))\r\n',
        b'* 2 FETCH (ENVELOPE (NIL "two" ' + joe + b" " + joe + b" " + joe +
        b' ((NIL NIL "user" "domain.org")) NIL NIL NIL NIL))\r\n',
    ]
    # SEARCH FROM/TO look at the envelope's addresses (RFC 3501 section 6.4.4), comments taken out.
    assert search_result(ok(client, b'a SEARCH FROM "joe@example.net"'))[0] == [2]
    assert search_result(ok(client, b'b SEARCH TO "user@domain.org"'))[0] == [2]
    assert search_result(ok(client, b'c SEARCH FROM "user@example.org"'))[0] == [1]


# 3. \Recent (IMAP4rev1).

def recent_flags(untagged):
    return [b"\\recent" in line.lower() for line in untagged if b" FETCH " in line]


def test_recent_goes_to_the_first_session_that_selects_and_examine_does_not_take_it(running):
    appender = session(running)
    ok(appender, b"a CREATE Fresh")
    appender.append(b"Fresh", message(b"f1"))
    untagged = ok(appender, b"b STATUS Fresh (RECENT)")
    assert untagged == [b'* STATUS "Fresh" (RECENT 1)\r\n'] or untagged == [b"* STATUS Fresh (RECENT 1)\r\n"]

    ok(appender, b"c CREATE M")
    appender.append(b"M", message(b"m1"))
    appender.append(b"M", message(b"m2"))
    # EXAMINE must not take \Recent away (RFC 3501 section 6.3.2).
    examiner = session(running)
    ok(examiner, b"a EXAMINE M")
    ok(examiner, b"b LOGOUT")

    first = session(running)
    untagged = ok(first, b"a SELECT M")
    assert b"* 2 RECENT\r\n" in untagged, untagged
    assert recent_flags(ok(first, b"b FETCH 1:* (FLAGS)")) == [True, True]
    assert search_result(ok(first, b"c SEARCH RECENT"))[0] == [1, 2]
    assert search_result(ok(first, b"d SEARCH NEW"))[0] == [1, 2]
    assert search_result(ok(first, b"e SEARCH OLD"))[0] == []

    later = session(running)
    untagged = ok(later, b"a SELECT M")
    assert b"* 0 RECENT\r\n" in untagged, untagged
    assert recent_flags(ok(later, b"b FETCH 1:* (FLAGS)")) == [False, False]
    ok(later, b"c LOGOUT")
    untagged = ok(appender, b"d STATUS M (RECENT)")
    assert untagged in ([b'* STATUS "M" (RECENT 0)\r\n'], [b"* STATUS M (RECENT 0)\r\n"]), untagged

    # A message that arrives while only `first` has M selected is recent there.
    appender.append(b"M", message(b"m3"))
    untagged = ok(first, b"f NOOP")
    assert b"* 3 EXISTS\r\n" in untagged and b"* 3 RECENT\r\n" in untagged, untagged
    assert recent_flags(ok(first, b"g FETCH 3 (FLAGS)")) == [True]


# 4. LIST-EXTENDED (RFC 5258) and real subscriptions.

def test_list_extended_refuses_an_unknown_selection_option_and_recursivematch_alone(running):
    client = session(running)
    # RFC 5258 section 3: an unknown selection option is BAD, and so is RECURSIVEMATCH without another one.
    for line in (b'a LIST (FOO) "" "*"', b'b LIST (RECURSIVEMATCH) "" "*"'):
        reply, untagged = client.command(line)
        assert reply.startswith(line[:2] + b"BAD"), (line, reply)
        assert untagged == [], untagged
    ok(client, b"c NOOP")


def unsubscribed(client, *names):
    """Creates the mailboxes and makes sure none is subscribed, whatever CREATE does (UNSUBSCRIBE of a name that
    is not subscribed may be NO)."""
    for name in names:
        ok(client, b"cr CREATE " + name)
        client.command(b"un UNSUBSCRIBE " + name)


def test_subscriptions_are_kept_and_list_subscribed_and_lsub_follow_them(running):
    client = session(running)
    unsubscribed(client, b"Parent", b"Parent/Child", b"Other")
    assert listing(ok(client, b'd LIST (SUBSCRIBED) "" "Parent*"')) == {}
    assert listing(ok(client, b'e LSUB "" "Parent*"')) == {}
    ok(client, b"f SUBSCRIBE Parent/Child")
    entries = listing(ok(client, b'g LIST (SUBSCRIBED) "" "*"'))
    assert b"Parent/Child" in entries and b"\\subscribed" in entries[b"Parent/Child"][0]
    assert b"Parent" not in entries and b"Other" not in entries
    assert set(listing(ok(client, b'h LSUB "" "Parent*"'))) == {b"Parent/Child"}
    ok(client, b"i UNSUBSCRIBE Parent/Child")
    assert listing(ok(client, b'j LIST (SUBSCRIBED) "" "Parent*"')) == {}
    assert listing(ok(client, b'k LSUB "" "Parent*"')) == {}


def test_recursivematch_gives_an_unsubscribed_parent_childinfo(running):
    client = session(running)
    unsubscribed(client, b"Parent", b"Parent/Child")
    ok(client, b"c SUBSCRIBE Parent/Child")
    untagged = ok(client, b'd LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)')
    entries = listing(untagged)
    # RFC 5258 section 3 and its examples in section 5: a parent that is not subscribed but has a subscribed child
    # is listed as * LIST () "/" "Foo" ("CHILDINFO" ("SUBSCRIBED")), here with \HasChildren for RETURN (CHILDREN).
    assert b"Parent" in entries, untagged
    attributes, extended = entries[b"Parent"]
    assert b"\\subscribed" not in attributes and b"\\haschildren" in attributes, attributes
    assert re.fullmatch(rb'\("?CHILDINFO"? \("SUBSCRIBED"\)\)', extended, re.IGNORECASE), extended
    assert b"Parent/Child" not in entries  # "%" does not reach it


def test_a_deleted_mailbox_stays_subscribed_as_nonexistent(running):
    client = session(running)
    ok(client, b"a CREATE Gone")
    ok(client, b"b SUBSCRIBE Gone")
    ok(client, b"c DELETE Gone")
    # RFC 3501 section 6.3.6: the subscription is not removed. RFC 5258 section 5 lists such a name as
    # * LIST (\Subscribed \NonExistent) "/" "Fruit/peach".
    entries = listing(ok(client, b'd LIST (SUBSCRIBED) "" "*"'))
    assert b"Gone" in entries, entries
    assert {b"\\subscribed", b"\\nonexistent"} <= entries[b"Gone"][0], entries[b"Gone"]
    assert b"Gone" in listing(ok(client, b'e LSUB "" "*"'))
    assert b"Gone" not in listing(ok(client, b'f LIST "" "*"'))


def test_list_return_children_and_subscribed_together(running):
    client = session(running)
    unsubscribed(client, b"Parent", b"Parent/Child")
    ok(client, b"c SUBSCRIBE Parent/Child")
    entries = listing(ok(client, b'd LIST "" "Parent*" RETURN (CHILDREN SUBSCRIBED)'))
    assert set(entries) == {b"Parent", b"Parent/Child"}
    assert b"\\haschildren" in entries[b"Parent"][0] and b"\\subscribed" not in entries[b"Parent"][0], entries
    assert {b"\\hasnochildren", b"\\subscribed"} <= entries[b"Parent/Child"][0], entries


# 5. SEARCH MODSEQ with an entry name (RFC 7162 section 3.1.5).

def test_search_modseq_takes_an_entry_name_and_type(running):
    client = session(running)
    for subject in (b"q1", b"q2", b"q3"):
        client.append(b"INBOX", message(subject))
    ok(client, b"a SELECT INBOX")
    ok(client, b"b STORE 2 +FLAGS (\\Seen)")
    changed = int(re.search(rb"MODSEQ \((\d+)\)", b"".join(ok(client, b"c FETCH 2 (MODSEQ)"))).group(1))
    everything, _ = search_result(ok(client, b"d SEARCH MODSEQ %d" % changed))
    # In a quoted string the flag's backslash is escaped: "/flags/\\Seen".
    found, modseq = search_result(ok(client, b'e SEARCH MODSEQ "/flags/\\\\Seen" all %d' % changed))
    assert 2 in found and set(found) <= set(everything) and modseq >= changed, (found, modseq, everything)
    found, modseq = search_result(ok(client, b'f SEARCH MODSEQ "/flags/$Label" shared 1'))
    assert set(found) <= {1, 2, 3} and (modseq is not None) == bool(found)
    search_result(ok(client, b'g UID SEARCH MODSEQ "/flags/\\\\Seen" priv %d' % changed))
    ok(client, b"h NOOP")


def test_an_unknown_search_key_is_bad_in_an_empty_mailbox_too(running):
    client = session(running)
    ok(client, b"a CREATE Empty")
    ok(client, b"b SELECT Empty")
    for line in (b"c SEARCH FOO", b"d SEARCH NOT", b"e UID SEARCH LARGER"):
        reply, _ = client.command(line)
        assert reply.startswith(line[:2] + b"BAD"), (line, reply)
    assert search_result(ok(client, b"f SEARCH UNSEEN FROM x"))[0] == []


# 6. Mailbox names of every atom character.

ATOM_NAME = b"!#$&-'+,-.0123456789:;<=>?@^_`|}"  # "&-" is "&" in modified UTF-7


def test_mailbox_names_with_every_atom_character_and_brackets(running):
    client = session(running)
    ok(client, b'a CREATE "' + ATOM_NAME + b'"')
    ok(client, b'b CREATE "[Tern]Box"')
    ok(client, b"c SELECT " + ATOM_NAME)  # every one of them is an ATOM-CHAR: the name needs no quotes
    assert set(listing(ok(client, b'd LIST "" "!#$&-\'+,-.*"'))) == {ATOM_NAME}
    assert set(listing(ok(client, b"e LIST \"\" !#$&-'+,-.*"))) == {ATOM_NAME}
    assert set(listing(ok(client, b'f LIST "" "*[*"'))) == {b"[Tern]Box"}
    # "[" is an ATOM-CHAR and "]" may stand in an astring and a list-mailbox (RFC 3501 section 9): a name that
    # does not exist is NO however odd its characters, and a pattern with them is a pattern.
    replies = {}
    for line in (b'g SELECT "!#$&-\'+,-.9876:;<=>?@^_`|}"', b"h SELECT !#$&-'+,-.9876:;<=>?@^_`|}",
                 b'i SELECT "[Nope]"', b"j SELECT Nope[x", b"k SELECT Nope]x", b"l EXAMINE [Nope",
                 b"m STATUS Nope[ (MESSAGES)", b'n LIST "" *[*', b'o LIST "" Nope]*'):
        replies[line] = client.command(line)[0]
    wrong = {line: reply for line, reply in replies.items()
             if not reply.startswith(line[:2] + (b"OK" if b" LIST " in line else b"NO"))}
    assert not wrong, wrong
    ok(client, b"p CREATE Box[1")
    ok(client, b"q CREATE Box]2")
    assert set(listing(ok(client, b'r LIST "" *[*'))) == {b"[Tern]Box", b"Box[1"}
    assert set(listing(ok(client, b't LIST "" *]*'))) == {b"[Tern]Box", b"Box]2"}
    ok(client, b"s NOOP")


# 7. APPEND of a literal8 (RFC 3516).

def test_a_binary_append_then_fetch_of_its_part_answers_only_the_fetch(running):
    client = session(running)
    payload = b"\x00\x01\x02\xff\xfe caf\xc3\xa9\r\n\x00\r\n* 5 BYE not a response\r\n\x00end"
    binary = (b"From: carol@remote.test\r\nSubject: binary\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
              b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the attachment.\r\n"
              b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
              + payload + b"\r\n--b--\r\n")
    client.send(b"a APPEND INBOX ~{%d}\r\n" % len(binary))
    assert client.readline().startswith(b"+ ")
    client.send(binary + b"\r\n")
    reply, _ = client.until_tagged(b"a")
    assert reply.startswith(b"a OK"), reply
    ok(client, b"b SELECT INBOX")
    for line in (b"c FETCH 1 BODY.PEEK[1]", b"d FETCH 1 BODY.PEEK[2]"):
        untagged = ok(client, line)
        assert all(UNTAGGED_DATA.match(response) for response in untagged), untagged
        fetched = [response for response in untagged if response.startswith(b"* 1 FETCH")]
        assert len(fetched) == 1, untagged
        # A literal is CHAR8, without NUL (RFC 9051 section 9); binary data in BODY[] is transfer-encoded
        # (RFC 9051 section 7.5.2): only BINARY[] may hand the octets back as they are.
        literal = re.search(rb"BODY\[\d\] \{(\d+)\}\r\n", fetched[0])
        assert literal, fetched
        assert b"\x00" not in fetched[0][literal.end():literal.end() + int(literal.group(1))], fetched
    untagged = ok(client, b"e FETCH 1 BINARY.PEEK[2]")
    assert untagged == [b"* 1 FETCH (BINARY[2] ~{%d}\r\n%s)\r\n" % (len(payload), payload)], untagged


# 8. Patience with bad commands, and its end.

BAD_COMMANDS = (b"FROB", b"FETCH", b'SELECT "unterminated', b"STORE x FLAGS", b"SEARCH FOO", b"LIST",
                b"UID BOGUS 1", b"CREATE")


def test_bad_commands_among_good_ones_are_forgiven_but_a_flood_of_them_ends_the_session(running):
    client = session(running)
    client.append(b"INBOX", message(b"p1"))
    ok(client, b"s SELECT INBOX")
    for number in range(20):
        reply, _ = client.command(b"b%d %s" % (number, BAD_COMMANDS[number % len(BAD_COMMANDS)]))
        assert reply.startswith(b"b%d BAD" % number), reply
        ok(client, b"g%d NOOP" % number)
    for number in range(15):
        reply, _ = client.command(b"c%d %s" % (number, BAD_COMMANDS[number % len(BAD_COMMANDS)]))
        assert reply.startswith(b"c%d BAD" % number), reply
    ok(client, b"n NOOP")

    flooder = session(running)
    flooder.send(b"".join(b"z%d %s\r\n" % (number, BAD_COMMANDS[number % len(BAD_COMMANDS)])
                          for number in range(200)))
    lines = flooder.until_closed()
    assert any(line.startswith(b"* BYE") for line in lines), lines[-3:]
    assert sum(line.startswith(b"z") for line in lines) < 200


# 9. New keywords are announced in FLAGS before a FETCH shows them.

def has_flag(line, flag):
    return re.search(rb"(?<=[ (])" + re.escape(flag) + rb"(?=[ )])", line) is not None


def announced_before_fetch(untagged, keyword):
    """Whether a FLAGS response listing `keyword` and a PERMANENTFLAGS with \\* come before the FETCH showing it."""
    def first(predicate):
        return next((index for index, line in enumerate(untagged) if predicate(line)), None)
    flags = first(lambda line: line.startswith(b"* FLAGS (") and has_flag(line, keyword))
    permanent = first(lambda line: line.startswith(b"* OK [PERMANENTFLAGS (") and has_flag(line, b"\\*"))
    fetch = first(lambda line: re.match(rb"\* \d+ FETCH ", line) and has_flag(line, keyword))
    return None not in (flags, permanent, fetch) and flags < fetch and permanent < fetch


def test_a_new_keyword_is_announced_in_flags_before_the_fetch_that_shows_it(running):
    """FLAGS lists the flags applicable in the mailbox and the client records it (RFC 3501 section 7.2.6): a keyword
    first seen in a FETCH is one the client was never told about. Dovecot sends FLAGS and PERMANENTFLAGS first."""
    watcher = session(running)
    watcher.append(b"INBOX", message(b"k1"))
    ok(watcher, b"a SELECT INBOX")
    other = session(running)
    ok(other, b"a SELECT INBOX")
    ok(other, b"b STORE 1 +FLAGS ($Label3)")
    untagged = ok(watcher, b"b NOOP")
    assert announced_before_fetch(untagged, b"$Label3"), untagged
    # The session's own STORE of a keyword new to the mailbox, likewise.
    untagged = ok(watcher, b"c STORE 1 +FLAGS ($New1)")
    assert announced_before_fetch(untagged, b"$New1"), untagged
    # SELECT lists the keywords the mailbox's messages carry.
    untagged = ok(session(running), b"a SELECT INBOX")
    listed = next(line for line in untagged if line.startswith(b"* FLAGS ("))
    assert has_flag(listed, b"$Label3") and has_flag(listed, b"$New1"), listed


# 10. A FETCH of a message another session expunged.

def fetched_whole(line, uid, subject):
    literal = b"BODY[] {%d}\r\n" % len(message(subject))
    return line.startswith(b"* 1 FETCH (") and re.search(rb"[ (]UID %d[ )]" % uid, line) is not None and \
        literal + message(subject) in line


def test_fetch_of_a_message_expunged_by_another_session_still_answers_and_noop_then_tells(running):
    """RFC 2180 section 4.1 leaves the server a choice; this asks for the one a client meets no error with: the
    message is served from what the session still sees, and the next NOOP tells of the expunge (as Dovecot does)."""
    reader = session(running)
    for subject in (b"x1", b"x2", b"x3"):
        reader.append(b"INBOX", message(subject))
    ok(reader, b"a SELECT INBOX")
    uids = [int(uid) for uid in re.findall(rb"UID (\d+)", b"".join(ok(reader, b"b FETCH 1:3 (UID)")))]
    other = session(running)
    ok(other, b"a SELECT INBOX")
    ok(other, b"b STORE 1 +FLAGS.SILENT (\\Deleted)")
    ok(other, b"c EXPUNGE")

    # No EXPUNGE may be sent during a FETCH (RFC 3501 section 7.4.1): the server still answers for message 1.
    untagged = ok(reader, b"c FETCH 1 (UID BODY.PEEK[])")
    assert len(untagged) == 1 and fetched_whole(untagged[0], uids[0], b"x1"), untagged
    assert b"* 1 EXPUNGE\r\n" in ok(reader, b"d NOOP")

    ok(other, b"d STORE 1 +FLAGS.SILENT (\\Deleted)")
    ok(other, b"e EXPUNGE")
    # A UID command may also tell of the expunge (RFC 3501 section 7.4.1); any FETCH it answers is the message.
    untagged = ok(reader, b"e UID FETCH %d (UID BODY.PEEK[])" % uids[1])
    told = b"* 1 EXPUNGE\r\n" in untagged
    fetches = [line for line in untagged if b" FETCH " in line]
    assert fetches or told, untagged
    assert all(fetched_whole(line, uids[1], b"x2") for line in fetches), untagged
    if not told:
        assert b"* 1 EXPUNGE\r\n" in ok(reader, b"f NOOP")
    assert ok(reader, b"g FETCH 1:* (UID)") == [b"* 1 FETCH (UID %d)\r\n" % uids[2]]
