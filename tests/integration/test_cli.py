"""The administrative command line: domains, users, aliases, plugins."""

import os
import pty
import sqlite3

from conftest import ALICE, TERN, Tern


def test_domains_are_added_listed_and_removed(tmp_path):
    server = Tern(tmp_path)
    server.cli("domain", "add", "Example.Test")
    server.cli("domain", "add", "other.test")
    assert server.cli("domain", "list").stdout.split() == ["example.test", "other.test"]
    again = server.cli("domain", "add", "example.test", check=False)
    assert again.returncode == 1
    assert "exists already" in again.stderr
    server.cli("domain", "remove", "other.test")
    assert server.cli("domain", "list").stdout.split() == ["example.test"]


def test_a_bad_domain_name_is_a_usage_error(tmp_path):
    result = Tern(tmp_path).cli("domain", "add", "not a domain", check=False)
    assert result.returncode == 2
    assert "not a domain name" in result.stderr


def test_users_get_passwords_from_stdin_stored_as_argon2id(tmp_path):
    server = Tern(tmp_path)
    server.cli("domain", "add", "example.test")
    server.cli("user", "add", ALICE, input="correct horse\n")
    assert server.cli("user", "list").stdout.split() == [ALICE]
    with sqlite3.connect(server.data / "tern.db") as db:
        (stored,) = db.execute("SELECT password_hash FROM users").fetchone()
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    server.cli("user", "passwd", ALICE, input="battery staple\n")
    with sqlite3.connect(server.data / "tern.db") as db:
        (changed,) = db.execute("SELECT password_hash FROM users").fetchone()
    assert changed != stored
    server.cli("user", "remove", ALICE)
    assert server.cli("user", "list").stdout.split() == []


def test_a_user_of_an_unknown_domain_or_without_password_is_refused(tmp_path):
    server = Tern(tmp_path)
    unknown = server.cli("user", "add", "carol@nowhere.test", input="pw\n", check=False)
    assert unknown.returncode == 1
    assert "not a local domain" in unknown.stderr
    server.cli("domain", "add", "example.test")
    empty = server.cli("user", "add", ALICE, input="\n", check=False)
    assert empty.returncode == 1
    assert "must not be empty" in empty.stderr
    assert server.cli("user", "add", "no-at-sign", input="pw\n", check=False).returncode == 2


def test_at_a_terminal_the_password_is_asked_twice_without_echo(tmp_path):
    server = Tern(tmp_path)
    server.cli("domain", "add", "example.test")
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(TERN, [TERN, "-c", str(server.config), "user", "add", ALICE])
    transcript = b""

    def read_until(marker):
        nonlocal transcript
        while marker not in transcript:
            chunk = os.read(fd, 1024)
            if not chunk:
                break
            transcript += chunk

    read_until(b"Password: ")
    os.write(fd, b"typed secret\n")
    read_until(b"Again: ")
    os.write(fd, b"typed secret\n")
    _, status = os.waitpid(pid, 0)
    try:
        while True:
            chunk = os.read(fd, 1024)
            if not chunk:
                break
            transcript += chunk
    except OSError:
        pass
    assert os.waitstatus_to_exitcode(status) == 0, transcript
    assert b"typed secret" not in transcript
    assert server.cli("user", "list").stdout.split() == [ALICE]


def test_aliases_are_added_listed_and_removed(tmp_path):
    server = Tern(tmp_path)
    server.cli("domain", "add", "example.test")
    server.cli("alias", "add", "postmaster@example.test", ALICE)
    server.cli("alias", "add", "info@example.test", "someone@remote.test")
    assert server.cli("alias", "list").stdout.splitlines() == [
        "info@example.test -> someone@remote.test",
        f"postmaster@example.test -> {ALICE}",
    ]
    server.cli("alias", "remove", "info@example.test", "someone@remote.test")
    assert server.cli("alias", "list", "example.test").stdout.splitlines() == [f"postmaster@example.test -> {ALICE}"]
    missing = server.cli("alias", "remove", "info@example.test", "someone@remote.test", check=False)
    assert missing.returncode == 1


def test_plugins_lists_each_with_version_and_sdk_version(tmp_path):
    output = Tern(tmp_path).cli("plugins").stdout
    for name in ("smtp", "pop3", "store-sqlite"):
        line = next(line for line in output.splitlines() if line.startswith(name + " "))
        assert "0.1.0" in line
        assert "sdk 0." in line


def test_without_a_subcommand_usage_is_printed_and_the_exit_code_is_2(tmp_path):
    result = Tern(tmp_path).cli(check=False)
    assert result.returncode == 2
