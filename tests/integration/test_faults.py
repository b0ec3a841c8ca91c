"""Hardening (issue 8): faults. The disk filling up during DATA is a 452 4.3.1 with nothing half-stored, and
mail flows again once there is space; a locked database gives temporary failures, never a crash or a lost
message. (A plugin whose hook throws is test_plugins.py's test_a_hook_that_throws_defers...)"""

import errno
import imaplib
import os
import poplib
import smtplib
import sqlite3
import subprocess

import pytest

from conftest import ALICE, ALICE_PASSWORD, Tern, insecure_context

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small file system needs root, as CI runs")


def send(server, subject, size=0):
    """A message of about `size` octets of body, in lines of 78."""
    body = ("x" * 76 + "\r\n") * (size // 78) + "end\r\n"
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=60) as client:
        client.sendmail("carol@remote.test", [ALICE], f"Subject: {subject}\r\n\r\n" + body)


def inbox_subjects(server):
    with imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=insecure_context()) as client:
        client.login(ALICE, ALICE_PASSWORD)
        count = int(client.select("INBOX", readonly=True)[1][0])
        subjects = []
        for n in range(1, count + 1):
            header = client.fetch(str(n), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1].decode()
            subjects.append(header.strip().removeprefix("Subject: "))
        return subjects


@pytest.fixture
def small_disk(tmp_path):
    """A server whose data folder is a 16 MiB file system of its own."""
    data = tmp_path / "var"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(data)], check=True)
    server = Tern(tmp_path)
    try:
        server.add_users()
        yield server.start()
    finally:
        server.stop()
        subprocess.run(["umount", str(data)], check=False)


@needs_root
def test_a_full_disk_during_data_is_452_4_3_1_nothing_half_stored_and_mail_flows_when_space_is_back(small_disk):
    server = small_disk
    send(server, "before")
    filler = server.data / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 20))
                out.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC
    # Larger than the store keeps inside its database: its body needs a file of its own.
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(server, "while full", size=300_000)
    assert refused.value.smtp_code == 452 and refused.value.smtp_error.startswith(b"4.3.1"), refused.value
    server.wait_for_log("no space")
    incoming = server.data / "blobs" / "incoming"
    assert not incoming.exists() or list(incoming.iterdir()) == []  # no partial body left behind
    assert inbox_subjects(server) == ["before"]

    filler.unlink()
    send(server, "after", size=300_000)
    assert inbox_subjects(server) == ["before", "after"]
    assert server.process.poll() is None


def test_a_locked_database_gives_temporary_failures_and_no_crash(tern):
    server = tern.start()
    send(server, "first")
    # Another process holds the database's write lock longer than the store waits for it (5 s).
    holder = sqlite3.connect(server.data / "tern.db", timeout=0, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(smtplib.SMTPDataError) as deferred:
            send(server, "while locked")
        assert deferred.value.smtp_code == 451 and deferred.value.smtp_error.startswith(b"4.3.0")
        with imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=insecure_context()) as client:
            client.login(ALICE, ALICE_PASSWORD)  # reading still works
            client.select("INBOX")
            status, _ = client.store("1", "+FLAGS", "\\Flagged")
            assert status == "NO"
        pop = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=insecure_context(), timeout=60)
        pop.user(ALICE)
        pop.pass_(ALICE_PASSWORD)
        pop.dele(1)
        with pytest.raises(poplib.error_proto) as failed:
            pop.quit()
        assert failed.value.args[0].startswith(b"-ERR")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert server.process.poll() is None
    send(server, "after")
    assert inbox_subjects(server) == ["first", "after"]
