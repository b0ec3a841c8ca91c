"""`tern serve` as a process: TLS on first start, SIGTERM, SIGHUP, limits, logging."""

import json
import signal
import smtplib
import socket
import ssl
import stat
import subprocess
import time

from conftest import ALICE, Tern, insecure_context


def read_reply(stream):
    line = stream.readline()
    while line[3:4] == b"-":
        line = stream.readline()
    return line


def test_first_start_makes_a_self_signed_certificate_with_a_private_key(running):
    cert = running.data / "tls" / "cert.pem"
    key = running.data / "tls" / "key.pem"
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with smtplib.SMTP_SSL("127.0.0.1", running.port("submissions"), context=insecure_context(), timeout=30) as client:
        assert client.noop()[0] == 250
        assert client.sock.version() in ("TLSv1.2", "TLSv1.3")


def test_sigterm_says_goodbye_to_idle_sessions_and_exits_0(running):
    with socket.create_connection(("127.0.0.1", running.port("smtp")), timeout=30) as raw:
        stream = raw.makefile("rb")
        assert stream.readline().startswith(b"220")
        running.signal(signal.SIGTERM)
        assert stream.readline().startswith(b"421 4.3.2")
    assert running.process.wait(timeout=30) == 0
    assert "tern stopped" in running.log_text()


def test_sigterm_lets_a_transaction_under_way_finish(running):
    with socket.create_connection(("127.0.0.1", running.port("smtp")), timeout=30) as raw:
        stream = raw.makefile("rb")
        stream.readline()
        for command in (b"EHLO client.test\r\n", b"MAIL FROM:<carol@remote.test>\r\n", b"RCPT TO:<alice@example.test>\r\n"):
            raw.sendall(command)
            assert read_reply(stream).startswith(b"250")
        raw.sendall(b"DATA\r\n")
        assert read_reply(stream).startswith(b"354")
        raw.sendall(b"Subject: in flight\r\n\r\nfirst half\r\n")
        running.signal(signal.SIGTERM)
        running.wait_for_log("shutting down")
        assert running.process.poll() is None
        raw.sendall(b"second half\r\n.\r\n")
        assert read_reply(stream).startswith(b"250 2.0.0")
        assert read_reply(stream).startswith(b"421")
    assert running.process.wait(timeout=30) == 0
    running.start()
    import poplib
    client = poplib.POP3_SSL("127.0.0.1", running.port("pop3s"), context=insecure_context(), timeout=30)
    client.user(ALICE)
    client.pass_("alice-secret")
    assert client.stat()[0] == 1
    client.quit()


def size_offered(port):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.test")
        return int(client.esmtp_features["size"])


def test_sighup_reloads_plugin_config_without_dropping_connections(running):
    assert size_offered(running.port("smtp")) == 25 * 1024 * 1024
    held = smtplib.SMTP("127.0.0.1", running.port("smtp"), timeout=30)
    held.ehlo("held.test")
    running.write_config("[plugin.smtp]\nmax_message_size = 100000\n")
    running.signal(signal.SIGHUP)
    running.wait_for_log("reload done")
    assert size_offered(running.port("smtp")) == 100000
    # The session that was open keeps working, on the generation it started with.
    assert held.noop()[0] == 250
    held.ehlo("held.test")
    assert int(held.esmtp_features["size"]) == 25 * 1024 * 1024
    held.quit()


def test_sighup_with_a_broken_config_keeps_the_old_one(running):
    running.write_config("[plugin.smtp]\nmax_message_size = -5\n")
    running.signal(signal.SIGHUP)
    running.wait_for_log("reload refused")
    assert "plugin.smtp.max_message_size" in running.log_text()
    assert size_offered(running.port("smtp")) == 25 * 1024 * 1024
    assert running.process.poll() is None


def test_connections_over_the_per_client_limit_are_refused_with_421(tmp_path):
    server = Tern(tmp_path, extra="[limits]\nmax_connections_per_client = 2\n")
    server.start()
    try:
        first = socket.create_connection(("127.0.0.1", server.port("smtp")), timeout=30)
        second = socket.create_connection(("127.0.0.1", server.port("smtp")), timeout=30)
        assert first.makefile("rb").readline().startswith(b"220")
        assert second.makefile("rb").readline().startswith(b"220")
        third = socket.create_connection(("127.0.0.1", server.port("smtp")), timeout=30)
        assert third.makefile("rb").readline().startswith(b"421 4.7.0")
        third.close()
        first.close()
        deadline = time.monotonic() + 10
        while True:
            fourth = socket.create_connection(("127.0.0.1", server.port("smtp")), timeout=30)
            greeting = fourth.makefile("rb").readline()
            fourth.close()
            if greeting.startswith(b"220") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert greeting.startswith(b"220")
        second.close()
    finally:
        server.stop()


def test_json_log_lines(tmp_path):
    server = Tern(tmp_path, extra="")
    server.write_config()
    text = server.config.read_text().replace("[log]\n", '[log]\nformat = "json"\n')
    server.config.write_text(text)
    server.start()
    server.stop()
    lines = server.log_text().splitlines()
    assert lines
    for line in lines:
        record = json.loads(line)
        assert {"time", "level", "message"} <= record.keys()
    assert any("listening on" in json.loads(line)["message"] for line in lines)


def test_a_port_in_use_is_a_clear_start_failure(tmp_path):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    server = Tern(tmp_path, listeners={"smtp": ("smtp", "none", False)})
    server.ports["smtp"] = blocker.getsockname()[1]
    server.write_config()
    from conftest import TERN
    result = subprocess.run([TERN, "-c", str(server.config), "serve"], capture_output=True, text=True, timeout=60)
    blocker.close()
    assert result.returncode == 1
    assert "cannot listen on" in server.log_text()


def test_a_silent_smtp_client_is_dropped_with_421_after_the_command_timeout(tmp_path):
    server = Tern(tmp_path, listeners={"smtp": ("smtp", "none", False)}, extra="[plugin.smtp]\ncommand_timeout = 1\n")
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port("smtp")), timeout=30) as raw:
            stream = raw.makefile("rb")
            assert stream.readline().startswith(b"220")
            raw.sendall(b"EHLO client.test\r\n")
            read_reply(stream)
            assert stream.readline().startswith(b"421 4.4.2")
            assert stream.readline() == b""
    finally:
        server.stop()


def make_certificate(folder, name):
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", f"/CN={name}", "-days", "2", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def presented_name(port, server_hostname):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with insecure_context().wrap_socket(raw, server_hostname=server_hostname) as tls:
            der = tls.getpeercert(binary_form=True)
    subject = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "multiline"],
                             input=ssl.DER_cert_to_PEM_cert(der).encode(), capture_output=True, timeout=60)
    return subject.stdout.decode().split("commonName", 1)[1].split("=", 1)[1].strip()


def test_sni_picks_the_certificate_of_the_host_the_client_asks_for(tmp_path):
    other_cert, other_key = make_certificate(tmp_path, "mail.other.test")
    wild_cert, wild_key = make_certificate(tmp_path, "wild.third.test")
    server = Tern(tmp_path, listeners={"pop3s": ("pop3", "implicit", False)}, extra=f"""
[[tls.host]]
name = "Mail.Other.Test"
cert = "{other_cert}"
key = "{other_key}"
[[tls.host]]
name = "*.third.test"
cert = "{wild_cert}"
key = "{wild_key}"
""")
    server.start()
    try:
        port = server.port("pop3s")
        assert presented_name(port, "mail.other.test") == "mail.other.test"
        assert presented_name(port, "imap.third.test") == "wild.third.test"
        assert presented_name(port, "mx.example.test") == "mx.example.test"
        assert presented_name(port, None) == "mx.example.test"
    finally:
        server.stop()


def test_a_tls_host_without_a_key_is_a_config_error(tmp_path):
    server = Tern(tmp_path, extra='[[tls.host]]\nname = "mail.other.test"\ncert = "/nonexistent.pem"\n')
    result = server.cli("config", "check", check=False)
    assert result.returncode == 2
    assert "tls.host[0].key: is required" in result.stderr
