"""Hardening (issue 8): privilege separation. Started as root with [server] user and group, Tern binds its
ports as root, hands its data folder to that user with tight modes and becomes it for good; administrative
commands become it too before they touch the store. Without them it runs as started and warns when that is
root."""

import grp
import imaplib
import os
import pwd
import shutil
import smtplib
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import ALICE, ALICE_PASSWORD, Tern, insecure_context
from peers import private_folder

USER, GROUP = "nobody", "nogroup"


@pytest.fixture
def open_folder():
    """A folder other users can pass through: pytest's own may be root's alone."""
    folder = private_folder("tern-security-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def ids(pid):
    """The process's real, effective, saved and filesystem user and group ids, and its groups."""
    status = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        status[name] = value.split()
    return ([int(v) for v in status["Uid"]], [int(v) for v in status["Gid"]],
            [int(v) for v in status.get("Groups", [])])


@pytest.mark.skipif(os.geteuid() != 0, reason="privilege separation is tested as root, as CI runs")
def test_started_as_root_with_user_and_group_it_runs_as_them_for_good_and_owns_its_data(open_folder):
    uid, gid = pwd.getpwnam(USER).pw_uid, grp.getgrnam(GROUP).gr_gid
    server = Tern(open_folder, server_extra=f'user = "{USER}"\ngroup = "{GROUP}"')
    server.add_users()  # as root: the command becomes nobody before it makes the store's files
    server.start()
    try:
        # The ports are bound as root, before the drop: the log says when it is done.
        server.wait_for_log(f"running as user {USER} and group {GROUP}")
        uids, gids, groups = ids(server.process.pid)
        assert uids == [uid] * 4 and gids == [gid] * 4 and groups == [gid], (uids, gids, groups)
        # It still serves: a message in, and read back over IMAPS on a port bound as root.
        with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
            client.sendmail("carol@remote.test", [ALICE], "Subject: after the drop\r\n\r\nhi\r\n")
        with imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=insecure_context()) as client:
            client.login(ALICE, ALICE_PASSWORD)
            assert client.select("INBOX")[1] == [b"1"]
        # The data folder and everything in it are nobody's, folders 0700 and files 0600, the key included.
        data = server.data
        assert (data.stat().st_uid, stat.S_IMODE(data.stat().st_mode)) == (uid, 0o700)
        for path in data.rglob("*"):
            info = path.lstat()
            assert info.st_uid == uid and info.st_gid == gid, path
            assert stat.S_IMODE(info.st_mode) == (0o700 if path.is_dir() else 0o600), path
        assert (data / "tls" / "key.pem").exists()
        # An administrative command run as root later does not leave root's files behind.
        server.cli("user", "add", "carol@example.test", input="carol-secret\n")
        assert all(p.lstat().st_uid == uid for p in data.rglob("*"))
    finally:
        server.stop()


def test_as_root_without_a_user_it_warns_that_it_keeps_root(tern):
    tern.start()
    try:
        if os.geteuid() == 0:
            tern.wait_for_log("running as root: set [server] user and group")
        else:
            assert "running as root" not in tern.log_text()
    finally:
        tern.stop()


def test_an_unknown_user_or_group_is_a_config_error_naming_the_key(tmp_path):
    server = Tern(tmp_path, server_extra='user = "no-such-user-here"\ngroup = "no-such-group-here"')
    checked = server.cli("config", "check", check=False)
    assert checked.returncode == 2
    assert f"{server.config}:" in checked.stderr and "server.user: no user \"no-such-user-here\"" in checked.stderr
    assert "server.group: no group \"no-such-group-here\"" in checked.stderr
    (tmp_path / "root").mkdir()
    root = Tern(tmp_path / "root", server_extra='user = "root"')
    checked = root.cli("config", "check", check=False)
    assert checked.returncode == 2 and "server.user: must not be root" in checked.stderr


def test_the_systemd_unit_is_valid_with_its_sandboxing(tmp_path):
    unit = (Path(__file__).resolve().parents[2] / "config" / "tern.service").read_text()
    binary = os.environ.get("TERN_BIN", "")
    copy = tmp_path / "tern.service"
    copy.write_text(unit.replace("/usr/local/bin/tern", binary))
    verified = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "tern.service" not in verified.stdout + verified.stderr, verified.stdout + verified.stderr
    for option in ("NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
                   "SystemCallFilter=@system-service"):
        assert option in unit
