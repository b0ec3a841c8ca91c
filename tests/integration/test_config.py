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
