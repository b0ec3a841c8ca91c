"""Collecting a remote POP3 mailbox (issue 5, first slice): a private Dovecot on loopback plays the ISP; Tern
polls it on a schedule and files each message once for the local user, over plain POP3 and implicit TLS."""

import contextlib
import imaplib
import os
import poplib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, FIXTURE_PLUGINS, PLUGIN_DIR, Tern, free_port,
                      insecure_context, listening_ports)
from test_user_scripts import FILING

EXAMPLE_DIR = os.environ.get("TERN_EXAMPLE_PLUGIN_DIR", str(Path(PLUGIN_DIR).parent / "example-plugin" / "plugins"))

ISP_USER = "site@isp.test"
ISP_PASSWORD = "isp-secret"
MAIL_UID = 65534  # nobody: Dovecot refuses uid 0

pytestmark = pytest.mark.skipif(shutil.which("dovecot") is None or os.geteuid() != 0,
                                reason="needs dovecot-pop3d (tools/install-deps) and root for Dovecot's instance")


class Dovecot:
    """A private Dovecot with one passwd-file user and a Maildir: the ISP's POP3 server."""

    def __init__(self, root):
        self.root = Path(root) / "dovecot"
        self.maildir = self.root / "home" / "Maildir"
        self.port = free_port()
        self.tls_port = free_port()
        self.imap_port = free_port()
        self.master = None
        self.counter = 0

    def start(self):
        for sub in ("run", "state"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        "/CN=pop.isp.test", "-keyout", str(self.root / "key.pem"), "-out", str(self.root / "cert.pem")],
                       check=True, capture_output=True)
        passwd = self.root / "passwd"
        passwd.write_text(f"{ISP_USER}:{{PLAIN}}{ISP_PASSWORD}:{MAIL_UID}:{MAIL_UID}::{self.root / 'home'}::\n")
        (self.root / "dovecot.conf").write_text(f"""\
base_dir = {self.root / 'run'}
state_dir = {self.root / 'state'}
instance_name = tern-test-dovecot-{self.port}
listen = 127.0.0.1
protocols = pop3 imap
ssl = yes
ssl_cert = <{self.root / 'cert.pem'}
ssl_key = <{self.root / 'key.pem'}
disable_plaintext_auth = no
log_path = {self.root / 'dovecot.log'}
mail_location = maildir:~/Maildir
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {passwd}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {self.tls_port}
  }}
}}
""")
        self.chown()
        # Not a pipe for its errors: the daemon it leaves behind would hold the pipe open.
        errors = self.root / "start-errors.log"
        with open(errors, "w") as stream:
            started = subprocess.run(["dovecot", "-c", str(self.root / "dovecot.conf")], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=stream, timeout=60)
        if started.returncode != 0:
            return errors.read_text()
        deadline = time.monotonic() + 20
        ports = {self.port, self.tls_port, self.imap_port}
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, IndexError):
                self.master = self.master or int((self.root / "run" / "master.pid").read_text().split()[0])
            if self.master is not None and ports <= listening_ports(self.master):
                return None
            time.sleep(0.05)
        raise AssertionError(f"dovecot did not start listening:\n{self.log_text()}")

    def start_on_free_ports(self, attempts=3):
        """Starts Dovecot; a port another test took in the meantime makes it try again with new ones."""
        for _ in range(attempts):
            failure = self.start()
            if failure is None:
                return
            self.port, self.tls_port, self.imap_port = free_port(), free_port(), free_port()
        raise AssertionError(f"dovecot did not start: {failure}")

    def chown(self):
        for directory, _, files in os.walk(self.root / "home"):
            os.chown(directory, MAIL_UID, MAIL_UID)
            for name in files:
                os.chown(os.path.join(directory, name), MAIL_UID, MAIL_UID)

    def deliver(self, subject, to="site@isp.test", extra="", chown=True):
        """Puts a message in the ISP's Maildir, as its delivery agent would; `extra` is more header lines."""
        self.counter += 1
        name = f"{int(time.time())}.M{self.counter}P{os.getpid()}.isp.test"
        (self.maildir / "new" / name).write_text(
            f"Return-Path: <carol@remote.test>\n{extra}From: carol@remote.test\nTo: {to}\nSubject: {subject}\n\n"
            f"Hello {subject}.\n.leading dot\n")
        if chown:
            self.chown()

    def log_text(self):
        log = self.root / "dovecot.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def remaining(self):
        return len(list((self.maildir / "new").iterdir())) + len(list((self.maildir / "cur").iterdir()))

    def stop(self):
        if self.master is None:
            return
        subprocess.run(["doveadm", "-c", str(self.root / "dovecot.conf"), "stop"], capture_output=True, timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(self.master, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.master, 9)


@pytest.fixture
def isp():
    # Not under pytest's tmp_path: its base folder is 0700, and every pytest process that starts (ctest runs
    # several at once) makes it so again, while Dovecot's auth process runs as the dovecot user.
    root = tempfile.mkdtemp(prefix="tern-isp-")
    os.chmod(root, 0o755)
    server = Dovecot(root)
    try:
        server.start_on_free_ports()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def account(isp, name="isp", tls="none", keep=False, password=ISP_PASSWORD, interval=1, protocol="pop3"):
    port = isp.imap_port if protocol == "imap" else isp.tls_port if tls == "implicit" else isp.port
    return (f'[[plugin.fetch.account]]\nname = "{name}"\nprotocol = "{protocol}"\nserver = "127.0.0.1"\n'
            f'port = {port}\ntls = "{tls}"\n'
            f'verify = false\nuser = "{ISP_USER}"\npassword = "{password}"\ndeliver_to = "{ALICE}"\n'
            f'interval = {interval}\nkeep = {"true" if keep else "false"}\n')


def inbox_subjects(server, user=ALICE, password=ALICE_PASSWORD):
    client = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=insecure_context(), timeout=30)
    client.user(user)
    client.pass_(password)
    subjects = []
    for number in range(1, client.stat()[0] + 1):
        lines = client.top(number, 0)[1]
        subjects += [line.decode()[9:] for line in lines if line.startswith(b"Subject: ")]
    client.quit()
    return sorted(subjects)


def wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_messages_are_collected_once_and_deleted_at_the_isp(tern, isp):
    for subject in ("one", "two", "three"):
        isp.deliver(subject)
    tern.extra = account(isp)
    tern.write_config()
    server = tern.start()
    assert wait_for(lambda: inbox_subjects(server) == ["one", "three", "two"])
    assert wait_for(lambda: isp.remaining() == 0)
    # New mail at the ISP comes at the next poll; nothing comes twice.
    isp.deliver("four")
    assert wait_for(lambda: inbox_subjects(server) == ["four", "one", "three", "two"])
    time.sleep(2.5)
    assert inbox_subjects(server) == ["four", "one", "three", "two"]
    client = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=insecure_context(), timeout=30)
    client.user(ALICE)
    client.pass_(ALICE_PASSWORD)
    text = b"\r\n".join(client.retr(1)[1])
    client.quit()
    assert text.startswith(b"Received: from 127.0.0.1 by ") and b"with POP3 (Tern fetch isp)" in text
    assert b"\r\n.leading dot" in text  # dot-stuffing undone on the way in, and again on the way out


def test_kept_messages_are_not_fetched_again_even_after_a_restart(tern, isp):
    isp.deliver("kept")
    tern.extra = account(isp, tls="implicit", keep=True)
    tern.write_config()
    server = tern.start()
    assert wait_for(lambda: inbox_subjects(server) == ["kept"])
    server.stop()
    server = tern.start()
    time.sleep(2.5)
    assert inbox_subjects(server) == ["kept"]
    assert isp.remaining() == 1


def test_a_refused_login_is_logged_and_retried_and_the_server_keeps_serving(tern, isp):
    isp.deliver("waiting")
    tern.extra = account(isp, password="wrong")
    tern.write_config()
    server = tern.start()
    assert wait_for(lambda: "fetch isp: PASS: -ERR" in server.log_text())
    assert inbox_subjects(server) == []
    assert isp.remaining() == 1


def test_a_bad_account_is_a_config_error_naming_file_line_and_key(tern, isp):
    tern.extra = account(isp).replace('tls = "none"', 'tls = "sometimes"')
    tern.write_config()
    result = tern.cli("config", "check", check=False)
    assert result.returncode == 2
    assert "plugin.fetch.account[0].tls" in result.stderr


def test_collected_mail_goes_through_the_message_hooks(tmp_path, isp):
    assert (Path(EXAMPLE_DIR) / "tern-add-header.so").exists(), "run the sdk.example_builds_against_installed_sdk test"
    isp.deliver("hooked")
    (tmp_path / "tern").mkdir()
    server = Tern(tmp_path / "tern", plugin_dirs=[PLUGIN_DIR, EXAMPLE_DIR],
                  extra='[plugin.add-header]\nname = "X-Checked-By"\nvalue = "the example plugin"\n' + account(isp))
    server.add_users()
    server.start()
    try:
        assert wait_for(lambda: inbox_subjects(server) == ["hooked"])
        client = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=insecure_context(), timeout=30)
        client.user(ALICE)
        client.pass_(ALICE_PASSWORD)
        assert b"X-Checked-By: the example plugin" in client.top(1, 0)[1]
        client.quit()
    finally:
        server.stop()


def folder_subjects(server, user, password, folder):
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=insecure_context(), timeout=30)
    client.login(user, password)
    client.select(folder)
    status, data = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    client.logout()
    return sorted(item[1].decode().strip()[9:] for item in data if isinstance(item, tuple))


@pytest.mark.parametrize("protocol", ["pop3", "imap"])
def test_a_domain_wide_mailbox_is_sorted_to_each_local_recipient_once(tern, isp, protocol):
    tern.cli("alias", "add", "postmaster@example.test", ALICE)
    isp.deliver("bcc for bob", to="someone@else.test", extra="Delivered-To: bob@example.test\n")
    isp.deliver("received for alice", to="undisclosed-recipients:;",
                extra="Received: from mx.isp.test by pop.isp.test\n for <alice@example.test>; Mon, 1 Jan 2024\n")
    isp.deliver("club news", to="club@lists.example",
                extra="List-Id: The Club <club.lists.example>\n")
    isp.deliver("to both", to=f"Alice <{ALICE}>\nCc: {BOB}, stranger@else.test")
    isp.deliver("for nobody", to="ghost@example.test")
    text = account(isp, protocol=protocol).replace(f'deliver_to = "{ALICE}"\n', 'domain = "example.test"\n')
    text += '[[plugin.fetch.account.rule]]\nlist_id = "club.lists.example"\ndeliver_to = ["alice@example.test", "bob@example.test"]\n'
    tern.extra = text
    tern.write_config()
    server = tern.start()
    assert wait_for(lambda: isp.remaining() == 0)
    assert inbox_subjects(server) == ["club news", "received for alice", "to both"]
    assert inbox_subjects(server, BOB, BOB_PASSWORD) == ["bcc for bob", "club news", "to both"]
    # Nobody here: the postmaster's Lost folder, with a log line.
    assert folder_subjects(server, ALICE, ALICE_PASSWORD, "Lost") == ["for nobody"]
    assert "names no local recipient; filed in Lost" in server.log_text()


def test_a_rule_outside_a_domain_wide_mailbox_is_a_config_error(tern, isp):
    tern.extra = account(isp) + '[[plugin.fetch.account.rule]]\nsender = "a@b.c"\ndeliver_to = ["alice@example.test"]\n'
    tern.write_config()
    result = tern.cli("config", "check", check=False)
    assert result.returncode == 2 and "plugin.fetch.account[0].rule" in result.stderr


def test_a_crash_in_the_middle_of_a_poll_loses_nothing_and_duplicates_nothing(tern, isp):
    count = 1000
    for number in range(count):
        isp.deliver(f"crash {number:04}", chown=False)
    isp.chown()
    tern.extra = account(isp)
    tern.write_config()
    server = tern.start()
    database = tern.data / "tern.db"

    def stored():
        import sqlite3
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            return db.execute("SELECT count(*) FROM messages").fetchone()[0]

    # Killed as soon as some are in, while the poll is still under way.
    deadline = time.monotonic() + 30
    while stored() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()
    partial = stored()
    assert 0 < partial < count  # the kill came in the middle of the poll
    server = tern.start()
    assert wait_for(lambda: isp.remaining() == 0, timeout=60)
    subjects = inbox_subjects(server)
    assert subjects == sorted(f"crash {number:04}" for number in range(count)), f"{partial} stored before the kill"


def test_an_imap_account_is_collected_over_starttls_and_emptied_or_kept_seen(tern, isp):
    for subject in ("imap one", "imap two"):
        isp.deliver(subject)
    tern.extra = account(isp, tls="starttls", protocol="imap")
    tern.write_config()
    server = tern.start()
    assert wait_for(lambda: inbox_subjects(server) == ["imap one", "imap two"])
    assert wait_for(lambda: isp.remaining() == 0)  # flagged \\Deleted, then CLOSE expunged them
    client = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=insecure_context(), timeout=30)
    client.user(ALICE)
    client.pass_(ALICE_PASSWORD)
    assert b"with IMAP (Tern fetch isp)" in client.top(1, 0)[1][0]
    client.quit()
    server.stop()

    isp.deliver("imap kept")
    tern.extra = account(isp, name="kept", tls="starttls", protocol="imap", keep=True)
    tern.write_config()
    server = tern.start()
    assert wait_for(lambda: inbox_subjects(server) == ["imap kept", "imap one", "imap two"])
    server.stop()
    server = tern.start()
    time.sleep(2.5)
    assert inbox_subjects(server) == ["imap kept", "imap one", "imap two"]
    # Left at the ISP, marked read there.
    assert isp.remaining() == 1 and list((isp.maildir / "cur").iterdir())[0].name.endswith(",S")


def test_tern_fetch_run_polls_now_and_names_an_unknown_account(tern, isp):
    isp.deliver("on demand")
    tern.extra = account(isp, interval=3600)
    tern.write_config()
    result = tern.cli("fetch", "run", "isp", check=False)
    assert result.returncode == 0, result.stderr
    assert isp.remaining() == 0
    unknown = tern.cli("fetch", "run", "nosuch", check=False)
    assert unknown.returncode == 2
    # While the server runs, an on-demand run waits for the server's own poll and then finds nothing twice.
    server = tern.start()
    isp.deliver("second")
    assert tern.cli("fetch", "run", check=False).returncode == 0
    assert inbox_subjects(server) == ["on demand", "second"]


@pytest.mark.parametrize("protocol", ["pop3", "imap"])
def test_kept_messages_are_deleted_at_the_isp_once_delete_after_days_have_passed(tern, isp, protocol):
    isp.deliver("kept a while")
    # 0 days: deleted at the first poll after the one that collected it.
    tern.extra = account(isp, keep=True, protocol=protocol) + "delete_after_days = 0\n"
    tern.write_config()
    server = tern.start()
    assert wait_for(lambda: inbox_subjects(server) == ["kept a while"]), server.log_text()[-3000:]
    assert wait_for(lambda: isp.remaining() == 0), server.log_text()[-3000:] + isp.log_text()[-2000:]
    assert inbox_subjects(server) == ["kept a while"]
    bad = account(isp) + "delete_after_days = 3\n"
    tern.extra = bad
    tern.write_config()
    result = tern.cli("config", "check", check=False)
    assert result.returncode == 2 and "delete_after_days: is for an account with keep = true" in result.stderr


@pytest.mark.parametrize("protocol", ["pop3", "imap"])
def test_a_message_a_hook_refuses_stays_at_the_isp_and_does_not_hold_back_the_rest(tmp_path, isp, protocol):
    isp.deliver("spam first", extra="X-Spam: yes\n")
    isp.deliver("ham after")
    (tmp_path / "tern").mkdir()
    server = Tern(tmp_path / "tern", plugin_dirs=[PLUGIN_DIR, str(Path(FIXTURE_PLUGINS) / "hooks")],
                  extra=account(isp, protocol=protocol))
    server.add_users()
    server.start()
    try:
        assert wait_for(lambda: inbox_subjects(server) == ["ham after"]), server.log_text()[-3000:]
        assert wait_for(lambda: "refused by a hook (554 Looks like spam); left on the server" in server.log_text())
        # Only the refused one is left at the ISP, and it is not collected at the next polls either.
        assert wait_for(lambda: isp.remaining() == 1)
        time.sleep(2.5)
        assert inbox_subjects(server) == ["ham after"] and isp.remaining() == 1
    finally:
        server.stop()


# Alice's own script: test_user_scripts' filing rules, and junk dropped.
ALICE_RULES = FILING + """\
tern.hook("deliver", function(tx)
  if tx:header("Subject") == "junk" then return tern.discard() end
end)
"""

SERVER_RULES = """\
tern.hook("deliver", function(tx)
  if tx:header("Subject") == "not yet" then return tern.defer(451, "4.7.1", "held by the deliver hook") end
end)
"""


def flags_and_subjects(server, user, password, folder):
    with imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=insecure_context(), timeout=30) as client:
        client.login(user, password)
        status, data = client.select(folder, readonly=True)
        assert status == "OK", data
        found = []
        for n in range(1, int(data[0]) + 1):
            parts = client.fetch(str(n), "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0]
            found.append(("\\Flagged" in parts[0].decode(), parts[1].decode().strip()[9:]))
        return sorted(found)


def test_collected_mail_is_filed_by_the_deliver_hooks_and_each_users_own_script(tmp_path, isp):
    isp.deliver("[club] meeting", to=f"{ALICE}\nCc: {BOB}")
    # The ISP's delivery agent names Alice in a Delivered-To of its own: no loop, her redirect stands.
    isp.deliver("pass it on", to=ALICE, extra=f"Delivered-To: {ALICE}\n")
    isp.deliver("junk", to=ALICE)
    isp.deliver("not yet", to=ALICE)
    isp.deliver("plain", to=ALICE)
    (tmp_path / "server.lua").write_text(SERVER_RULES)
    (tmp_path / "tern").mkdir()
    text = account(isp).replace(f'deliver_to = "{ALICE}"\n', 'domain = "example.test"\n')
    server = Tern(tmp_path / "tern",
                  extra=f'[plugin.lua]\nscripts = ["{tmp_path / "server.lua"}"]\nuser_scripts = true\n' + text)
    server.add_users()
    server.cli("script", "upload", ALICE, "-", input=ALICE_RULES)
    server.start()
    try:
        # Everything is collected but the message the server's hook defers, which stays at the ISP.
        assert wait_for(lambda: isp.remaining() == 1), server.log_text()[-3000:]
        assert wait_for(lambda: "refused by a deliver hook (451 held by the deliver hook)" in server.log_text())
        # Alice's script: club mail flagged in its folder, the discarded and the redirected copies gone.
        assert flags_and_subjects(server, ALICE, ALICE_PASSWORD, "INBOX") == [(False, "plain")]
        assert flags_and_subjects(server, ALICE, ALICE_PASSWORD, "Club/News") == [(True, "[club] meeting")]
        # Bob has no script: his copy of the club mail is plain, in his inbox, with what Alice passed on.
        assert flags_and_subjects(server, BOB, BOB_PASSWORD, "INBOX") == [(False, "[club] meeting"),
                                                                       (False, "pass it on")]
        time.sleep(2.5)
        assert isp.remaining() == 1
        assert flags_and_subjects(server, ALICE, ALICE_PASSWORD, "INBOX") == [(False, "plain")]
    finally:
        server.stop()
