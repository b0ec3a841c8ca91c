"""Real IMAP clients against Tern: mbsync (isync) two-way sync of 1,000 messages with flags, offlineimap, and
curl."""

import imaplib
import re
import smtplib
import subprocess
from pathlib import Path

from conftest import ALICE, ALICE_PASSWORD, insecure_context

COUNT = 1000


def maildir_messages(root):
    """Message-ID -> flags of every message in a Maildir folder."""
    found = {}
    for sub in ("cur", "new"):
        for path in (root / sub).iterdir():
            match = re.search(rb"Message-ID: <([^>]+)>", path.read_bytes())
            flags = path.name.split(":2,", 1)[1] if ":2," in path.name else ""
            assert match, path
            assert match.group(1) not in found, f"duplicate {match.group(1)}"
            found[match.group(1)] = flags
    return found


def tern_messages(server):
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=insecure_context(), timeout=60)
    client.login(ALICE, ALICE_PASSWORD)
    client.select("INBOX", readonly=True)
    status, data = client.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    client.logout()
    found = {}
    for part in data:
        if not isinstance(part, tuple):
            continue
        message_id = re.search(rb"<([^>]+)>", part[1]).group(1)
        assert message_id not in found, f"duplicate {message_id}"
        found[message_id] = part[0]
    return found


def mbsync(config):
    result = subprocess.run(["mbsync", "-c", str(config), "-a"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mbsync_two_way_sync_of_a_thousand_messages_loses_and_doubles_nothing(running, tmp_path):
    local = tmp_path / "local"
    inbox = local / "INBOX"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    for n in range(1, COUNT + 1):
        flags = "S" if n % 3 == 0 else "FS" if n % 5 == 0 else "RS" if n % 7 == 0 else ""
        name = f"1700000000.M{n:06d}P4242Q{n}.sync.test" + (f":2,{flags}" if flags else "")
        (inbox / ("cur" if flags else "new") / name).write_bytes(
            f"From: peer@remote.test\r\nSubject: local {n}\r\nMessage-ID: <local-{n}@remote.test>\r\n\r\n"
            f"Body of {n}.\r\n".encode())
    config = tmp_path / "mbsyncrc"
    config.write_text(f"""
IMAPAccount tern
Host 127.0.0.1
Port {running.port("imaps")}
User {ALICE}
Pass {ALICE_PASSWORD}
SSLType IMAPS
CertificateFile {running.data / "tls" / "cert.pem"}
SystemCertificates no

IMAPStore remote
Account tern

MaildirStore near
Path {local}/
Inbox {inbox}
SubFolders Verbatim

Channel tern
Far :remote:
Near :near:
Patterns *
Create Both
Sync All
Expunge Both
SyncState *
""")
    mbsync(config)
    remote = tern_messages(running)
    assert len(remote) == COUNT
    assert b"\\Flagged" in remote[b"local-5@remote.test"] and b"\\Seen" in remote[b"local-5@remote.test"]
    assert b"\\Answered" in remote[b"local-7@remote.test"]
    assert b"FLAGS ()" in remote[b"local-1@remote.test"]

    # Changes on both sides: new mail and a flag on Tern, a deletion and a flag in the Maildir.
    with smtplib.SMTP("127.0.0.1", running.port("smtp"), timeout=30) as client:
        client.ehlo("client.test")
        for n in range(10):
            client.sendmail("peer@remote.test", [ALICE],
                            f"Subject: new {n}\r\nMessage-ID: <new-{n}@remote.test>\r\n\r\nNew.\r\n")
    client = imaplib.IMAP4_SSL("127.0.0.1", running.port("imaps"), ssl_context=insecure_context(), timeout=60)
    client.login(ALICE, ALICE_PASSWORD)
    client.select("INBOX")
    status, data = client.fetch("2", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    second = re.search(rb"<([^>]+)>", data[0][1]).group(1)
    client.store("2", "+FLAGS", "(\\Flagged)")
    client.logout()
    victim = next(path for path in (inbox / "cur").iterdir() if b"<local-9@" in path.read_bytes())
    victim.unlink()
    flagged_locally = next(path for path in (inbox / "new").iterdir() if b"<local-1@" in path.read_bytes())
    flagged_locally.rename(inbox / "cur" / (flagged_locally.name + ":2,F"))

    mbsync(config)
    mbsync(config)  # a second pass changes nothing
    remote = tern_messages(running)
    near = maildir_messages(inbox)
    assert len(remote) == len(near) == COUNT + 10 - 1
    assert set(remote) == set(near)
    assert b"local-9@remote.test" not in remote
    assert b"\\Flagged" in remote[b"local-1@remote.test"]
    assert "F" in near[second]


def test_curl_lists_and_fetches_over_imap_and_imaps(running):
    with smtplib.SMTP("127.0.0.1", running.port("smtp"), timeout=30) as client:
        client.ehlo("client.test")
        client.sendmail("peer@remote.test", [ALICE], "Subject: via curl\r\n\r\nfetched by curl\r\n")
    listing = subprocess.run(["curl", "-sS", "-k", f"imaps://127.0.0.1:{running.port('imaps')}/",
                              "--user", f"{ALICE}:{ALICE_PASSWORD}"], check=True, capture_output=True, timeout=60)
    assert b'"INBOX"' in listing.stdout and b"\\Sent" in listing.stdout
    fetched = subprocess.run(["curl", "-sS", "-k", "--ssl-reqd",
                              f"imap://127.0.0.1:{running.port('imap')}/INBOX;UID=1",
                              "--user", f"{ALICE}:{ALICE_PASSWORD}"], check=True, capture_output=True, timeout=60)
    assert fetched.stdout.endswith(b"Subject: via curl\r\n\r\nfetched by curl\r\n")


def test_offlineimap_syncs_both_ways_once_and_then_changes_nothing(running, tmp_path):
    with smtplib.SMTP("127.0.0.1", running.port("smtp"), timeout=30) as client:
        client.ehlo("client.test")
        for n in range(3):
            client.sendmail("peer@remote.test", [ALICE],
                            f"Subject: remote {n}\r\nMessage-ID: <remote-{n}@remote.test>\r\n\r\nHi.\r\n")
    inbox = tmp_path / "mail" / "INBOX"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    for n in range(5):
        (inbox / "cur" / f"1700000000.M{n}P4242.offline.test:2,S").write_bytes(
            f"From: peer@remote.test\r\nSubject: local {n}\r\nMessage-ID: <offline-{n}@remote.test>\r\n\r\nBody.\r\n"
            .encode())
    fingerprint = subprocess.run(["openssl", "x509", "-in", str(running.data / "tls" / "cert.pem"), "-noout",
                                  "-fingerprint", "-sha512"], check=True, capture_output=True, text=True, timeout=60)
    fingerprint = fingerprint.stdout.split("=", 1)[1].strip().replace(":", "").lower()
    config = tmp_path / "offlineimaprc"
    config.write_text(f"""
[general]
accounts = tern
metadata = {tmp_path / "metadata"}
[Account tern]
localrepository = local
remoterepository = remote
[Repository local]
type = Maildir
localfolders = {tmp_path / "mail"}
[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {running.port("imaps")}
ssl = yes
cert_fingerprint = {fingerprint}
remoteuser = {ALICE}
remotepass = {ALICE_PASSWORD}
""")
    for _ in range(2):
        result = subprocess.run(["offlineimap", "-c", str(config), "-o", "-u", "basic"], capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ERROR" not in result.stdout + result.stderr
    remote = tern_messages(running)
    near = maildir_messages(inbox)
    assert len(remote) == len(near) == 8
    assert set(remote) == set(near)
    assert b"\\Seen" in remote[b"offline-0@remote.test"]
