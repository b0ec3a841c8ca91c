"""kill -9 under load: every message that got a 250 is in its mailbox exactly once after a restart."""

import random
import smtplib
import sqlite3
import threading
import time

from conftest import ALICE, BOB, Tern

SENDERS = 8
ROUNDS = 3


def sender_loop(server, worker, acknowledged, stop):
    number = 0
    while not stop.is_set():
        try:
            with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as client:
                client.ehlo("client.test")
                while not stop.is_set():
                    number += 1
                    subject = f"crash-{worker}-{number}"
                    # Half the messages are large enough to be stored as files, not inside the database.
                    body = "x" * (80 * 1024 if number % 2 else 100)
                    client.sendmail("carol@remote.test", [ALICE, BOB], f"Subject: {subject}\r\n\r\n{body}\r\n")
                    acknowledged.append(subject)
        except (smtplib.SMTPException, OSError):
            time.sleep(0.05)


def subjects_stored(server, user):
    with sqlite3.connect(server.data / "tern.db") as db:
        rows = db.execute(
            "SELECT b.hash, b.body FROM messages m JOIN mailboxes x ON m.mailbox_id = x.id "
            "JOIN users u ON x.user_id = u.id JOIN blobs b ON b.hash = m.blob WHERE u.address = ?", (user,)).fetchall()
    subjects = []
    for blob_hash, body in rows:
        if body is None:
            body = (server.data / "blobs" / blob_hash[:2] / blob_hash).read_bytes()
        header = bytes(body).split(b"\r\nSubject: ", 1)[1]
        subjects.append(header.split(b"\r\n", 1)[0].decode())
    return subjects


def test_no_acknowledged_message_is_lost_or_doubled_by_kill_9(tern):
    acknowledged = []
    stop = threading.Event()
    rng = random.Random(20261122)
    tern.start()
    threads = [threading.Thread(target=sender_loop, args=(tern, n, acknowledged, stop)) for n in range(SENDERS)]
    for thread in threads:
        thread.start()
    try:
        # At least ROUNDS kills, and more while the load has been too light to mean anything (a slow machine).
        for round_number in range(ROUNDS * 4):
            if round_number >= ROUNDS and len(acknowledged) > 50:
                break
            time.sleep(rng.uniform(0.5, 1.5))
            tern.kill()
            time.sleep(0.2)
            tern.start()
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    tern.stop()
    assert len(acknowledged) > 50, "the load was too light to mean anything"
    for user in (ALICE, BOB):
        stored = subjects_stored(tern, user)
        assert len(stored) == len(set(stored)), f"{user} has duplicates"
        missing = set(acknowledged) - set(stored)
        assert not missing, f"{user} lost {len(missing)} acknowledged messages"
