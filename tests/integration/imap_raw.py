"""A raw IMAP client over TLS, for the tests that must see the server's exact bytes (imaplib hides them, and has no
IDLE before Python 3.14). Every read has a timeout: a server that does not answer fails the test, never hangs it."""

import re
import socket
import ssl

from conftest import ALICE, ALICE_PASSWORD, insecure_context

LITERAL = re.compile(rb"~?\{(\d+)\+?\}\r\n$")  # a line that ends in a literal (or a literal8) announces its octets


class ServerClosed(AssertionError):
    """The server closed the connection while the test waited for a reply."""


class RawImap:
    def __init__(self, server, timeout=10, login=False):
        raw = socket.create_connection(("127.0.0.1", server.port("imaps")), timeout=timeout)
        self.timeout = timeout
        self.sock = insecure_context().wrap_socket(raw, server_hostname="mx.example.test")
        self.stream = self.sock.makefile("rb")
        self.greeting = self.stream.readline()
        assert self.greeting.startswith(b"* OK"), self.greeting
        if login:
            reply, _ = self.command(f"a LOGIN {ALICE} {ALICE_PASSWORD}".encode())
            assert reply.startswith(b"a OK"), reply

    def readline(self):
        """One line, or AssertionError when none comes in time, ServerClosed when the connection ends."""
        try:
            line = self.stream.readline()
        except (TimeoutError, socket.timeout):
            raise AssertionError(f"no answer from the server within {self.timeout} s") from None
        except (ConnectionResetError, ssl.SSLError) as error:
            raise ServerClosed(f"connection ended: {error}") from None
        if not line:
            raise ServerClosed("the server closed the connection")
        return line

    def response(self):
        """One response: a line, with the literals it announces and the rest of the line after each joined in."""
        line = self.readline()
        while (literal := LITERAL.search(line)) is not None:
            line += self.stream.read(int(literal.group(1)))
            line += self.readline()
        return line

    def send(self, data):
        try:
            self.sock.sendall(data)
        except (TimeoutError, socket.timeout):
            raise AssertionError(f"the server took nothing more for {self.timeout} s") from None

    def command(self, line):
        """Sends `line` (its first word the tag) and returns the tagged reply and the untagged responses before it."""
        tag = line.split(b" ", 1)[0]
        self.send(line + b"\r\n")
        return self.until_tagged(tag)

    def until_tagged(self, tag):
        untagged = []
        while True:
            try:
                reply = self.response()
            except AssertionError as error:
                raise type(error)(f"{error}; waiting for {tag!r}, got {[line[:200] for line in untagged]}") from None
            if reply.startswith(tag + b" "):
                return reply, untagged
            untagged.append(reply)

    def append(self, mailbox, message, tag=b"ap"):
        """APPEND with a LITERAL+ literal; returns the tagged reply and the untagged responses."""
        self.send(tag + b" APPEND " + mailbox + b" {%d+}\r\n" % len(message) + message + b"\r\n")
        return self.until_tagged(tag)

    def until_closed(self):
        """Every line until the server closes the connection (AssertionError if it does not, in time)."""
        lines = []
        while True:
            try:
                lines.append(self.readline())
            except ServerClosed:
                return lines
            except AssertionError as error:
                last = [line[:200] for line in lines[-5:]]
                raise AssertionError(f"{error}; the connection stayed open after {last}") from None

    def close(self):
        self.sock.close()
