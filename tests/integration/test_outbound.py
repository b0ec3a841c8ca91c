"""Outbound delivery (the outbound plugin): mail an authenticated user sends to other domains leaves the queue
for the recipients' MX hosts, a smarthost, a program or nowhere (held), and comes back to the sender as an
RFC 3464 report when it fails. The remote side runs on loopback (peers.py): a name server with a zone each
test writes, smtp-sink, a private Postfix, and more Tern instances on 127.0.0.x; every MX host is reached on
one port, free on all those addresses. Retries are 1 s apart, and every wait polls against a deadline."""

import email
import email.policy
import os
import poplib
import re
import smtplib
import stat
import time

import pytest

from conftest import ALICE, ALICE_PASSWORD, FIXTURE_PLUGINS, PLUGIN_DIR, Tern, insecure_context
from peers import (NO_8BITMIME, NO_DSN, NO_ESMTP, NO_PIPELINING, DnsServer, PostfixPeer, SmtpSink, free_port_on,
                   mx_zone, reject_rcpt, tern_peer, wait_until)

CAROL = "carol@d1.test"
CAROL_PASSWORD = "carol-secret"
MX1, MX2, MX3 = "127.0.0.2", "127.0.0.3", "127.0.0.4"
DELIVERY_TIMEOUT = 30  # seconds a test waits for something that should happen within a retry or two


# --- the sending server ----------------------------------------------------------------------------------------

def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def outbound_config(dns, port=25, routes=(), **settings):
    """The server's DNS (`dns`), then the [plugin.outbound] section: MX hosts on `port`, retries 1 s apart unless
    `settings` say otherwise, then one [[plugin.outbound.route]] per dict in `routes`."""
    settings = {"port": port, "retry_after": [1], **settings}
    lines = ["[dns]", f'servers = ["{dns.address}:{dns.port}"]', "[plugin.outbound]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in settings.items()]
    for route in routes:
        lines.append("[[plugin.outbound.route]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in route.items()]
    return "\n".join(lines) + "\n"


def sending_server(tmp_path, dns, port=25, routes=(), extra="", plugin_dirs=None, **settings):
    """The Tern under test, on 127.0.0.1, with example.test (alice, bob) and the outbound section; started."""
    (tmp_path / "tern").mkdir()
    server = Tern(tmp_path / "tern", extra=outbound_config(dns, port, routes, **settings) + extra,
                  plugin_dirs=plugin_dirs)
    server.add_users()
    return server.start()


def submit(server, recipients, message, sender=ALICE, mail_options=(), rcpt_options=()):
    """Sends as alice over submission (STARTTLS, AUTH); returns sendmail's refused recipients."""
    with smtplib.SMTP(server.host, server.port("submission"), timeout=30) as client:
        client.starttls(context=insecure_context())
        client.login(ALICE, ALICE_PASSWORD)
        return client.sendmail(sender, list(recipients), message, list(mail_options), list(rcpt_options))


def message(subject, to=CAROL, body="Hello from alice.\r\n", sender=ALICE):
    return (f"From: Alice <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@example.test>\r\nDate: Sun, 1 Mar 2026 10:00:00 +0000\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}")


# --- what the users see ----------------------------------------------------------------------------------------

def mailbox(server, user=ALICE, password=ALICE_PASSWORD):
    """Every message in the user's INBOX (raw bytes), over POP3 with implicit TLS, left in place."""
    deadline = time.monotonic() + 10
    while True:
        try:
            client = poplib.POP3_SSL(server.host, server.port("pop3s"), context=insecure_context(), timeout=30)
            client.user(user)
            client.pass_(password)
            break
        except poplib.error_proto as error:  # the last session's lock, not yet released
            client.close()
            if b"[IN-USE]" not in error.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        return [b"\r\n".join(client.retr(number)[1]) + b"\r\n" for number in range(1, client.stat()[0] + 1)]
    finally:
        client.quit()


def wait_for_mail(server, user, password, expected, timeout=DELIVERY_TIMEOUT):
    """Polls the user's INBOX (every 0.3 s: each poll is a login) until its subjects are `expected`."""
    found = wait_until(lambda: subjects(mailbox(server, user, password)) == expected, timeout, interval=0.3)
    assert found, f"{user} has {subjects(mailbox(server, user, password))}, not {expected}"


def subjects(raw_messages):
    found = []
    for raw in raw_messages:
        match = re.search(rb"^Subject: (.*)$", raw, re.MULTILINE | re.IGNORECASE)
        found.append(match.group(1).decode().strip() if match else None)
    return found


def unfold(text):
    return re.sub(r"\r?\n[ \t]+", " ", text)


class Report:
    """A delivery status notification (RFC 3464) as received: its header, the fields of its
    message/delivery-status part (per message, then one dict per recipient, keys lower-cased, values unfolded)
    and the content type of the returned original."""

    def __init__(self, raw):
        self.raw = raw
        self.text = unfold(raw.decode("utf-8", "replace"))
        self.message = email.message_from_bytes(raw, policy=email.policy.default)
        self.per_message, self.recipients, self.original_type = {}, [], None
        self.explanation = ""
        if self.message.get_content_type() != "multipart/report":
            return
        for part in self.message.iter_parts():
            kind = part.get_content_type()
            if kind == "message/delivery-status":
                blocks = [{key.lower(): " ".join(str(value).split()) for key, value in block.items()}
                          for block in part.get_payload()]
                self.per_message, self.recipients = (blocks[0], blocks[1:]) if blocks else ({}, [])
            elif kind in ("message/rfc822", "text/rfc822-headers"):
                self.original_type = kind
            elif kind == "text/plain" and not self.explanation:
                self.explanation = part.get_content()

    @property
    def report_type(self):
        return self.message.get_param("report-type")

    def recipient(self, address):
        """The per-recipient fields whose Final-Recipient is `address`."""
        for fields in self.recipients:
            if fields.get("final-recipient", "").split(";", 1)[-1].strip().lower() == address:
                return fields
        raise AssertionError(f"no Final-Recipient {address} in:\n{self.text}")


def reports(server, user=ALICE, password=ALICE_PASSWORD):
    return [Report(raw) for raw in mailbox(server, user, password)
            if b"multipart/report" in raw.split(b"\r\n\r\n", 1)[0].lower()]


def wait_for_reports(server, count=1, timeout=DELIVERY_TIMEOUT):
    found = wait_until(lambda: (lambda now: now if len(now) >= count else None)(reports(server)), timeout,
                       interval=0.3)
    assert found and len(found) >= count, f"{count} report(s) expected in alice's INBOX, found {len(found or [])}:\n" \
                                          f"{server.cli('queue', 'list', check=False).stdout}\n{server.log_text()}"
    return found


def assert_failed_report(report, recipient, status, diagnostic):
    """The report is a failed DSN from MAILER-DAEMON to alice for `recipient`, with `status` (a prefix such as
    "5.1.1" or "5."), and `diagnostic` in its Diagnostic-Code."""
    assert report.report_type == "delivery-status", report.text
    assert str(report.message["From"]).lower().endswith("mailer-daemon@mx.example.test") or \
        "<mailer-daemon@mx.example.test>" in str(report.message["From"]).lower(), report.message["From"]
    assert ALICE in str(report.message["To"]).lower()
    assert "mx.example.test" in report.per_message.get("reporting-mta", ""), report.text
    fields = report.recipient(recipient)
    assert fields.get("action") == "failed", fields
    assert fields.get("status", "").startswith(status), fields
    assert diagnostic in fields.get("diagnostic-code", ""), fields
    return fields


def queue_entries(server):
    """`tern queue list` parsed: [{"id", "line", "recipients": [indented lines]}], [] when it says the queue is
    empty. An entry's line starts with its id and names its sender in angle brackets; its recipients follow,
    indented, each with its status."""
    output = server.cli("queue", "list").stdout
    entries = []
    for line in output.splitlines():
        match = re.match(r"^(\d+)\s.*<[^<>]*>", line)
        if match:
            entries.append({"id": match.group(1), "line": line, "recipients": []})
        elif line[:1].isspace() and line.strip() and entries:
            entries[-1]["recipients"].append(line.strip())
    if not entries:
        assert "queue is empty" in output.lower(), output
    return entries


def recipient_line(server, address):
    """The `queue list` line of one recipient, or None when no entry has it."""
    for entry in queue_entries(server):
        for line in entry["recipients"]:
            if address in line.lower():
                return line
    return None


def status_line(server, address, status):
    """The recipient's `queue list` line when it says `status`, else None."""
    line = recipient_line(server, address)
    return line if line and status in line.lower() else None


def entry_of(server, address):
    for entry in queue_entries(server):
        if any(address in line.lower() for line in entry["recipients"]):
            return entry
    return None


def wait_queue_empty(server, timeout=DELIVERY_TIMEOUT):
    assert wait_until(lambda: queue_entries(server) == [], timeout), \
        f"the queue did not empty:\n{server.cli('queue', 'list').stdout}\n{server.log_text()}"


def stays(condition, seconds):
    """True when `condition` holds all along `seconds` (to see that something does not happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(0.2)
    return condition()


@pytest.fixture
def running_peers():
    """Stops, at the end of the test, every peer the test registers (in reverse order)."""
    started = []
    yield started.append
    for peer in reversed(started):
        try:
            peer.stop()
        except Exception as error:  # one peer's trouble must not leave the others running
            print(f"stopping {peer!r}: {error}")


# --- MX delivery -----------------------------------------------------------------------------------------------

def test_when_the_primary_mx_is_down_the_secondary_takes_the_mail(tmp_path, running_peers):
    port = free_port_on([MX1, MX2])
    dns = DnsServer(tmp_path, mx_zone("d1.test", [(10, MX1), (20, MX2)]))
    running_peers(dns)
    secondary = tern_peer(tmp_path / "mx2", MX2, port, domains=["d1.test"], users={CAROL: CAROL_PASSWORD})
    running_peers(secondary)
    sender = sending_server(tmp_path, dns, port)
    running_peers(sender)

    assert submit(sender, [CAROL], message("over the secondary")) == {}

    wait_for_mail(secondary, CAROL, CAROL_PASSWORD, ["over the secondary"])
    wait_queue_empty(sender)
    assert reports(sender) == []


def test_an_mx_host_with_only_an_ipv6_address_gets_the_mail(tmp_path, running_peers):
    port = free_port_on(["::1"])
    dns = DnsServer(tmp_path, {"d6.test": [{"type": "MX", "pref": 10, "host": "mx.d6.test"}],
                               "mx.d6.test": [{"type": "AAAA", "address": "::1"}]})
    running_peers(dns)
    sink = SmtpSink(tmp_path, "::1", port)
    running_peers(sink)
    sender = sending_server(tmp_path, dns, port)
    running_peers(sender)

    assert submit(sender, ["erin@d6.test"], message("over IPv6", to="erin@d6.test")) == {}

    assert wait_until(lambda: sink.messages(), DELIVERY_TIMEOUT), sender.log_text()
    assert "Subject: over IPv6" in sink.messages()[0]
    wait_queue_empty(sender)
    assert "mx.d6.test[::1]" in sender.log_text()


def test_a_domain_without_mx_gets_its_mail_at_its_own_address(tmp_path, running_peers):
    port = free_port_on([MX3])
    dns = DnsServer(tmp_path, {"plain.test": [{"type": "A", "address": MX3}]})
    running_peers(dns)
    sink = SmtpSink(tmp_path, MX3, port)
    running_peers(sink)
    sender = sending_server(tmp_path, dns, port)
    running_peers(sender)

    assert submit(sender, ["fay@plain.test"], message("no MX here", to="fay@plain.test")) == {}

    assert wait_until(lambda: sink.messages(), DELIVERY_TIMEOUT), sender.log_text()
    assert "Subject: no MX here" in sink.messages()[0]
    assert "MX plain.test" in dns.queries() and "A plain.test" in dns.queries()
    wait_queue_empty(sender)


def test_tls_required_for_a_domain_defers_at_a_host_without_starttls(tmp_path, running_peers):
    port = free_port_on([MX1])
    dns = DnsServer(tmp_path, mx_zone("d1.test", [(10, MX1)]))
    running_peers(dns)
    sink = SmtpSink(tmp_path, MX1, port)  # smtp-sink never offers STARTTLS
    running_peers(sink)
    sender = sending_server(tmp_path, dns, port, routes=[{"domains": ["d1.test"], "via": "mx", "tls": "starttls"}])
    running_peers(sender)

    assert submit(sender, [CAROL], message("only over TLS")) == {}

    line = wait_until(lambda: status_line(sender, CAROL, "deferred"), DELIVERY_TIMEOUT)
    assert line and "TLS is required" in line, sender.cli("queue", "list").stdout
    assert sink.messages() == []


def test_with_every_mx_down_the_message_waits_deferred_and_goes_when_one_comes_back(tmp_path, running_peers):
    port = free_port_on([MX1, MX2])
    dns = DnsServer(tmp_path, mx_zone("d1.test", [(10, MX1), (20, MX2)]))
    running_peers(dns)
    sender = sending_server(tmp_path, dns, port)
    running_peers(sender)

    assert submit(sender, [CAROL], message("patience")) == {}

    line = wait_until(lambda: status_line(sender, CAROL, "deferred"), DELIVERY_TIMEOUT)
    assert line, f"never listed as deferred:\n{sender.cli('queue', 'list').stdout}"
    # The reason of the last attempt follows the status.
    assert re.search(r"deferred\W+\w", line), line
    (entry,) = queue_entries(sender)
    assert ALICE in entry["line"].lower()
    attempts = int(re.search(r"(\d+) attempts?", entry["line"]).group(1))
    assert attempts >= 1, entry

    # What the queue knows of each recipient survives a restart.
    sender.stop()
    (kept,) = queue_entries(sender)
    assert kept["id"] == entry["id"] and int(re.search(r"(\d+) attempts?", kept["line"]).group(1)) >= attempts
    assert status_line(sender, CAROL, "deferred"), kept
    # The secondary comes back while the sender is down: an MX found unreachable is skipped for a minute, so
    # a sender that tried both before the secondary listened would wait past this test's patience.
    secondary = tern_peer(tmp_path / "mx2", MX2, port, domains=["d1.test"], users={CAROL: CAROL_PASSWORD})
    running_peers(secondary)
    sender.start()

    wait_for_mail(secondary, CAROL, CAROL_PASSWORD, ["patience"])
    wait_queue_empty(sender)
    assert reports(sender) == []


def test_as_a_backup_mx_only_better_hosts_are_tried_and_as_the_best_one_the_mail_waits(tmp_path, running_peers):
    # d1.test: mx1 (down) is better than this server; d2.test: this server is the best MX, a misconfiguration.
    port = free_port_on([MX1])
    zone = {**mx_zone("d1.test", [(10, MX1)]),
            "d2.test": [{"type": "MX", "pref": 10, "host": "mx.example.test"}],
            "mx.example.test": [{"type": "A", "address": "127.0.0.1"}]}
    zone["d1.test"].append({"type": "MX", "pref": 20, "host": "mx.example.test"})
    dns = DnsServer(tmp_path, zone)
    running_peers(dns)
    sender = sending_server(tmp_path, dns, port)
    running_peers(sender)

    assert submit(sender, [CAROL, "dan@d2.test"], message("am I the backup")) == {}

    assert wait_until(lambda: status_line(sender, CAROL, "deferred") and status_line(sender, "dan@d2.test", "deferred"),
                      DELIVERY_TIMEOUT), sender.cli("queue", "list").stdout
    assert "loops back to myself" in status_line(sender, "dan@d2.test", "deferred")
    assert MX1 in status_line(sender, CAROL, "deferred")  # the better host was the one tried
    assert "A mx.example.test" not in dns.queries()  # never a connection to itself
    assert reports(sender) == []


def test_a_550_from_the_peer_bounces_to_the_local_sender_with_the_peers_reply(tmp_path, running_peers):
    port = free_port_on([MX1])
    dns = DnsServer(tmp_path, mx_zone("d1.test", [(10, MX1)]))
    running_peers(dns)
    postfix = PostfixPeer(tmp_path, MX1, port, ["d1.test"], [CAROL])
    running_peers(postfix)
    sender = sending_server(tmp_path, dns, port)
    running_peers(sender)

    assert submit(sender, ["nobody@d1.test"], message("to nobody", to="nobody@d1.test",
                                                      body="The whole body comes back.\r\n")) == {}
    assert submit(sender, ["nemo@d1.test"], message("headers only", to="nemo@d1.test", body="Not this body.\r\n"),
                  mail_options=["RET=HDRS"]) == {}

    found = wait_for_reports(sender, 2)
    by_recipient = {report.recipients[0]["final-recipient"].split(";")[-1].strip().lower(): report
                    for report in found if report.recipients}
    full, headers = by_recipient["nobody@d1.test"], by_recipient["nemo@d1.test"]
    for report, address in ((full, "nobody@d1.test"), (headers, "nemo@d1.test")):
        fields = assert_failed_report(report, address, "5.1.1", "User unknown in virtual mailbox table")
        assert re.match(r"smtp;\s*550 5\.1\.1", fields["diagnostic-code"]), fields
        assert "remote-mta" in fields, fields
        assert report.explanation.strip(), "the report explains itself in a text/plain part first"
    assert full.original_type == "message/rfc822"
    assert "Subject: to nobody" in full.text and "The whole body comes back." in full.text
    assert headers.original_type == "text/rfc822-headers"
    assert "Subject: headers only" in headers.text and "Not this body." not in headers.text

    wait_queue_empty(sender)
    assert postfix.maildir_messages(CAROL) == []


def test_a_null_mx_domain_bounces_at_once_5_1_10_without_an_address_lookup(tmp_path, running_peers):
    zone = {"nomail.test": [{"type": "MX", "pref": 0, "host": "."}, {"type": "A", "address": MX1}]}
    dns = DnsServer(tmp_path, zone)
    running_peers(dns)
    sender = sending_server(tmp_path, dns, free_port_on([MX1]), retry_after=[300])  # no second try in this test
    running_peers(sender)

    assert submit(sender, ["anyone@nomail.test"], message("to a null mx", to="anyone@nomail.test")) == {}

    (report,) = wait_for_reports(sender)
    assert_failed_report(report, "anyone@nomail.test", "5.1.10", "")
    wait_queue_empty(sender)
    asked = dns.queries()
    assert "MX nomail.test" in asked
    assert not [line for line in asked if line in ("A nomail.test", "AAAA nomail.test")], asked


def test_an_unknown_domain_bounces_5_1_2_and_a_servfail_is_retried(tmp_path, running_peers):
    port = free_port_on([MX1])
    zone = {"flaky.test": [{"type": "SERVFAIL"}]}
    dns = DnsServer(tmp_path, zone)
    running_peers(dns)
    sink = SmtpSink(tmp_path, MX1, port)
    running_peers(sink)
    sender = sending_server(tmp_path, dns, port)
    running_peers(sender)

    assert submit(sender, ["someone@nowhere.test"], message("to nowhere", to="someone@nowhere.test")) == {}
    (report,) = wait_for_reports(sender)
    assert_failed_report(report, "someone@nowhere.test", "5.1.2", "")

    assert submit(sender, ["someone@flaky.test"], message("through a servfail", to="someone@flaky.test")) == {}
    assert wait_until(lambda: status_line(sender, "someone@flaky.test", "deferred"), DELIVERY_TIMEOUT), \
        sender.cli("queue", "list").stdout
    dns.set_zone({**zone, **mx_zone("flaky.test", [(10, MX1)])})
    assert wait_until(lambda: subjects(m["message"].encode() for m in sink.transactions()) == ["through a servfail"],
                      DELIVERY_TIMEOUT), sender.log_text()
    wait_queue_empty(sender)
    assert len(reports(sender)) == 1


def test_postfix_as_mx_gets_the_messages_with_their_headers_intact(tmp_path, running_peers):
    port = free_port_on([MX1])
    dns = DnsServer(tmp_path, mx_zone("d1.test", [(10, MX1)]))
    running_peers(dns)
    postfix = PostfixPeer(tmp_path, MX1, port, ["d1.test"], [CAROL, "dave@d1.test"])
    running_peers(postfix)
    sender = sending_server(tmp_path, dns, port)
    running_peers(sender)

    first = message("first of two", body="One.\r\n.A line that starts with a dot.\r\n")
    first = first.replace("MIME-Version", "X-Custom: kept as it is\r\nMIME-Version")
    second = message("second of two", to="dave@d1.test")
    with smtplib.SMTP("127.0.0.1", sender.port("submission"), timeout=30) as client:
        client.starttls(context=insecure_context())
        client.login(ALICE, ALICE_PASSWORD)
        assert client.sendmail(ALICE, [CAROL], first) == {}
        assert client.sendmail(ALICE, ["dave@d1.test"], second) == {}

    assert wait_until(lambda: len(postfix.maildir_messages(CAROL)) == 1 and len(postfix.maildir_messages(
        "dave@d1.test")) == 1, DELIVERY_TIMEOUT), f"{sender.log_text()}\n{postfix.log_text()}"
    (delivered,) = postfix.maildir_messages(CAROL)
    original = first.replace("\r\n", "\n")
    head, body = original.split("\n\n", 1)
    assert head in delivered, delivered  # every header line, in order, unchanged
    assert delivered.endswith("\n\n" + body), delivered  # the body byte for byte (dot-stuffing undone)
    assert "Return-Path: <alice@example.test>" in delivered  # the envelope sender went along
    assert "Subject: second of two" in postfix.maildir_messages("dave@d1.test")[0]
    wait_queue_empty(sender)


def test_messages_to_one_host_share_one_connection_within_the_concurrency_bound(tmp_path, running_peers):
    port = free_port_on([MX1])
    dns = DnsServer(tmp_path, mx_zone("d1.test", [(10, MX1)]))
    running_peers(dns)
    postfix = PostfixPeer(tmp_path, MX1, port, ["d1.test"], [CAROL])
    running_peers(postfix)
    sender = sending_server(tmp_path, dns, port, max_connections_per_host=1)
    running_peers(sender)

    with smtplib.SMTP("127.0.0.1", sender.port("submission"), timeout=30) as client:
        client.starttls(context=insecure_context())
        client.login(ALICE, ALICE_PASSWORD)
        for number in range(6):
            assert client.sendmail(ALICE, [CAROL], message(f"one of six {number}")) == {}

    assert wait_until(lambda: len(postfix.maildir_messages(CAROL)) == 6, DELIVERY_TIMEOUT), \
        f"{sender.log_text()}\n{postfix.log_text()}"
    # Sessions that sent mail (the peer's readiness probe sends none), each logged when the idle connection
    # closes. Messages share them: one session carries all six unless the submissions came so slowly (a loaded
    # machine) that the idle connection closed in between.
    def sessions():
        found = [int(mail) for mail in re.findall(r"disconnect from .* mail=(\d+)", postfix.log_text())]
        return found if sum(found) == 6 else None

    found = wait_until(sessions, DELIVERY_TIMEOUT)
    assert found and max(found) > 1, postfix.log_text()


def test_8bit_mail_to_a_peer_without_8bitmime_bounces_5_6_3(tmp_path, running_peers):
    port = free_port_on([MX1])
    dns = DnsServer(tmp_path, mx_zone("d1.test", [(10, MX1)]))
    running_peers(dns)
    sink = SmtpSink(tmp_path, MX1, port, extra_args=NO_8BITMIME)
    running_peers(sink)
    sender = sending_server(tmp_path, dns, port)
    running_peers(sender)

    eight_bit = message("eight bits in the body", body="D\u00e9j\u00e0 vu, cr\u00e8me br\u00fbl\u00e9e.\r\n").encode()
    assert submit(sender, [CAROL], eight_bit, mail_options=["BODY=8BITMIME"]) == {}

    (report,) = wait_for_reports(sender)
    fields = assert_failed_report(report, CAROL, "5.6.3", "")
    assert "8BITMIME" in fields.get("diagnostic-code", "") + report.explanation, report.text
    assert sink.messages() == []
    wait_queue_empty(sender)


def test_a_message_that_needs_smtputf8_bounces_5_6_7_at_a_peer_without_it(tmp_path, running_peers):
    port = free_port_on([MX1])
    dns = DnsServer(tmp_path, mx_zone("d1.test", [(10, MX1)]))
    running_peers(dns)
    sink = SmtpSink(tmp_path, MX1, port)  # 8BITMIME, no SMTPUTF8
    running_peers(sink)
    sender = sending_server(tmp_path, dns, port)
    running_peers(sender)

    international = message("Gr\u00fc\u00dfe aus K\u00f6ln", body="Sch\u00f6n.\r\n").encode()
    assert submit(sender, [CAROL], international, mail_options=["SMTPUTF8", "BODY=8BITMIME"]) == {}

    (report,) = wait_for_reports(sender)
    fields = assert_failed_report(report, CAROL, "5.6.7", "")
    assert "SMTPUTF8" in fields.get("diagnostic-code", ""), report.text
    assert sink.messages() == []
    wait_queue_empty(sender)


@pytest.mark.parametrize("lacking", [NO_ESMTP, NO_PIPELINING], ids=["helo-only", "no-pipelining"])
def test_a_peer_without_esmtp_or_pipelining_still_gets_the_mail(tmp_path, running_peers, lacking):
    port = free_port_on([MX1])
    dns = DnsServer(tmp_path, mx_zone("d1.test", [(10, MX1)]))
    running_peers(dns)
    sink = SmtpSink(tmp_path, MX1, port, extra_args=lacking)
    running_peers(sink)
    sender = sending_server(tmp_path, dns, port)
    running_peers(sender)

    assert submit(sender, [CAROL, "dave@d1.test"], message("plain and simple")) == {}

    assert wait_until(lambda: len(sink.transactions()) == 1, DELIVERY_TIMEOUT), sender.log_text()
    (received,) = sink.transactions()
    assert [rcpt.split()[0] for rcpt in received["rcpts"]] == ["<carol@d1.test>", "<dave@d1.test>"]
    assert received["mail"].split()[0] == "<alice@example.test>"
    assert "Subject: plain and simple" in received["message"]
    if lacking == NO_ESMTP:
        assert "X-Client-Proto: SMTP\n" in sink.messages()[0]  # HELO, not EHLO
    wait_queue_empty(sender)
    assert reports(sender) == []


def test_dsn_parameters_go_on_to_a_peer_that_offers_dsn_and_a_relayed_report_comes_from_one_that_does_not(
        tmp_path, running_peers):
    port = free_port_on([MX1, MX3])
    dns = DnsServer(tmp_path, {**mx_zone("d1.test", [(10, MX1)]), **mx_zone("d2.test", [(10, MX3)])})
    running_peers(dns)
    with_dsn = SmtpSink(tmp_path, MX1, port)
    running_peers(with_dsn)
    without_dsn = SmtpSink(tmp_path, MX3, port, extra_args=NO_DSN)
    running_peers(without_dsn)
    sender = sending_server(tmp_path, dns, port)
    running_peers(sender)

    for recipient in (CAROL, "dave@d2.test"):
        assert submit(sender, [recipient], message("tell me", to=recipient), mail_options=["RET=HDRS", "ENVID=env-42"],
                      rcpt_options=["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;first.{recipient}"]) == {}

    assert wait_until(lambda: with_dsn.transactions() and without_dsn.transactions(), DELIVERY_TIMEOUT), \
        sender.log_text()
    (passed,) = with_dsn.transactions()
    assert "RET=HDRS" in passed["mail"] and "ENVID=env-42" in passed["mail"], passed["mail"]
    (rcpt,) = passed["rcpts"]
    assert "NOTIFY=SUCCESS,FAILURE" in rcpt and f"ORCPT=rfc822;first.{CAROL}" in rcpt, rcpt
    (dropped,) = without_dsn.transactions()
    assert "RET=" not in dropped["mail"] and "ENVID=" not in dropped["mail"], dropped["mail"]
    assert "NOTIFY=" not in dropped["rcpts"][0] and "ORCPT=" not in dropped["rcpts"][0], dropped["rcpts"]

    # The DSN-less peer cannot report success: the sender hears "relayed" from here, and only about that one.
    (report,) = wait_for_reports(sender)
    fields = report.recipient("dave@d2.test")
    assert fields.get("action") == "relayed", report.text
    assert "first.dave@d2.test" in fields.get("original-recipient", ""), fields
    assert report.per_message.get("original-envelope-id") == "env-42", report.per_message
    assert report.original_type == "text/rfc822-headers"
    assert stays(lambda: len(reports(sender)) == 1, 1.5)
    wait_queue_empty(sender)


def test_a_message_larger_than_the_peers_size_bounces_5_3_4(tmp_path, running_peers):
    port = free_port_on([MX1])
    dns = DnsServer(tmp_path, mx_zone("d1.test", [(10, MX1)]))
    running_peers(dns)
    small = tern_peer(tmp_path / "mx1", MX1, port, domains=["d1.test"], users={CAROL: CAROL_PASSWORD},
                      extra="[plugin.smtp]\nmax_message_size = 1024\n")
    running_peers(small)
    sender = sending_server(tmp_path, dns, port)
    running_peers(sender)

    assert submit(sender, [CAROL], message("too big", body=("0123456789abcdef" * 4 + "\r\n") * 50)) == {}

    (report,) = wait_for_reports(sender)
    assert_failed_report(report, CAROL, "5.3.4", "")
    assert mailbox(small, CAROL, CAROL_PASSWORD) == []
    wait_queue_empty(sender)


def test_mx_answers_are_cached_for_their_ttl(tmp_path, running_peers):
    port = free_port_on([MX1])
    dns = DnsServer(tmp_path, mx_zone("d1.test", [(10, MX1)], ttl=300))
    running_peers(dns)
    sink = SmtpSink(tmp_path, MX1, port)
    running_peers(sink)
    sender = sending_server(tmp_path, dns, port)
    running_peers(sender)

    assert submit(sender, [CAROL], message("first")) == {}
    assert wait_until(lambda: len(sink.messages()) == 1, DELIVERY_TIMEOUT), sender.log_text()
    # Counted after the first delivery: a resolver resends a query that a slow server has not answered yet.
    asked = dns.queries().count("MX d1.test")
    assert asked >= 1, dns.queries()
    assert submit(sender, ["dave@d1.test"], message("second", to="dave@d1.test")) == {}
    assert wait_until(lambda: len(sink.messages()) == 2, DELIVERY_TIMEOUT), sender.log_text()

    assert dns.queries().count("MX d1.test") == asked, dns.queries()


def test_no_report_goes_to_the_null_sender(tmp_path, running_peers):
    port = free_port_on([MX1])
    dns = DnsServer(tmp_path, mx_zone("d1.test", [(10, MX1)]))
    running_peers(dns)
    sink = SmtpSink(tmp_path, MX1, port, extra_args=reject_rcpt())
    running_peers(sink)
    sender = sending_server(tmp_path, dns, port, extra='[plugin.smtp]\nrelay_networks = ["127.0.0.1"]\n')
    running_peers(sender)

    with smtplib.SMTP("127.0.0.1", sender.port("smtp"), timeout=30) as client:
        assert client.sendmail("<>", [CAROL], message("a bounce of a bounce")) == {}

    wait_queue_empty(sender)
    assert stays(lambda: queue_entries(sender) == [], 2), sender.cli("queue", "list").stdout
    assert sink.messages() == []


# --- SMTP client features -------------------------------------------------------------------------------------

def test_a_smarthost_with_auth_and_starttls_takes_mail_for_any_domain_with_its_dsn_parameters(
        tmp_path, running_peers):
    dns = DnsServer(tmp_path, {})
    running_peers(dns)
    # The smarthost: another Tern whose submission port needs STARTTLS then AUTH; it keeps what it gets (a hold
    # route) so that its queue can be read.
    smarthost = tern_peer(
        tmp_path / "smarthost", MX2, free_port_on([MX2]), domains=["smarthost.test"],
        users={"relay@smarthost.test": "relay-secret"},
        extra="[plugin.smtp]\nallow_any_sender = true\n"
              + outbound_config(dns, routes=[{"domains": ["*"], "via": "hold"}]))
    running_peers(smarthost)
    route = {"domains": ["*"], "via": "relay", "host": MX2, "port": smarthost.port("submission"),
             "tls": "starttls", "verify": False, "user": "relay@smarthost.test", "password": "relay-secret"}
    sender = sending_server(tmp_path, dns, routes=[route])
    running_peers(sender)

    assert submit(sender, ["friend@ext1.test", "pal@ext2.test"], message("via the smarthost", to="friend@ext1.test"),
                  rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;original@ext1.test"]) == {}

    assert wait_until(lambda: recipient_line(smarthost, "friend@ext1.test") and recipient_line(
        smarthost, "pal@ext2.test"), DELIVERY_TIMEOUT), f"{sender.log_text()}\n{smarthost.log_text()}"
    entries = queue_entries(smarthost)
    assert entries and all(ALICE in entry["line"].lower() for entry in entries), entries  # the sender kept
    shown = smarthost.cli("queue", "show", entry_of(smarthost, "friend@ext1.test")["id"]).stdout
    assert "SUCCESS" in shown.upper() and "FAILURE" in shown.upper(), shown
    assert "original@ext1.test" in shown.lower(), shown
    assert "Subject: via the smarthost" in shown
    wait_queue_empty(sender)
    assert not [line for line in dns.queries() if line.startswith("MX ")], dns.queries()  # a relay route asks none


def test_a_relay_without_starttls_never_gets_the_password(tmp_path, running_peers):
    dns = DnsServer(tmp_path, {})
    running_peers(dns)
    sink = SmtpSink(tmp_path, "127.0.0.1")  # offers AUTH, but no STARTTLS
    running_peers(sink)
    route = {"domains": ["*"], "via": "relay", "host": "127.0.0.1", "port": sink.port, "tls": "opportunistic",
             "user": "me@isp.test", "password": "not-in-clear"}
    sender = sending_server(tmp_path, dns, routes=[route])
    running_peers(sender)

    assert submit(sender, ["friend@ext1.test"], message("keep it secret", to="friend@ext1.test")) == {}

    line = wait_until(lambda: status_line(sender, "friend@ext1.test", "deferred"), DELIVERY_TIMEOUT)
    assert line and "STARTTLS" in line, sender.cli("queue", "list").stdout
    assert sink.messages() == []


def test_a_pipe_route_retries_on_exit_75_delivers_on_0_and_bounces_on_1_with_the_programs_words(
        tmp_path, running_peers):
    spool = tmp_path / "pipe"
    spool.mkdir()
    (spool / "exit").write_text("75\n")
    script = tmp_path / "deliver.sh"
    script.write_text(f"""#!/bin/sh
# Keeps each message it is given, with its environment, and exits with the code in {spool}/exit.
n=$(date +%s%N)
cat > "{spool}/message.$n"
env > "{spool}/env.$n"
echo attempt >> "{spool}/attempts"
code=$(cat "{spool}/exit")
[ "$code" = 0 ] || echo "mailbox $RECIPIENT is closed today"
echo "a second line the bounce leaves out"
exit $code
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    dns = DnsServer(tmp_path, {})
    running_peers(dns)
    sender = sending_server(tmp_path, dns, routes=[{"domains": ["pipe.test"], "via": "pipe",
                                                    "command": [str(script)], "timeout": 20}])
    running_peers(sender)

    def attempts():
        path = spool / "attempts"
        return len(path.read_text().splitlines()) if path.exists() else 0

    assert submit(sender, ["box@pipe.test"], message("through a pipe", to="box@pipe.test"),
                  rcpt_options=["ORCPT=rfc822;Box.Original@pipe.test"]) == {}
    assert wait_until(lambda: attempts() >= 2, DELIVERY_TIMEOUT), sender.log_text()  # 75: tried again
    assert status_line(sender, "box@pipe.test", "deferred"), sender.cli("queue", "list").stdout
    (spool / "exit").write_text("0\n")
    wait_queue_empty(sender)
    tries = attempts()
    newest = max(spool.glob("env.*"), key=lambda path: path.name)
    environment = dict(line.split("=", 1) for line in newest.read_text().splitlines() if "=" in line)
    assert environment["SENDER"] == ALICE
    assert environment["RECIPIENT"] == "box@pipe.test"
    assert "box.original@pipe.test" in environment["ORIGINAL_RECIPIENT"].lower()
    given = (spool / ("message." + newest.name.split(".", 1)[1])).read_bytes()
    assert b"Subject: through a pipe" in given and b"Hello from alice." in given
    assert reports(sender) == []

    (spool / "exit").write_text("1\n")
    assert submit(sender, ["shut@pipe.test"], message("to a closed box", to="shut@pipe.test")) == {}
    (report,) = wait_for_reports(sender)
    fields = assert_failed_report(report, "shut@pipe.test", "5.", "mailbox shut@pipe.test is closed today")
    assert "a second line" not in fields["diagnostic-code"]
    assert attempts() == tries + 1  # a failure is not retried
    wait_queue_empty(sender)


# --- the queue and its commands --------------------------------------------------------------------------------

def test_a_hold_route_keeps_mail_until_queue_flush_of_its_domain(tmp_path, running_peers):
    port = free_port_on([MX1])
    dns = DnsServer(tmp_path, mx_zone("d1.test", [(10, MX1)]))
    running_peers(dns)
    postfix = PostfixPeer(tmp_path, MX1, port, ["d1.test"], [CAROL])
    running_peers(postfix)
    sender = sending_server(tmp_path, dns, port, routes=[{"domains": ["d1.test"], "via": "hold"}])
    running_peers(sender)

    assert submit(sender, [CAROL], message("held for a flush")) == {}

    assert wait_until(lambda: status_line(sender, CAROL, "held"), DELIVERY_TIMEOUT), sender.cli("queue", "list").stdout
    assert stays(lambda: postfix.maildir_messages(CAROL) == [] and status_line(sender, CAROL, "held"),
                 2.5)  # retries are 1 s apart: a held message would have gone by now
    assert "MX d1.test" not in dns.queries()

    # The flush releases the entry and tries it at once; the running server, which sees it due as well, may
    # claim it first (the lease keeps them from both sending it). Either way it goes now, once.
    flushed = sender.cli("queue", "flush", "d1.test")
    assert "1 message due now" in flushed.stdout, flushed.stdout
    assert wait_until(lambda: postfix.maildir_messages(CAROL), DELIVERY_TIMEOUT), \
        f"{sender.log_text()}\n{postfix.log_text()}"
    assert "Subject: held for a flush" in postfix.maildir_messages(CAROL)[0]
    wait_queue_empty(sender)
    assert len(postfix.maildir_messages(CAROL)) == 1


def test_queue_hold_release_remove_show_summary_and_an_unknown_id(tmp_path, running_peers):
    port = free_port_on([MX1, MX3])
    zone = {**mx_zone("d1.test", [(10, MX1)]), **mx_zone("d2.test", [(10, MX3)])}
    dns = DnsServer(tmp_path, zone)
    running_peers(dns)
    sender = sending_server(tmp_path, dns, port)
    running_peers(sender)

    # Nothing listens yet: both messages wait, deferred.
    assert submit(sender, [CAROL], message("kept then released")) == {}
    assert submit(sender, ["dave@d2.test"], message("removed unsent", to="dave@d2.test")) == {}
    assert wait_until(lambda: status_line(sender, CAROL, "deferred")
                      and status_line(sender, "dave@d2.test", "deferred"), DELIVERY_TIMEOUT), \
        sender.cli("queue", "list").stdout
    kept, removed = entry_of(sender, CAROL)["id"], entry_of(sender, "dave@d2.test")["id"]

    shown = sender.cli("queue", "show", kept).stdout
    assert ALICE in shown.lower() and CAROL in shown.lower() and "deferred" in shown.lower(), shown
    assert "Subject: kept then released" in shown and "Hello from alice." in shown, shown
    summary = sender.cli("queue", "summary").stdout
    assert "d1.test" in summary and "d2.test" in summary, summary

    assert sender.cli("queue", "hold", kept).returncode == 0
    held = re.search(r"\b(held|on hold)\b", entry_of(sender, CAROL)["line"].lower())
    assert held or status_line(sender, CAROL, "held"), sender.cli("queue", "list").stdout
    sink = SmtpSink(tmp_path, MX1, port)
    running_peers(sink)
    assert stays(lambda: sink.messages() == [], 2.5), "a held message was delivered"

    assert sender.cli("queue", "release", kept).returncode == 0
    assert wait_until(lambda: len(sink.messages()) == 1, DELIVERY_TIMEOUT), sender.log_text()
    assert "Subject: kept then released" in sink.messages()[0]

    assert sender.cli("queue", "remove", removed).returncode == 0
    wait_queue_empty(sender, timeout=10)

    for command in ("show", "hold", "release", "remove"):
        result = sender.cli("queue", command, "424242", check=False)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "424242" in result.stdout + result.stderr, (command, result.stdout, result.stderr)
    assert stays(lambda: reports(sender) == [], 1.5), "removing a message sends no report"


# --- giving up ---------------------------------------------------------------------------------------------------

BUSY = "450 4.2.0 Mailbox busy, come back later"


def test_a_message_deferred_past_expire_after_bounces_naming_the_last_reason(tmp_path, running_peers):
    port = free_port_on([MX1])
    dns = DnsServer(tmp_path, mx_zone("d1.test", [(10, MX1)]))
    running_peers(dns)
    busy = SmtpSink(tmp_path, MX1, port, extra_args=("-r", "RCPT", "-b", BUSY))
    running_peers(busy)
    sender = sending_server(tmp_path, dns, port, expire_after=3)
    running_peers(sender)

    assert submit(sender, [CAROL], message("never gets there")) == {}

    (report,) = wait_for_reports(sender)
    fields = report.recipient(CAROL)
    assert fields.get("action") == "failed", fields
    assert "Mailbox busy, come back later" in fields.get("diagnostic-code", ""), fields
    wait_queue_empty(sender)


def test_a_delay_notice_comes_once_before_the_bounce(tmp_path, running_peers):
    port = free_port_on([MX1])
    dns = DnsServer(tmp_path, mx_zone("d1.test", [(10, MX1)]))
    running_peers(dns)
    busy = SmtpSink(tmp_path, MX1, port, extra_args=("-r", "RCPT", "-b", BUSY))
    running_peers(busy)
    # The notice after 1 s, the bounce after 15: time between them to read the notice on a loaded machine.
    sender = sending_server(tmp_path, dns, port, expire_after=15, delay_warning_after=1)
    running_peers(sender)

    assert submit(sender, [CAROL], message("slow going")) == {}

    (notice,) = wait_for_reports(sender)
    assert notice.report_type == "delivery-status"
    assert notice.recipient(CAROL).get("action") == "delayed", notice.text
    assert entry_of(sender, CAROL), "a delay notice leaves the message queued"

    notice, failure = wait_for_reports(sender, 2)
    assert notice.recipient(CAROL).get("action") == "delayed"
    assert failure.recipient(CAROL).get("action") == "failed", failure.text
    wait_queue_empty(sender)
    assert len(reports(sender)) == 2  # one delay notice only, though the message was tried many times


def test_a_route_hook_chooses_a_named_route_or_bounces_a_recipient_with_its_own_reply(tmp_path, running_peers):
    # The hooks fixture plugin: at route, sink-me@ goes by the route named "sink", bounce-me@ is refused.
    dns = DnsServer(tmp_path, {})
    running_peers(dns)
    sink = SmtpSink(tmp_path, "127.0.0.1")
    running_peers(sink)
    sender = sending_server(tmp_path, dns, plugin_dirs=[PLUGIN_DIR, os.path.join(FIXTURE_PLUGINS, "hooks")],
                            routes=[{"name": "sink", "domains": ["sink.test"], "via": "relay", "host": "127.0.0.1",
                                     "port": sink.port, "tls": "none"}])
    running_peers(sender)

    assert submit(sender, ["sink-me@elsewhere.test", "bounce-me@elsewhere.test"],
                  message("steered", to="sink-me@elsewhere.test")) == {}

    (report,) = wait_for_reports(sender)
    assert_failed_report(report, "bounce-me@elsewhere.test", "5.7.1", "Refused by a route hook")
    assert wait_until(lambda: sink.messages(), DELIVERY_TIMEOUT), sender.log_text()
    assert "Subject: steered" in sink.messages()[0]
    assert not [line for line in dns.queries() if "elsewhere.test" in line]  # no MX lookup: the hook chose
    wait_queue_empty(sender)
