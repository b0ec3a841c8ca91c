"""Config validation: every error names file, line and key, and exits 2."""

import smtplib
import subprocess

from conftest import ALICE, PLUGIN_DIR, TERN, Tern, free_port, listening_ports


def check(tmp_path, text):
    path = tmp_path / "tern.toml"
    path.write_text(text)
    return path, subprocess.run([TERN, "-c", str(path), "config", "check"], capture_output=True, text=True,
                                timeout=60)


def test_a_valid_config_checks_ok(tmp_path):
    server = Tern(tmp_path)
    result = server.cli("config", "check")
    assert result.stdout.strip().endswith(": ok")


def test_an_unknown_key_names_file_line_and_key(tmp_path):
    path, result = check(tmp_path, f'[server]\nhostname = "a.test"\nhost_name = "b.test"\n[plugins]\ndirs = ["{PLUGIN_DIR}"]\n')
    assert result.returncode == 2
    assert f"{path}:3: server.host_name: unknown key" in result.stderr


def test_a_bad_value_names_what_it_must_be(tmp_path):
    path, result = check(tmp_path, f'[plugins]\ndirs = ["{PLUGIN_DIR}"]\n[[listener]]\nprotocol = "smtp"\naddress = "127.0.0.1:2525"\ntls = "maybe"\n')
    assert result.returncode == 2
    assert f"{path}:6: listener[0].tls: must be" in result.stderr


def test_a_plugin_section_is_checked_by_its_plugin(tmp_path):
    path, result = check(tmp_path, f'[plugins]\ndirs = ["{PLUGIN_DIR}"]\n[plugin.smtp]\nmax_mesage_size = 10\n')
    assert result.returncode == 2
    assert f"{path}:4: plugin.smtp.max_mesage_size: unknown key" in result.stderr
    path, result = check(tmp_path, f'[plugins]\ndirs = ["{PLUGIN_DIR}"]\n[plugin.smtp]\nmax_recipients = 0\n')
    assert result.returncode == 2
    assert f"{path}:4: plugin.smtp.max_recipients: must be a positive integer" in result.stderr
    path, result = check(tmp_path, f'[plugins]\ndirs = ["{PLUGIN_DIR}"]\n[plugin.smpt]\nmax_recipients = 5\n')
    assert result.returncode == 2
    assert f"{path}:3: plugin.smpt: no plugin of that name is loaded" in result.stderr


def test_every_mistake_of_plugin_sections_is_reported_at_once(tmp_path):
    path, result = check(tmp_path, f"""[plugins]
dirs = ["{PLUGIN_DIR}"]
[plugin.smtp]
max_recipients = 0
command_timeout = "2 weeks"
max_message_size = "12X"
[plugin.outbound]
max_connections = 0
tls = "sometimes"
expire_after = "3d"
[[plugin.outbound.route]]
domains = ["slow.example"]
via = "carrier pigeon"
""")
    assert result.returncode == 2
    for line, key, what in [(4, "plugin.smtp.max_recipients", "must be a positive integer"),
                            (5, "plugin.smtp.command_timeout", "must be a number of seconds, or one with a unit"),
                            (6, "plugin.smtp.max_message_size", "must be a number of octets, or one with a unit"),
                            (8, "plugin.outbound.max_connections", "must be 1 to 10000"),
                            (9, "plugin.outbound.tls", 'must be "opportunistic", "starttls" or "none"'),
                            (13, "plugin.outbound.route[0].via", 'must be "mx", "relay", "hold" or "pipe"')]:
        assert f"{path}:{line}: {key}: {what}" in result.stderr, result.stderr
    assert "expire_after" not in result.stderr  # "3d" is three days: a duration with its unit


def test_durations_and_sizes_take_units(tmp_path):
    path, result = check(tmp_path, f"""[plugins]
dirs = ["{PLUGIN_DIR}"]
[plugin.smtp]
command_timeout = "10m"
max_message_size = "50M"
[plugin.store-sqlite]
inline_max_size = "32K"
""")
    assert result.returncode == 0, result.stderr
    path, result = check(tmp_path, f"""[plugins]
dirs = ["{PLUGIN_DIR}"]
[plugin.smtp]
command_timeout = "2h"
""")
    assert result.returncode == 2
    assert f"{path}:4: plugin.smtp.command_timeout: must be 1 to 3600 seconds" in result.stderr


def test_a_listener_for_a_protocol_no_plugin_provides_is_an_error(tmp_path):
    path, result = check(tmp_path, f'[plugins]\ndirs = ["{PLUGIN_DIR}"]\n[[listener]]\nprotocol = "gopher"\naddress = "127.0.0.1:7070"\n')
    assert result.returncode == 2
    assert f"{path}:3: listener.protocol: \"gopher\" is not provided by any loaded plugin" in result.stderr


def test_serve_with_a_broken_config_exits_2_naming_file_and_line(tmp_path):
    path = tmp_path / "tern.toml"
    path.write_text('[server]\nhostname = "mx.example.test"\nthreads = "many"\n')
    result = subprocess.run([TERN, "-c", str(path), "serve"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"{path}:3: server.threads: must be an integer" in result.stderr


def test_a_toml_syntax_error_exits_2(tmp_path):
    path, result = check(tmp_path, '[server\nhostname = "x"\n')
    assert result.returncode == 2
    assert f"{path}:1:" in result.stderr


def test_the_issue_shape_alone_runs_a_working_server(tmp_path):
    """The foundation issue's example file, with only ports and paths filled in."""
    port = free_port()
    data = tmp_path / "var"
    path = tmp_path / "tern.toml"
    path.write_text(f"""
[server]
hostname = "mx.example.test"
data_dir = "{data}"
[[listener]]
protocol = "smtp"          # smtp | submission | pop3 | imap
address  = "127.0.0.1:{port}"
tls      = "none"          # none | starttls | implicit
[tls]
cert = "{data}/tls/cert.pem"
key  = "{data}/tls/key.pem"
[plugins]
dirs = ["{PLUGIN_DIR}"]
""")
    run = lambda *args, **kw: subprocess.run([TERN, "-c", str(path), *args], check=True, timeout=60, **kw)
    run("domain", "add", "example.test")
    run("user", "add", ALICE, input=b"pw\n")
    server = subprocess.Popen([TERN, "-c", str(path), "serve"], stderr=subprocess.DEVNULL)
    try:
        import time
        deadline = time.monotonic() + 30
        while port not in listening_ports(server.pid):
            assert server.poll() is None and time.monotonic() < deadline, "tern serve did not start listening"
            time.sleep(0.05)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo("client.test")
            assert not client.has_extn("starttls")  # tls = "none"
            assert not client.has_extn("auth")  # no password login without TLS
            assert client.sendmail("carol@remote.test", [ALICE], "Subject: shape\r\n\r\nok\r\n") == {}
        assert (data / "tls" / "cert.pem").exists()
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0
