"""The dnsbl plugin end to end: clients on two loopback addresses, block lists served by a loopback DNS server
(python3-dnslib), and the SMTP replies and stored messages that follow."""

import smtplib

import pytest

from conftest import ALICE, Tern
from peers import DnsServer

LISTED = "127.0.0.1"  # the client addresses the tests send from
CLEAN = "127.0.0.2"

ZONE = {
    # 127.0.0.1 is on both address lists, with a reason on the first; 127.0.0.2 on none.
    "1.0.0.127.bl.test": [{"type": "A", "address": "127.0.0.2"}, {"type": "TXT", "text": "listed for testing"}],
    "1.0.0.127.minor.test": [{"type": "A", "address": "127.0.0.4"}],
    # A list that refuses to answer this resolver says so with 127.255.255.x: that lists nobody.
    "1.0.0.127.refusing.test": [{"type": "A", "address": "127.255.255.254"}],
    "1.0.0.127.down.test": [{"type": "SERVFAIL"}],
    "2.0.0.127.down.test": [{"type": "SERVFAIL"}],
    # A domain list naming a HELO name.
    "spammy-helo.test.dbl.test": [{"type": "A", "address": "127.0.1.2"}],
}


@pytest.fixture
def dns(tmp_path):
    server = DnsServer(tmp_path, ZONE)
    yield server
    server.stop()


def start(tmp_path, dns, settings, lists):
    text = "[plugin.dnsbl]\nallow = []\n" + "".join(f"{line}\n" for line in settings)
    for zone, weight, checks in lists:
        text += f'[[plugin.dnsbl.list]]\nzone = "{zone}"\nweight = {weight}\nchecks = "{checks}"\n'
    tmp_path.mkdir(parents=True, exist_ok=True)
    server = Tern(tmp_path, extra=f"[dns]\nservers = {dns.dns_servers}\n{text}")
    server.add_users()
    return server.start()


def send(server, source, helo="client.example.test", subject="dnsbl"):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30, source_address=(source, 0)) as client:
        client.ehlo(helo)
        return client.sendmail("carol@remote.test", [ALICE], f"Subject: {subject}\r\n\r\nhello\r\n")




def test_a_listed_client_is_refused_at_mail_from_with_the_lists_reason_and_others_pass(tmp_path, dns):
    server = start(tmp_path, dns, [], [("bl.test", 1, "ip"), ("refusing.test", 1, "ip")])
    try:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            send(server, LISTED)
        assert refused.value.smtp_code == 554
        assert refused.value.smtp_error.decode() == (
            "5.7.1 Service unavailable; client [127.0.0.1] listed by bl.test: listed for testing")
        assert send(server, CLEAN) == {}
        assert len(server.messages()) == 1
    finally:
        server.stop()


def test_weights_add_up_to_the_threshold(tmp_path, dns):
    server = start(tmp_path, dns, ["threshold = 3"], [("bl.test", 2, "ip"), ("minor.test", 1, "ip")])
    try:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            send(server, LISTED)
        assert "listed by bl.test, minor.test" in refused.value.smtp_error.decode()
    finally:
        server.stop()
    server = start(tmp_path / "below", dns, ["threshold = 4"], [("bl.test", 2, "ip"), ("minor.test", 1, "ip")])
    try:
        assert send(server, LISTED) == {}
    finally:
        server.stop()


def test_an_allowed_client_is_never_checked(tmp_path, dns):
    server = start(tmp_path, dns, [], [("bl.test", 1, "ip")])
    server.stop()
    server.write_config(server.extra.replace("allow = []", 'allow = ["127.0.0.1/32"]'))
    server.start()
    try:
        assert send(server, LISTED) == {}
    finally:
        server.stop()
    assert not any("bl.test" in line for line in dns.queries())


def test_a_list_that_does_not_answer_defers_only_when_it_could_decide(tmp_path, dns):
    server = start(tmp_path, dns, [], [("down.test", 1, "ip")])
    try:
        with pytest.raises(smtplib.SMTPSenderRefused) as deferred:
            send(server, CLEAN)
        assert deferred.value.smtp_code == 451 and deferred.value.smtp_error.decode().startswith("4.7.1 ")
    finally:
        server.stop()
    # Listed by one list already over the threshold: the silent one cannot change that.
    server = start(tmp_path / "decided", dns, [], [("bl.test", 1, "ip"), ("down.test", 1, "ip")])
    try:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            send(server, LISTED)
        assert refused.value.smtp_code == 554
    finally:
        server.stop()


def test_a_domain_list_checks_the_helo_name_and_annotating_keeps_the_message(tmp_path, dns):
    server = start(tmp_path, dns, ['action = "annotate"'], [("dbl.test", 1, "domain")])
    try:
        assert send(server, CLEAN, helo="spammy-helo.test", subject="marked") == {}
        assert send(server, CLEAN, helo="fine.example.test", subject="clean") == {}
        stored = [message.decode() for message in server.messages()]
        messages = {message.split("Subject: ")[1].split("\r\n")[0]: message for message in stored}
    finally:
        server.stop()
    assert "X-Tern-DNSBL: score=1; threshold=1; listed=dbl.test" in messages["marked"]
    assert "X-Tern-DNSBL" not in messages["clean"]
    assert "A remote.test.dbl.test" in dns.queries()


def test_a_list_without_a_zone_is_a_config_error_naming_file_line_and_key(tmp_path):
    server = Tern(tmp_path, extra='[plugin.dnsbl]\n[[plugin.dnsbl.list]]\nweight = 2\n')
    result = server.cli("config", "check", check=False)
    assert result.returncode == 2
    assert "tern.toml:" in result.stderr and "zone" in result.stderr and "is required" in result.stderr
