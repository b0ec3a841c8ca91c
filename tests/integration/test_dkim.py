"""The dkim plugin end to end: keys made with `tern dkim keygen`, mail that alice submits signed with both, and
the signatures checked by python3-dkim (rsa-sha256 and ed25519-sha256) against the records `tern dkim show`
prints, as a receiving server would find them in DNS."""

import re
import smtplib

import dkim

from conftest import ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, Tern, insecure_context

MESSAGE = ("From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: signed\r\n"
           "Message-ID: <signed@example.test>\r\nDate: Sun, 1 Mar 2026 10:00:00 +0000\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello  from alice. \r\n\r\n")


def records(shown):
    """{"selector._domainkey.domain.": b"v=DKIM1; ..."} from `tern dkim show`'s zone lines."""
    found = {}
    for line in shown.splitlines():
        name, strings = re.match(r'(\S+) IN TXT \( (.*) \)$', line).groups()
        found[name] = "".join(re.findall(r'"([^"]*)"', strings)).encode()
    return found




def verify_each(message, published):
    """Whether each DKIM-Signature of `message` verifies, in order, looking keys up in `published`."""
    count = len(re.findall(rb"^DKIM-Signature:", message, re.MULTILINE | re.IGNORECASE))
    results = []
    for index in range(count):
        try:
            results.append(dkim.DKIM(message).verify(idx=index,
                                                     dnsfunc=lambda name, timeout=5: published.get(name.decode())))
        except dkim.ValidationError:  # a body hash that does not match is raised, not returned
            results.append(False)
    return results


def test_submitted_mail_carries_an_rsa_and_an_ed25519_signature_that_verify(tmp_path):
    server = Tern(tmp_path)
    server.add_users()
    made = server.cli("dkim", "keygen", "example.test", "--selector", "rsa1")
    assert "rsa1._domainkey.example.test. IN TXT" in made.stdout
    server.cli("dkim", "keygen", "example.test", "--algorithm", "ed25519", "--selector", "ed1")
    published = records(server.cli("dkim", "show", "example.test").stdout)
    assert sorted(published) == ["ed1._domainkey.example.test.", "rsa1._domainkey.example.test."]
    server.start()
    try:
        with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=30) as client:
            client.starttls(context=insecure_context())
            client.login(ALICE, ALICE_PASSWORD)
            assert client.sendmail(ALICE, [BOB], MESSAGE) == {}
        # Mail that came in over port 25, from nobody who logged in, is not this server's to sign.
        with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
            assert client.sendmail("carol@remote.test", [BOB], MESSAGE.replace("signed", "unsigned")) == {}
        signed, unsigned = server.messages(BOB, BOB_PASSWORD)
    finally:
        server.stop()
    assert sorted(re.findall(rb"a=(rsa-sha256|ed25519-sha256);", signed)) == [b"ed25519-sha256", b"rsa-sha256"]
    assert verify_each(signed, published) == [True, True]
    assert b"DKIM-Signature" not in unsigned
    # A changed body or a changed signed field breaks both.
    assert verify_each(signed.replace(b"from alice.", b"from carol."), published) == [False, False]
    # Relaxed canonicalization lets white space change on the way, as RFC 6376 means it to.
    assert verify_each(signed.replace(b"Hello  from", b"Hello from"), published) == [True, True]
    assert verify_each(signed.replace(b"Subject: signed", b"Subject: changed"), published) == [False, False]


def test_keygen_refuses_what_it_cannot_do(tmp_path):
    server = Tern(tmp_path)
    server.add_users()
    assert server.cli("dkim", "keygen", "elsewhere.test", check=False).returncode == 1
    assert server.cli("dkim", "keygen", "example.test", "--algorithm", "dsa", check=False).returncode == 2
    assert server.cli("dkim", "keygen", "not a domain", check=False).returncode == 2
    server.cli("dkim", "keygen", "example.test", "--selector", "one")
    again = server.cli("dkim", "keygen", "example.test", "--selector", "one", check=False)
    assert again.returncode == 1 and "exists already" in again.stderr
    nothing = server.cli("dkim", "show", "other.test", check=False)
    assert nothing.returncode == 1 and "tern dkim keygen other.test" in nothing.stderr
