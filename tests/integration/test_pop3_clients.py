"""Real POP3 clients against Tern (issue 5): fetchmail and getmail6, over implicit TLS, each message fetched
once, deleted or kept as asked, and not fetched again."""

import mailbox
import os
import poplib
import shutil
import smtplib
import subprocess

import pytest

from conftest import ALICE, ALICE_PASSWORD, insecure_context

MESSAGE = "From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n.dot\r\n"


def send(server, subject):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        client.sendmail("carol@remote.test", [ALICE], MESSAGE.format(subject=subject))


def messages_left(server):
    client = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=insecure_context(), timeout=30)
    client.user(ALICE)
    client.pass_(ALICE_PASSWORD)
    count = client.stat()[0]
    client.quit()
    return count


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail is installed by tools/install-deps")
def test_fetchmail_collects_every_message_once_and_deletes_them(running, tmp_path):
    for subject in ("f1", "f2", "f3"):
        send(running, subject)
    spool = tmp_path / "spool"
    spool.mkdir()
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f'set no bouncemail\n'
        f'poll 127.0.0.1 with proto POP3 port {running.port("pop3s")} uidl\n'
        f'  user "{ALICE}" there with password "{ALICE_PASSWORD}" is "root" here\n'
        f'  options ssl no sslcertck fetchall\n'
        f'  mda "/bin/sh -c \'cat > {spool}/$$.$(date +%s%N)\'"\n')
    rc.chmod(0o600)
    environment = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    result = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "--nosyslog"], env=environment,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    bodies = [path.read_text() for path in spool.iterdir()]
    assert sorted(next(line for line in body.splitlines() if line.startswith("Subject:")) for body in bodies) == [
        "Subject: f1", "Subject: f2", "Subject: f3"]
    # Dot-stuffing undone on the way: the ".dot" line arrives as it was sent.
    assert all("\n.dot\n" in body.replace("\r\n", "\n") for body in bodies)
    assert messages_left(running) == 0
    # Nothing new: fetchmail says so with its exit code 1.
    again = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "--nosyslog"], env=environment,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 1, again.stderr
    assert len(list(spool.iterdir())) == 3


@pytest.mark.skipif(shutil.which("getmail") is None, reason="getmail6 is installed by tools/install-deps")
def test_getmail_keeps_messages_on_the_server_and_fetches_only_new_ones_by_uidl(running, tmp_path):
    send(running, "g1")
    send(running, "g2")
    directory = tmp_path / "getmail"
    directory.mkdir()
    box = tmp_path / "inbox.mbox"
    box.touch()
    (directory / "getmailrc").write_text(
        "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = 127.0.0.1\n"
        f"port = {running.port('pop3s')}\nusername = {ALICE}\npassword = {ALICE_PASSWORD}\n"
        # An external delivery, as getmail refuses its own mbox delivery as root (tests run as root).
        f"[destination]\ntype = MDA_external\npath = /bin/sh\narguments = (\"-c\", \"cat >> {box}\")\n"
        "unixfrom = true\nallow_root_commands = true\n"
        "[options]\ndelete = false\nread_all = false\nverbose = 0\n")

    def getmail():
        result = subprocess.run(["getmail", "--getmaildir", str(directory), "--rcfile", "getmailrc"],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        return [message["Subject"] for message in mailbox.mbox(str(box))]

    assert getmail() == ["g1", "g2"]
    send(running, "g3")
    # The UIDLs getmail remembered still name the same messages: only the new one comes.
    assert getmail() == ["g1", "g2", "g3"]
    assert messages_left(running) == 3
