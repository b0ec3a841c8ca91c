"""The spf plugin end to end: a client on loopback sends for domains whose SPF records a loopback DNS server
(python3-dnslib) publishes, and the stored message, the SMTP reply and the config check show the results."""

import smtplib

import pytest

from conftest import ALICE, Tern
from peers import DnsServer

ZONE = {
    "pass.test": [{"type": "TXT", "text": "v=spf1 ip4:127.0.0.0/8 -all"}],
    "fail.test": [{"type": "TXT", "text": "v=spf1 ip4:192.0.2.0/24 -all exp=why.fail.test"}],
    "why.fail.test": [{"type": "TXT", "text": "%{o} never sends from %{c}"}],
    "soft.test": [{"type": "TXT", "text": "v=spf1 include:pass-elsewhere.test ~all"}],
    "pass-elsewhere.test": [{"type": "TXT", "text": "v=spf1 ip4:192.0.2.1 -all"}],
    "broken.test": [{"type": "TXT", "text": "v=spf1 a:example.123 -all"}],
    "down.test": [{"type": "SERVFAIL"}],
}


@pytest.fixture
def dns(tmp_path):
    server = DnsServer(tmp_path, ZONE)
    yield server
    server.stop()


def start(tmp_path, dns, spf_settings):
    settings = "".join(f"{line}\n" for line in spf_settings)
    server = Tern(tmp_path, extra=f'[dns]\nservers = {dns.dns_servers}\n[plugin.spf]\n{settings}')
    server.add_users()
    return server.start()


def send(server, sender, helo="client.example.test", subject="spf"):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        client.ehlo(helo)
        return client.sendmail(sender, [ALICE], f"Subject: {subject}\r\n\r\nhello\r\n")




def received_spf(message):
    fields = [line for line in message.split("\r\n\r\n")[0].replace("\r\n ", " ").split("\r\n")
              if line.lower().startswith("received-spf:")]
    assert len(fields) == 1, message
    return fields[0]


def test_each_result_is_recorded_in_received_spf_and_the_message_kept(tmp_path, dns):
    server = start(tmp_path, dns, ['skip_networks = []'])
    try:
        for sender in ("carol@pass.test", "carol@soft.test", "carol@broken.test", "carol@fail.test",
                       "carol@nospf.test"):
            assert send(server, sender, subject=sender) == {}
        # The null sender (a bounce) is checked by its HELO name.
        assert send(server, "", helo="pass.test", subject="bounce") == {}
        stored = [message.decode() for message in server.messages()]
        fields = {message.split("Subject: ")[1].split("\r\n")[0]: received_spf(message) for message in stored}
    finally:
        server.stop()
    assert fields["carol@pass.test"].startswith("Received-SPF: pass (mx.example.test: domain of carol@pass.test "
                                                "designates 127.0.0.1 as permitted sender) client-ip=127.0.0.1; "
                                                "envelope-from=\"carol@pass.test\"; helo=client.example.test; ")
    assert 'identity=mailfrom; mechanism="ip4:127.0.0.0/8";' in fields["carol@pass.test"]
    assert fields["carol@soft.test"].startswith("Received-SPF: softfail ")
    assert "mechanism=~all;" in fields["carol@soft.test"]
    assert fields["carol@broken.test"].startswith("Received-SPF: permerror ")
    assert 'problem="invalid term: a:example.123";' in fields["carol@broken.test"]
    assert fields["carol@fail.test"].startswith("Received-SPF: fail ")
    assert fields["carol@nospf.test"].startswith("Received-SPF: none ")
    assert fields["bounce"].startswith("Received-SPF: pass (mx.example.test: domain of postmaster@pass.test ")
    assert "identity=helo;" in fields["bounce"]


def test_a_fail_is_refused_with_the_domains_explanation_when_configured(tmp_path, dns):
    server = start(tmp_path, dns, ['skip_networks = []', 'fail = "reject"'])
    try:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(server, "carol@fail.test")
        assert refused.value.smtp_code == 550
        assert refused.value.smtp_error.decode() == "5.7.23 fail.test never sends from 127.0.0.1"
        assert send(server, "carol@pass.test") == {}
        assert len(server.messages()) == 1
    finally:
        server.stop()


def test_a_dns_failure_defers_so_the_sender_tries_again(tmp_path, dns):
    server = start(tmp_path, dns, ['skip_networks = []'])
    try:
        with pytest.raises(smtplib.SMTPDataError) as deferred:
            send(server, "carol@down.test")
        assert deferred.value.smtp_code == 451
        assert deferred.value.smtp_error.decode().startswith("4.7.24 ")
        assert server.messages() == []
    finally:
        server.stop()


def test_loopback_clients_are_not_checked_unless_asked(tmp_path, dns):
    server = start(tmp_path, dns, [])
    try:
        assert send(server, "carol@fail.test") == {}
        assert b"Received-SPF" not in server.messages()[0]
    finally:
        server.stop()
    assert not any(line.endswith("fail.test") for line in dns.queries())


def test_a_network_that_is_not_one_is_a_config_error_naming_file_line_and_key(tmp_path, dns):
    server = Tern(tmp_path, extra='[plugin.spf]\nskip_networks = ["127.0.0.0/33"]\n')
    result = server.cli("config", "check", check=False)
    assert result.returncode == 2
    assert "tern.toml:" in result.stderr and "plugin.spf.skip_networks" in result.stderr
    assert "127.0.0.0/33" in result.stderr
