"""A model-checking IMAP stress client (issue 15): N clients on one mailbox, each with its own model of what the
server told it, every response parsed strictly and held against RFC 3501.

Raw sockets, not imaplib: imaplib hides what a checker needs (the order of untagged responses, literals, the
tagged reply's code). Each client runs in a thread and does a seeded random mix of SELECT/EXAMINE, NOOP, FETCH
and UID FETCH (FLAGS, BODY.PEEK[], BODYSTRUCTURE, ENVELOPE, header fields, UID ranges), STORE and UID STORE of
system flags and keywords, APPEND, EXPUNGE and UID EXPUNGE, IDLE (unless `idle` is off: it waits 0.1 to 0.8 s,
which the client chooses, so a benchmark leaves it out) and, when `logins` is on, LOGOUT and a new login.

What is checked is only what the RFCs guarantee, with the other sessions changing the mailbox at any time:

- every tagged reply is OK (FETCH of a message another session expunged included: the session's view serves it),
  within a timeout; no BYE but after LOGOUT, no connection closed under a client, nothing unparsable;
- sequence numbers: EXPUNGE n names an existing message and shifts the rest, EXISTS never shrinks the mailbox
  without EXPUNGE, no EXPUNGE while the server answers FETCH, STORE or SEARCH (RFC 3501 section 7.4.1);
- UIDs ascend in sequence order, a message that arrives has a UID above every UID its session saw, APPENDUID's
  UID is above every UID any client saw before the APPEND, UIDNEXT at SELECT is above the UIDs of that view, an
  expunged UID never comes back, UIDVALIDITY never changes, a FETCH's UID is the model's for that number;
- every flag in a FETCH's FLAGS was listed in the latest untagged FLAGS (RFC 3501 section 7.2.6; \\Recent aside);
- FETCH answers every message asked for with every item asked for, and a UID command's FETCH carries the UID;
- message content: BODY[], RFC822.SIZE, the Subject of ENVELOPE and of the header fields, and the shape of
  BODYSTRUCTURE are those of the message APPENDed under that UID (for a message marked \\Deleted, which another
  session may have expunged, other data is only noted: RFC 2180 section 4.1 lets servers differ there);
- flags, with ownership so that nothing is asserted that another session could have changed: every message is
  owned by one client (the one that APPENDed it, or one assigned by prepare_mailbox), and only the owner changes
  its OWNER_FLAGS, sets \\Deleted on it, or replaces its flags with STORE FLAGS. The others only add or remove
  NOISE_FLAGS. So the owner knows its messages' OWNER_FLAGS exactly: its non-silent STORE's FETCH shows them
  (and a change it made shows a FETCH), and every later FETCH FLAGS agrees (a lost update shows here). A message
  is only expunged after its owner marked it \\Deleted.

A tagged OK [EXPUNGEISSUED] that skipped messages another session expunged is noted, not counted as an error
(RFC 9051 allows it); a NO is an error. Dovecot 2.3 runs this mix without an error. The module has no pytest in
it: the integration test and the bench (tests/bench/imap_concurrency_bench.py) both call run_stress().
"""

import collections
import dataclasses
import random
import re
import socket
import threading
import time
import traceback

OWNER_FLAGS = ("\\Flagged", "\\Answered", "\\Draft", "$Label1", "$Label2", "$Label3", "$Label4", "Work",
               "Personal")
NOISE_FLAGS = ("\\Seen", "$Label5", "Junk", "NonJunk", "$Junk", "$NotJunk")
OWNER_SET = {flag.lower() for flag in OWNER_FLAGS}
WORDS = ("meeting report update project review team please thanks attached schedule budget server release build "
         "change design plan notes customer order invoice delivery question answer support ticket draft final "
         "office lunch agenda minutes travel contract account payment reminder deadline coffee summary").split()
HEADER_FIELDS = "BODY.PEEK[HEADER.FIELDS (From Subject Date)]"
LITERAL_AT_END = re.compile(rb"~?\{(\d+)\+?\}\Z")


# --- messages ------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Message:
    data: bytes
    subject: str
    multipart: bool


def make_message(rng, label):
    """A message with a unique Subject: plain text, multipart/alternative or multipart/mixed with an attachment."""
    subject = f"Stress {label} " + " ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 6)))
    text = "\r\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randrange(6, 12)))
                       for _ in range(rng.randrange(2, 30)))
    headers = [f"From: Stress Sender <sender{rng.randrange(100)}@remote.test>", "To: <alice@example.test>",
               f"Subject: {subject}", f"Date: Mon, 2 Mar 2026 10:{rng.randrange(60):02d}:00 +0000",
               f"Message-ID: <{label}.{rng.getrandbits(48):x}@remote.test>", "MIME-Version: 1.0"]
    kind = rng.random()
    if kind < 0.15:
        boundary = f"=_alt_{rng.getrandbits(32):x}"
        headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        body = (f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--{boundary}\r\n"
                f"Content-Type: text/html; charset=utf-8\r\n\r\n<p>{text}</p>\r\n--{boundary}--\r\n")
    elif kind < 0.30:
        boundary = f"=_mixed_{rng.getrandbits(32):x}"
        blob = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
                       for _ in range(76 * rng.randrange(2, 20)))
        lines = "\r\n".join(blob[i:i + 76] for i in range(0, len(blob), 76))
        headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
        body = (f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--{boundary}\r\n"
                f"Content-Type: application/octet-stream; name=\"{label}.bin\"\r\n"
                f"Content-Disposition: attachment; filename=\"{label}.bin\"\r\nContent-Transfer-Encoding: base64"
                f"\r\n\r\n{lines}\r\n--{boundary}--\r\n")
    else:
        headers.append("Content-Type: text/plain; charset=utf-8")
        body = text + "\r\n"
    return Message(("\r\n".join(headers) + "\r\n\r\n" + body).encode(), subject, kind < 0.30)


# --- parsing -------------------------------------------------------------------------------------------------

class ParseError(Exception):
    pass


class Hang(Exception):
    pass


class Closed(Exception):
    pass


class Parser:
    """IMAP data as the server writes it: atoms (str; a FETCH item's [section] and <partial> belong to it), quoted
    strings and literals (bytes), NIL (None), parenthesized lists (list). Strict: anything else is a ParseError."""

    def __init__(self, data, pos=0):
        self.data = data
        self.pos = pos

    def fail(self, what):
        raise ParseError(f"{what} at offset {self.pos} of {self.data[:160]!r}")

    def expect(self, token):
        if not self.data.startswith(token, self.pos):
            self.fail(f"expected {token!r}")
        self.pos += len(token)

    def at_end(self):
        return self.data[self.pos:] == b"\r\n"

    def end(self):
        if not self.at_end():
            self.fail("expected the end of the response")

    def atom(self):
        start, depth, data = self.pos, 0, self.data
        while self.pos < len(data):
            char = data[self.pos]
            if char == 0x5B:  # [
                depth += 1
            elif char == 0x5D:  # ]
                if depth == 0:
                    break
                depth -= 1
            elif char in b"\r\n" or (depth == 0 and char in b' ()"{'):
                break
            self.pos += 1
        if self.pos == start or depth:
            self.fail("expected an atom")
        return data[start:self.pos].decode("ascii", "replace")

    def number(self):
        text = self.atom()
        if not text.isdigit():
            self.fail(f"expected a number, not {text!r}")
        return int(text)

    def string(self):
        data = self.data
        if data.startswith(b'"', self.pos):
            out = bytearray()
            self.pos += 1
            while self.pos < len(data):
                char = data[self.pos]
                if char == 0x22:
                    self.pos += 1
                    return bytes(out)
                if char == 0x5C:
                    self.pos += 1
                    char = data[self.pos]
                    if char not in b'"\\':
                        self.fail("bad escape in a quoted string")
                elif char in b"\r\n":
                    break
                out.append(char)
                self.pos += 1
            self.fail("unterminated quoted string")
        match = re.compile(rb"~?\{(\d+)\}\r\n").match(data, self.pos)
        if not match:
            self.fail("expected a string")
        start = match.end()
        size = int(match.group(1))
        if start + size > len(data):
            self.fail("literal longer than the response")
        self.pos = start + size
        return data[start:self.pos]

    def value(self):
        char = self.data[self.pos:self.pos + 1]
        if char == b"(":
            return self.list()
        if char in (b'"', b"{") or self.data.startswith(b"~{", self.pos):
            return self.string()
        text = self.atom()
        return None if text.upper() == "NIL" else text

    def list(self):
        self.expect(b"(")
        items = []
        while not self.data.startswith(b")", self.pos):
            # The parts of a multipart BODYSTRUCTURE follow each other without a space (RFC 3501 body-type-mpart).
            if items and not (isinstance(items[-1], list) and self.data.startswith(b"(", self.pos)):
                self.expect(b" ")
            items.append(self.value())
        self.pos += 1
        return items

    def text(self):
        """The rest of the line, as str."""
        end = self.data.find(b"\r\n", self.pos)
        text = self.data[self.pos:end].decode("utf-8", "replace")
        self.pos = end
        return text

    def response_code(self):
        """[CODE args] after OK/NO/BAD/BYE, or None: (CODE, arguments: a list for PERMANENTFLAGS, else str)."""
        if not self.data.startswith(b"[", self.pos):
            return None
        self.pos += 1
        code = self.atom().upper()
        argument = None
        if self.data.startswith(b" ", self.pos):
            self.pos += 1
            if code in ("PERMANENTFLAGS", "BADCHARSET") and self.data.startswith(b"(", self.pos):
                argument = self.list()
            else:
                end = self.data.find(b"]", self.pos)
                if end < 0:
                    self.fail("unterminated response code")
                argument = self.data[self.pos:end].decode("ascii", "replace")
                self.pos = end
        self.expect(b"]")
        if self.data.startswith(b" ", self.pos):
            self.pos += 1
        return code, argument


def compact(numbers):
    """1,2,3,7 -> '1:3,7'."""
    numbers = sorted(numbers)
    parts, start = [], None
    for index, number in enumerate(numbers):
        if start is None:
            start = number
        if index + 1 == len(numbers) or numbers[index + 1] != number + 1:
            parts.append(f"{start}:{number}" if number != start else str(number))
            start = None
    return ",".join(parts)


# --- the connection ------------------------------------------------------------------------------------------

class Connection:
    """A socket that yields whole responses: a line with its literals, up to the CRLF that ends them."""

    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = bytearray()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as error:
            raise Closed(f"send failed: {error}") from error

    def fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Hang()
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(262144)
        except socket.timeout as error:
            raise Hang() from error
        except OSError as error:
            raise Closed(f"recv failed: {error}") from error
        if not chunk:
            raise Closed("the server closed the connection")
        self.buffer += chunk

    def response(self, deadline):
        scan = 0
        while True:
            end = self.buffer.find(b"\r\n", scan)
            if end < 0:
                self.fill(deadline)
                continue
            match = LITERAL_AT_END.search(bytes(self.buffer[max(scan, end - 24):end]))
            if match:
                need = end + 2 + int(match.group(1))
                while len(self.buffer) < need:
                    self.fill(deadline)
                scan = need
                continue
            data = bytes(self.buffer[:end + 2])
            del self.buffer[:end + 2]
            return data


# --- what the clients share ----------------------------------------------------------------------------------

class Shared:
    """What every client knows of the others, and the counts. Owners: UID -> client index; deleting: UIDs whose
    owner set or is setting \\Deleted; expunged: UID -> when a client first heard it was expunged."""

    def __init__(self, log):
        self.lock = threading.Lock()
        self.log = log
        self.commands = 0
        self.by_command = collections.Counter()
        self.latencies = collections.defaultdict(list)
        self.errors = collections.Counter()
        self.samples = {}
        self.distinct = collections.Counter()
        self.notes = collections.Counter()
        self.uidvalidity = None
        self.max_uid = 0
        self.owners = {}
        self.owned_flags = {}  # the initial OWNER_FLAGS of prepared messages: UID -> set (lower case)
        self.deleting = set()
        self.expunged = {}
        self.contents = {}

    def count(self, name, seconds):
        with self.lock:
            self.commands += 1
            self.by_command[name] += 1
            if name != "IDLE":  # its time is the client's choice
                self.latencies[name].append(seconds)

    def error(self, kind, text, key=None):
        """Counts an error of `kind`; its description is kept as a sample unless one like it (numbers aside, or the
        same `key`) is kept already."""
        key = (kind, key or re.sub(r"\d+", "N", text.split(": ", 1)[-1]))
        with self.lock:
            self.errors[kind] += 1
            if key not in self.samples and self.distinct[kind] < 20:
                self.samples[key] = text
                self.distinct[kind] += 1

    def note(self, text):
        with self.lock:
            self.notes[text] += 1

    def saw_uid(self, uid):
        with self.lock:
            self.max_uid = max(self.max_uid, uid)

    def saw_expunged(self, uid):
        with self.lock:
            self.expunged.setdefault(uid, time.monotonic())


@dataclasses.dataclass
class Slot:
    """One message of a session's view: its UID once known, the highest UID the view had seen when it arrived,
    its flags (lower case) as last reported."""
    uid: int = None
    floor: int = 0
    flags: frozenset = None


@dataclasses.dataclass
class Context:
    """The command being answered: what its responses are checked against."""
    name: str
    uid: bool = False
    fetch_items: tuple = ()          # FETCH item names expected in each target's response (upper case)
    targets: tuple = ()              # sequence numbers (FETCH) or UIDs (UID FETCH) that must be answered
    got: dict = dataclasses.field(default_factory=dict)              # target -> FETCH item keys answered
    store_targets: dict = dataclasses.field(default_factory=dict)    # UID -> OWNER_FLAGS the STORE leaves
    store_seen: dict = dataclasses.field(default_factory=dict)       # UID -> OWNER_FLAGS of the last FETCH
    store_uid_seen: set = dataclasses.field(default_factory=set)     # UIDs whose FETCH carried the UID
    select_seen: set = dataclasses.field(default_factory=set)        # FLAGS, UIDVALIDITY during SELECT
    expunged: set = dataclasses.field(default_factory=set)           # UIDs expunged during the command
    expunges: int = 0
    uidnext: int = None
    code: tuple = None
    continuation: bool = False
    started: float = dataclasses.field(default_factory=time.monotonic)


class Broken(Exception):
    """The session cannot go on (a hang, a closed connection, an unexpected BYE): the client connects again."""


def item_key(name):
    """A FETCH item as asked or as answered, in one spelling: BODY.PEEK[...] is answered as BODY[...]."""
    return " ".join(name.upper().replace(".PEEK[", "[").split())


def flag_list(value):
    if not isinstance(value, list) or not all(isinstance(flag, str) for flag in value):
        raise ParseError(f"a flag list that is not a list of atoms: {value!r}")
    return value


# --- one client ----------------------------------------------------------------------------------------------

class Client:
    """One simulated user agent: one connection at a time, its model of the selected mailbox, its owned messages
    (UID -> its OWNER_FLAGS, lower case)."""

    def __init__(self, index, settings, shared):
        self.index = index
        self.settings = settings
        self.shared = shared
        self.rng = random.Random(f"{settings.seed}-{index}")
        self.conn = None
        self.serial = 0
        self.capabilities = set()
        self.selected = False
        self.read_only = False
        self.resync = False
        self.slots = []
        self.announced = set()
        self.view_max = 0
        self.view_started = 0.0
        self.appended = 0
        self.owned = {uid: set(flags) for uid, flags in shared.owned_flags.items()
                      if shared.owners.get(uid) == index}

    def error(self, kind, text, key=None):
        self.shared.error(kind, f"client {self.index}: {text}", key)

    # --- the loop ---

    def run(self):
        while time.monotonic() < self.settings.deadline:
            try:
                if self.conn is None:
                    self.connect()
                elif self.resync or not self.selected:
                    self.select(examine=self.rng.random() < 0.15)
                else:
                    self.step()
            except Broken:
                self.drop()
                time.sleep(0.05)
            except OSError as failure:
                self.error("connect", f"cannot connect: {failure}")
                self.drop()
                time.sleep(0.5)
            except Exception as failure:  # a fault of this checker: counted, so that it is seen and fixed
                line = traceback.extract_tb(failure.__traceback__)[-1].lineno
                self.error("checker", f"{type(failure).__name__} at line {line}: {failure}")
                self.drop()
        if self.conn is not None:
            try:
                self.command("LOGOUT")
            except Broken:
                pass
            self.drop()

    def drop(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        self.selected = False

    def connect(self):
        self.conn = Connection(self.settings.host, self.settings.port, self.settings.timeout)
        deadline = time.monotonic() + self.settings.timeout
        try:
            greeting = self.conn.response(deadline)
        except (Hang, Closed) as failure:
            self.error("greeting", f"no greeting: {type(failure).__name__} {failure}")
            raise Broken() from failure
        if not greeting.startswith(b"* OK"):
            self.error("greeting", f"greeting {greeting[:120]!r}")
            raise Broken()
        status, code, _ = self.command(f'LOGIN "{self.settings.user}" "{self.settings.password}"')
        if status != "OK":
            raise Broken()
        # What a server offers may change at login: the capabilities are those after it.
        if not code or code[0] != "CAPABILITY":
            self.command("CAPABILITY")
        self.select(examine=self.rng.random() < 0.15)

    # --- commands and responses ---

    def next_tag(self):
        self.serial += 1
        return f"c{self.index}x{self.serial}"

    def command(self, text, ctx=None, literal=None):
        """Sends a command (with `literal` after it, synchronizing or LITERAL+ at random) and reads up to its
        tagged reply, handling every untagged response on the way. Returns (status, code, text)."""
        ctx = ctx or Context(" ".join(text.split(" ", 2)[:2 if text.startswith("UID ") else 1]).upper())
        tag = self.next_tag()
        deadline = time.monotonic() + self.settings.timeout
        line = f"{tag} {text}".encode()
        if literal is None:
            self.conn.send(line + b"\r\n")
        else:
            plus = "LITERAL+" in self.capabilities and self.rng.random() < 0.5
            self.conn.send(line + f" {{{len(literal)}{'+' if plus else ''}}}\r\n".encode())
            if not plus:
                ctx.continuation = True
                reply = self.read_until(tag, ctx, deadline)
                if reply is not None:
                    return reply
            self.conn.send(literal + b"\r\n")
        return self.read_until(tag, ctx, deadline)

    def read(self, ctx, deadline):
        try:
            return self.conn.response(deadline)
        except Hang as failure:
            self.error("hang", f"no tagged reply to {ctx.name} within {self.settings.timeout:.0f} s")
            raise Broken() from failure
        except Closed as failure:
            self.error("disconnect", f"connection lost during {ctx.name}: {failure}")
            raise Broken() from failure

    def read_until(self, tag, ctx, deadline):
        """Reads to the tagged reply; with ctx.continuation set, returns None at a continuation request instead."""
        prefix = tag.encode() + b" "
        while True:
            raw = self.read(ctx, deadline)
            if raw.startswith(b"* "):
                self.untagged(raw, ctx)
            elif raw.startswith(b"+"):
                if not ctx.continuation:
                    self.error("unexpected", f"continuation request during {ctx.name}: {raw[:80]!r}")
                    raise Broken()
                ctx.continuation = False
                return None
            elif raw.startswith(prefix):
                return self.tagged(raw, prefix, ctx)
            else:
                self.error("unparsable", f"during {ctx.name}, a line that is neither untagged nor ours: {raw[:120]!r}")
                raise Broken()

    def tagged(self, raw, prefix, ctx):
        parser = Parser(raw, len(prefix))
        try:
            status = parser.atom().upper()
            if status not in ("OK", "NO", "BAD"):
                parser.fail("expected OK, NO or BAD")
            parser.expect(b" ")
            code = parser.response_code()
            text = parser.text()
        except ParseError as failure:
            self.error("unparsable", f"tagged reply to {ctx.name}: {failure}")
            raise Broken() from failure
        self.shared.count(ctx.name, time.monotonic() - ctx.started)
        ctx.code = code
        if code and code[0] == "CAPABILITY" and code[1]:
            self.capabilities = set(code[1].upper().split())
        if status != "OK":
            kind = ("fetch-" if ctx.name in ("FETCH", "UID FETCH") else "tagged-") + status.lower()
            shown = f"[{code[0]}{' ' + str(code[1]) if code[1] else ''}] " if code else ""
            self.error(kind, f"{ctx.name} answered {status} {shown}{text[:100]}")
        return status, code, text

    def untagged(self, raw, ctx):
        try:
            self.dispatch(raw, ctx)
        except ParseError as failure:
            self.error("unparsable", f"untagged response during {ctx.name}: {failure}")
            self.resync = True

    def dispatch(self, raw, ctx):
        parser = Parser(raw, 2)
        if raw[2:3].isdigit():
            number = parser.number()
            parser.expect(b" ")
            word = parser.atom().upper()
            if word == "FETCH":
                parser.expect(b" ")
                items = parser.list()
                parser.end()
                self.on_fetch(number, items, ctx)
                return
            parser.end()
            if word == "EXISTS":
                self.on_exists(number, ctx)
            elif word == "EXPUNGE":
                self.on_expunge(number, ctx)
            elif word != "RECENT":
                parser.fail(f"unknown numbered response {word}")
            return
        word = parser.atom().upper()
        if word in ("OK", "NO", "BAD", "BYE", "PREAUTH"):
            if parser.data.startswith(b" ", parser.pos):
                parser.pos += 1
            code = parser.response_code()
            text = parser.text()
            self.on_condition(word, code, text, ctx)
        elif word == "FLAGS":
            parser.expect(b" ")
            flags = flag_list(parser.list())
            parser.end()
            self.announced = {flag.lower() for flag in flags}
            ctx.select_seen.add("FLAGS")
        elif word == "CAPABILITY":
            self.capabilities = set(parser.text().upper().split())
        elif word == "VANISHED":
            self.error("vanished", f"VANISHED without QRESYNC enabled, during {ctx.name}: {raw[:100]!r}")
            self.resync = True
        elif word not in ("LIST", "LSUB", "STATUS", "SEARCH", "ESEARCH", "ENABLED", "ID", "NAMESPACE", "SORT",
                          "THREAD", "QUOTA", "QUOTAROOT"):
            parser.fail(f"unknown untagged response {word}")

    def on_condition(self, word, code, text, ctx):
        if word == "BYE":
            if ctx.name != "LOGOUT":
                self.error("bye", f"BYE during {ctx.name}: {text[:100]}")
                raise Broken()
            return
        if word == "BAD":
            self.error("untagged-bad", f"* BAD during {ctx.name}: {text[:100]}")
            return
        if word == "NO":
            self.shared.note(f"* NO {code[0] if code else ''} during {ctx.name}")
        if not code:
            return
        name, argument = code
        if name in ("UIDVALIDITY", "UIDNEXT") and not (isinstance(argument, str) and argument.isdigit()):
            raise ParseError(f"[{name} {argument!r}]")
        if name == "UIDVALIDITY":
            value = int(argument)
            with self.shared.lock:
                known = self.shared.uidvalidity
                if known is None:
                    self.shared.uidvalidity = known = value
            if value != known:
                self.error("uidvalidity", f"UIDVALIDITY {value}, earlier {known}")
            ctx.select_seen.add("UIDVALIDITY")
        elif name == "UIDNEXT":
            ctx.uidnext = int(argument)
        elif name == "PERMANENTFLAGS":
            flag_list(argument)

    # --- the model ---

    def on_exists(self, number, ctx):
        if number < len(self.slots):
            self.error("exists-shrink", f"* {number} EXISTS during {ctx.name}, but the session holds "
                                        f"{len(self.slots)} messages and heard no EXPUNGE of them")
            self.resync = True
            return
        self.slots.extend(Slot(floor=self.view_max) for _ in range(number - len(self.slots)))

    def on_expunge(self, number, ctx):
        if not 1 <= number <= len(self.slots):
            self.error("expunge-range", f"* {number} EXPUNGE during {ctx.name}, the session holds "
                                        f"{len(self.slots)} messages")
            self.resync = True
            return
        if ctx.name in ("FETCH", "STORE", "SEARCH"):
            self.error("expunge-during", f"* {number} EXPUNGE while answering {ctx.name} (RFC 3501 7.4.1)")
        slot = self.slots.pop(number - 1)
        ctx.expunges += 1
        if slot.uid is None:
            return
        ctx.expunged.add(slot.uid)
        self.shared.saw_expunged(slot.uid)
        self.owned.pop(slot.uid, None)
        owner = self.shared.owners.get(slot.uid)
        if owner is not None and slot.uid not in self.shared.deleting:
            self.error("expunged-undeleted", f"UID {slot.uid} (client {owner}'s) was expunged during {ctx.name}, "
                                             "but its owner never set \\Deleted on it")

    def learn_uid(self, seq, uid, ctx):
        slot = self.slots[seq - 1]
        if slot.uid == uid:
            return
        if slot.uid is not None:
            self.error("uid-mismatch", f"* {seq} FETCH (UID {uid}) during {ctx.name}, the model has UID {slot.uid}")
            self.resync = True
            return
        if uid <= slot.floor:
            self.error("uid-not-new", f"message {seq} arrived after UID {slot.floor} was seen, but has UID {uid}")
        for index in range(seq - 2, -1, -1):
            if self.slots[index].uid is not None:
                if self.slots[index].uid >= uid:
                    self.error("uid-order", f"UID {uid} at {seq} is not above UID {self.slots[index].uid} at "
                                            f"{index + 1}")
                break
        for index in range(seq, len(self.slots)):
            if self.slots[index].uid is not None:
                if self.slots[index].uid <= uid:
                    self.error("uid-order", f"UID {uid} at {seq} is not below UID {self.slots[index].uid} at "
                                            f"{index + 1}")
                break
        gone = self.shared.expunged.get(uid)
        if gone is not None and gone < self.view_started:
            self.error("uid-reused", f"UID {uid} is in a view selected {self.view_started - gone:.2f} s after a "
                                     "client heard it was expunged")
        slot.uid = uid
        self.view_max = max(self.view_max, uid)
        self.shared.saw_uid(uid)

    def on_fetch(self, seq, pairs, ctx):
        if len(pairs) % 2 or not all(isinstance(name, str) for name in pairs[::2]):
            raise ParseError(f"FETCH items are not name/value pairs: {pairs!r:.120}")
        items = {item_key(name): value for name, value in zip(pairs[::2], pairs[1::2])}
        if not 1 <= seq <= len(self.slots):
            self.error("fetch-range", f"* {seq} FETCH during {ctx.name}, the session holds {len(self.slots)} messages")
            self.resync = True
            return
        slot = self.slots[seq - 1]
        if "UID" in items:
            if not isinstance(items["UID"], str) or not items["UID"].isdigit():
                raise ParseError(f"UID {items['UID']!r}")
            self.learn_uid(seq, int(items["UID"]), ctx)
        uid = slot.uid
        if "FLAGS" in items:
            self.check_flags(slot, uid, flag_list(items["FLAGS"]), "UID" in items, ctx)
        if uid is not None:
            self.check_content(uid, items, ctx)
        key = uid if ctx.uid else seq
        if key is not None:
            ctx.got.setdefault(key, set()).update(items)

    def check_flags(self, slot, uid, flags, with_uid, ctx):
        lower = {flag.lower() for flag in flags}
        missing = sorted(flag for flag in flags if flag.lower() != "\\recent" and flag.lower() not in self.announced)
        if missing:
            self.error("flags-unannounced", f"FETCH FLAGS during {ctx.name} has {' '.join(missing)}, not in the "
                                            f"last untagged FLAGS ({' '.join(sorted(self.announced))})", ctx.name)
        slot.flags = frozenset(lower)
        if uid is None:
            return
        mine = lower & OWNER_SET
        if uid in ctx.store_targets:
            ctx.store_seen[uid] = mine
            if with_uid:
                ctx.store_uid_seen.add(uid)
        elif uid in self.owned and mine != self.owned[uid]:
            self.error("owner-flags", f"FETCH during {ctx.name}: its own UID {uid} shows ({' '.join(sorted(mine))}), "
                                      f"it left ({' '.join(sorted(self.owned[uid]))}) and no one else changes those")
            del self.owned[uid]

    def content_error(self, uid, item, text):
        """What a server answers for a message another session expunged varies (RFC 2180 section 4.1: some give
        empty data); a message is only expunged after its owner marked it \\Deleted, so only then is it a note."""
        if uid in self.shared.deleting:
            self.shared.note(f"{item} not the message's, for a message marked \\Deleted (maybe expunged)")
        else:
            self.error("content", text)

    def check_content(self, uid, items, ctx):
        message = self.shared.contents.get(uid)
        if message is None:
            return
        where = f"{ctx.name}: UID {uid}"
        body = items.get("BODY[]")
        if body is not None and body != message.data:
            size = len(body) if isinstance(body, bytes) else body
            self.content_error(uid, "BODY[]", f"{where}: BODY[] is {size} octets, not the {len(message.data)} APPENDed")
        size = items.get("RFC822.SIZE")
        if size is not None and size != str(len(message.data)):
            self.content_error(uid, "RFC822.SIZE", f"{where}: RFC822.SIZE is {size}, not {len(message.data)}")
        envelope = items.get("ENVELOPE")
        if envelope is not None:
            if not isinstance(envelope, list) or len(envelope) != 10:
                self.content_error(uid, "ENVELOPE", f"{where}: ENVELOPE is {envelope!r:.80}")
            elif envelope[1] != message.subject.encode():
                self.content_error(uid, "ENVELOPE", f"{where}: ENVELOPE subject is {envelope[1]!r}, not "
                                                    f"{message.subject!r}")
        fields = items.get(item_key(HEADER_FIELDS))
        if fields is not None:
            lines = fields.replace(b"\r\n ", b" ").split(b"\r\n") if isinstance(fields, bytes) else []
            names = {line.split(b":", 1)[0].strip().lower() for line in lines if line}
            if f"Subject: {message.subject}".encode() not in lines or not names <= {b"from", b"subject", b"date"}:
                self.content_error(uid, "header fields", f"{where}: the header fields are {fields!r:.160}")
        structure = items.get("BODYSTRUCTURE")
        if structure is not None:
            if not isinstance(structure, list) or not structure:
                self.content_error(uid, "BODYSTRUCTURE", f"{where}: BODYSTRUCTURE is {structure!r:.80}")
            elif isinstance(structure[0], list) != message.multipart:
                self.content_error(uid, "BODYSTRUCTURE", f"{where}: BODYSTRUCTURE is {'not ' * message.multipart}"
                                                         f"multipart, the message is{' not' * (not message.multipart)}")

    # --- SELECT and the first look ---

    def select(self, examine=False):
        name = "EXAMINE" if examine else "SELECT"
        self.slots, self.announced, self.view_max = [], set(), 0
        self.selected, self.resync = False, False
        self.view_started = time.monotonic()
        ctx = Context(name)
        status, code, _ = self.command(f"{name} INBOX", ctx)
        if status != "OK":
            raise Broken()
        uidnext = ctx.uidnext
        missing = {"FLAGS", "UIDVALIDITY"} - ctx.select_seen
        if missing:
            self.error("select", f"{name} answered OK without {' and '.join(sorted(missing))}")
        if examine and (not code or code[0] != "READ-ONLY"):
            self.error("select", f"EXAMINE's tagged OK has no [READ-ONLY] (RFC 3501 6.3.2): {code}")
        self.selected, self.read_only = True, examine
        initial = len(self.slots)
        if initial == 0:
            return
        # What a client does after SELECT: learns the UIDs and flags of the messages.
        if self.rng.random() < 0.5:
            ctx = Context("FETCH", fetch_items=("UID", "FLAGS"), targets=tuple(range(1, initial + 1)))
            self.fetch_command("FETCH 1:* (UID FLAGS)", ctx)
        else:
            ctx = Context("UID FETCH", uid=True, fetch_items=("UID", "FLAGS"))
            self.fetch_command("UID FETCH 1:* (FLAGS)", ctx)
        survivors = self.slots[:initial - ctx.expunges]
        known = [slot.uid for slot in survivors if slot.uid is not None]
        if len(known) < len(survivors):
            self.error("missing-fetch", f"{ctx.name} 1:* after {name} told {len(known)} of {initial} UIDs")
        if known and uidnext is not None and max(known) >= uidnext:
            self.error("uidnext", f"{name} said UIDNEXT {uidnext}, but its view holds UID {max(known)}")

    # --- the mix ---

    def step(self):
        rng = self.rng
        owned = [(seq, slot.uid) for seq, slot in enumerate(self.slots, 1) if slot.uid in self.owned]
        writable = not self.read_only
        crowded = len(self.slots) / max(self.settings.initial, 20)
        choices = [
            (self.noop, 8),
            (self.fetch, 30),
            (self.uid_fetch, 10),
            (self.store_own, 14 if writable and owned else 0),
            (self.store_noise, 10 if writable and self.slots else 0),
            (self.append, 7),
            (self.delete, (5 * crowded) if writable and owned else 0),
            (self.idle, 3 if self.settings.idle and "IDLE" in self.capabilities else 0),
            (self.reselect, 3),
            (self.relogin, 2 if self.settings.logins else 0),
        ]
        action = rng.choices([choice for choice, _ in choices], [weight for _, weight in choices])[0]
        if action in (self.store_own, self.delete):
            action(owned)
        else:
            action()

    def fetch_command(self, text, ctx):
        """A FETCH or UID FETCH: every target must be answered with every item asked, unless the reply says some
        were skipped as expunged ([EXPUNGEISSUED] on an OK: noted) or a target was expunged meanwhile."""
        status, code, _ = self.command(text, ctx)
        if status != "OK":
            return
        if code and code[0] == "EXPUNGEISSUED":
            self.shared.note(f"{ctx.name} answered OK [EXPUNGEISSUED]")
            return
        wanted = set(ctx.fetch_items)
        if ctx.uid:
            present = {slot.uid for slot in self.slots}
            targets = [uid for uid in ctx.targets if uid in present]
        elif ctx.expunges:
            return  # already an error: the sequence numbers asked for moved
        else:
            targets = ctx.targets
        for key in targets:
            lacking = wanted - ctx.got.get(key, set())
            if lacking:
                self.error("missing-fetch", f"{text}: no {' '.join(sorted(lacking))} for "
                                            f"{'UID' if ctx.uid else 'message'} {key}")

    def noop(self):
        self.command("NOOP")
        unknown = [seq for seq, slot in enumerate(self.slots, 1) if slot.uid is None]
        if unknown and self.rng.random() < 0.7:
            ctx = Context("FETCH", fetch_items=("UID", "FLAGS"), targets=tuple(unknown))
            self.fetch_command(f"FETCH {compact(unknown)} (UID FLAGS)", ctx)

    def fetch(self):
        rng, count = self.rng, len(self.slots)
        if not count:
            return self.noop()
        start = rng.randrange(1, count + 1)
        end = start if rng.random() < 0.7 else min(count, start + rng.randrange(1, 6))
        variants = [("FLAGS",), ("UID", "FLAGS"), ("UID", "BODY.PEEK[]"), ("UID", "BODYSTRUCTURE"),
                    ("UID", "ENVELOPE", "RFC822.SIZE"), ("UID", HEADER_FIELDS), ("UID", "FLAGS", "INTERNALDATE")]
        if not self.read_only and rng.random() < 0.1:
            variants = [("UID", "BODY[]")]  # sets \Seen, one of the flags anyone may change
        items = rng.choice(variants)
        ctx = Context("FETCH", fetch_items=tuple(item_key(item) for item in items),
                      targets=tuple(range(start, end + 1)))
        numbers = str(start) if start == end else f"{start}:{end}"
        self.fetch_command(f"FETCH {numbers} ({' '.join(items)})", ctx)

    def uid_fetch(self):
        rng = self.rng
        known = [slot.uid for slot in self.slots if slot.uid is not None]
        if not known:
            return self.noop()
        first = rng.randrange(len(known))
        last = min(len(known) - 1, first + rng.randrange(0, 8))
        if rng.random() < 0.2:
            uids, targets = f"{known[first]}:*", known[first:]
        else:
            uids, targets = f"{known[first]}:{known[last]}", known[first:last + 1]
        items = rng.choice([("FLAGS",), ("FLAGS", "INTERNALDATE"), ("BODY.PEEK[]",), (HEADER_FIELDS,),
                            ("ENVELOPE",), ("RFC822.SIZE", "FLAGS")])
        ctx = Context("UID FETCH", uid=True, fetch_items=("UID",) + tuple(item_key(item) for item in items),
                      targets=tuple(targets))
        self.fetch_command(f"UID FETCH {uids} ({' '.join(items)})", ctx)

    def store_own(self, owned):
        """STORE on messages this client owns: it knows what their OWNER_FLAGS become, and checks the reply."""
        rng = self.rng
        picks = rng.sample(owned, 1 if rng.random() < 0.8 else min(len(owned), rng.randrange(2, 4)))
        mode = rng.choices(["+", "-", ""], [4, 3, 2])[0]
        if mode == "+":
            flags = rng.sample(OWNER_FLAGS, rng.randrange(1, 3)) + rng.sample(NOISE_FLAGS, int(rng.random() < 0.3))
        elif mode == "-":
            have = sorted(set().union(*(self.owned[uid] for _, uid in picks)))
            pool = [flag for flag in OWNER_FLAGS if flag.lower() in have] if have and rng.random() < 0.7 else []
            flags = rng.sample(pool or list(OWNER_FLAGS), min(len(pool or OWNER_FLAGS), rng.randrange(1, 3)))
        else:
            flags = rng.sample(OWNER_FLAGS, rng.randrange(0, 4)) + rng.sample(NOISE_FLAGS, int(rng.random() < 0.5))
        part = {flag.lower() for flag in flags} & OWNER_SET
        before = {uid: set(self.owned[uid]) for _, uid in picks}
        after = {uid: (old | part if mode == "+" else old - part if mode == "-" else set(part))
                 for uid, old in before.items()}
        silent = rng.random() < 0.3
        by_uid = rng.random() < 0.5
        numbers = compact(before) if by_uid else compact(seq for seq, _ in picks)
        text = (f"{'UID ' if by_uid else ''}STORE {numbers} {mode}FLAGS{'.SILENT' if silent else ''} "
                f"({' '.join(flags)})")
        ctx = Context("UID STORE" if by_uid else "STORE", uid=by_uid, store_targets=after)
        try:
            status, _, _ = self.command(text, ctx)
        except Broken:
            for uid in after:  # whether the server stored the flags is not known
                self.owned.pop(uid, None)
            raise
        for uid, new in after.items():
            if status != "OK" or uid not in self.owned:
                self.owned.pop(uid, None)  # not known any more
                continue
            self.owned[uid] = new
            if silent:
                continue
            seen = ctx.store_seen.get(uid)
            if seen is None:
                if new != before[uid]:
                    self.error("store-no-fetch", f"{text}: no FETCH for UID {uid}, whose flags it changed")
            elif seen != new:
                self.error("store-not-reflected", f"{text}: the FETCH of UID {uid} shows ({' '.join(sorted(seen))})"
                                                  f", the STORE leaves ({' '.join(sorted(new))})")
                del self.owned[uid]
            elif by_uid and uid not in ctx.store_uid_seen:
                self.error("uid-missing", f"{text}: the FETCH of UID {uid} lacks the UID (RFC 3501 6.4.8)")

    def store_noise(self):
        """+FLAGS or -FLAGS of NOISE_FLAGS on any messages: what every other client may do at any time."""
        rng = self.rng
        known = [slot.uid for slot in self.slots if slot.uid is not None]
        flags = rng.sample(NOISE_FLAGS, rng.randrange(1, 3))
        item = f"{rng.choice('+-')}FLAGS{'.SILENT' if rng.random() < 0.4 else ''} ({' '.join(flags)})"
        if known and rng.random() < 0.5:
            self.command(f"UID STORE {compact(rng.sample(known, min(len(known), rng.randrange(1, 4))))} {item}",
                         Context("UID STORE", uid=True))
        else:
            start = rng.randrange(1, len(self.slots) + 1)
            end = start if rng.random() < 0.7 else min(len(self.slots), start + rng.randrange(1, 6))
            self.command(f"STORE {start if start == end else f'{start}:{end}'} {item}", Context("STORE"))

    def delete(self, owned):
        """\\Deleted on one of its messages, then UID EXPUNGE of it or EXPUNGE: it must be gone after."""
        rng = self.rng
        seq, uid = rng.choice(owned)
        del self.owned[uid]
        self.shared.deleting.add(uid)
        if rng.random() < 0.5:
            status, _, _ = self.command(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)", Context("UID STORE", uid=True))
        else:
            status, _, _ = self.command(f"STORE {seq} +FLAGS{'.SILENT' if rng.random() < 0.5 else ''} (\\Deleted)")
        if status != "OK":
            return
        text = f"UID EXPUNGE {uid}" if "UIDPLUS" in self.capabilities and rng.random() < 0.6 else "EXPUNGE"
        status, _, _ = self.command(text)
        if status == "OK" and any(slot.uid == uid for slot in self.slots):
            self.error("expunge-left", f"{text} completed, but UID {uid}, which it marked \\Deleted, is still in "
                                       "the session's view")

    def append(self):
        rng = self.rng
        self.appended += 1
        message = make_message(rng, f"c{self.index}-{self.appended}")
        flags = rng.sample(OWNER_FLAGS, rng.randrange(0, 4)) + rng.sample(NOISE_FLAGS, int(rng.random() < 0.3))
        date = ' "02-Mar-2026 10:11:12 +0000"' if rng.random() < 0.3 else ""
        before = self.shared.max_uid
        status, code, _ = self.command(f"APPEND INBOX ({' '.join(flags)}){date}", Context("APPEND"),
                                       literal=message.data)
        if status != "OK":
            return
        if not code or code[0] != "APPENDUID":
            self.shared.note("APPEND without APPENDUID")
            return
        validity, uid = (int(value) for value in code[1].split())
        if validity != self.shared.uidvalidity:
            self.error("uidvalidity", f"APPENDUID {validity} {uid}, but UIDVALIDITY is {self.shared.uidvalidity}")
        if uid <= before:
            self.error("appenduid", f"APPENDUID gave UID {uid}, not above UID {before} seen before the APPEND")
        self.shared.contents[uid] = message
        self.shared.owners[uid] = self.index
        self.owned[uid] = {flag.lower() for flag in flags} & OWNER_SET
        self.shared.saw_uid(uid)

    def idle(self):
        ctx = Context("IDLE", continuation=True)
        tag = self.next_tag()
        self.conn.send(f"{tag} IDLE\r\n".encode())
        if self.read_until(tag, ctx, time.monotonic() + self.settings.timeout) is not None:
            return  # refused: counted already
        end = time.monotonic() + self.rng.uniform(0.1, 0.8)
        while True:
            try:
                raw = self.conn.response(end)
            except Hang:
                break
            except Closed as failure:
                self.error("disconnect", f"connection lost during IDLE: {failure}")
                raise Broken() from failure
            if not raw.startswith(b"* "):
                self.error("unexpected", f"during IDLE: {raw[:100]!r}")
                raise Broken()
            self.untagged(raw, ctx)
        self.conn.send(b"DONE\r\n")
        self.read_until(tag, ctx, time.monotonic() + self.settings.timeout)

    def reselect(self):
        self.select(examine=self.rng.random() < 0.2)

    def relogin(self):
        self.command("LOGOUT")
        self.drop()


# --- running them --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Settings:
    host: str
    port: int
    user: str
    password: str
    timeout: float
    logins: bool
    deadline: float
    seed: int
    initial: int
    idle: bool = True  # IDLE in the mix


@dataclasses.dataclass
class Prepared:
    """What prepare_mailbox() APPENDed: UIDVALIDITY and (UID, Message, flags) for each message."""
    uidvalidity: int
    messages: list


@dataclasses.dataclass
class Result:
    commands: int
    errors: int
    error_samples: list
    elapsed: float
    kinds: dict
    notes: dict
    by_command: dict
    seed: int
    latency: dict = dataclasses.field(default_factory=dict)  # command -> (median, 90th percentile) in seconds

    @property
    def rate(self):
        return self.commands / self.elapsed if self.elapsed else 0.0

    def summary(self):
        lines = [f"imap_stress: {self.commands} commands in {self.elapsed:.1f} s ({self.rate:.0f}/s), seed "
                 f"{self.seed}; {self.errors} protocol errors"]
        if self.kinds:
            lines.append("  errors by kind: " + ", ".join(f"{kind} {count}" for kind, count in
                                                          sorted(self.kinds.items(), key=lambda item: -item[1])))
        lines += [f"  - {sample}" for sample in self.error_samples]
        if self.notes:
            lines.append("  notes (allowed, not errors): " + "; ".join(f"{text}: {count}" for text, count in
                                                                       sorted(self.notes.items())))
        return "\n".join(lines)


class Simple:
    """A plain sequential session for preparing the mailbox: every reply must be OK, untagged lines are kept."""

    def __init__(self, host, port, user, password, timeout):
        self.conn = Connection(host, port, timeout)
        self.timeout = timeout
        self.serial = 0
        greeting = self.conn.response(time.monotonic() + timeout)
        if not greeting.startswith(b"* OK"):
            raise RuntimeError(f"greeting {greeting[:100]!r}")
        self.command(f'LOGIN "{user}" "{password}"')
        self.capabilities = set()
        for line in self.command("CAPABILITY")[1]:
            if line.startswith(b"* CAPABILITY "):
                self.capabilities = set(line[13:].decode().upper().split())

    def command(self, text, literal=None):
        self.serial += 1
        tag = f"p{self.serial}".encode()
        deadline = time.monotonic() + self.timeout
        if literal is None:
            self.conn.send(tag + b" " + text.encode() + b"\r\n")
        else:
            plus = "LITERAL+" in self.capabilities
            self.conn.send(tag + b" " + text.encode() + f" {{{len(literal)}{'+' if plus else ''}}}\r\n".encode())
            if not plus:
                reply = self.conn.response(deadline)
                if not reply.startswith(b"+"):
                    raise RuntimeError(f"{text} answered {reply[:100]!r}")
            self.conn.send(literal + b"\r\n")
        lines = []
        while True:
            reply = self.conn.response(deadline)
            if reply.startswith(tag + b" "):
                if not reply.startswith(tag + b" OK"):
                    raise RuntimeError(f"{text[:60]} answered {reply[:200]!r}")
                return reply, lines
            lines.append(reply)

    def close(self):
        try:
            self.command("LOGOUT")
        except (RuntimeError, Hang, Closed):
            pass
        self.conn.close()


def prepare_mailbox(host, port, user, password, count=50, seed=0, timeout=10, empty=True):
    """Empties the INBOX (when `empty`) and APPENDs `count` messages, some multipart, with some flags and keywords.
    Returns a Prepared, whose messages run_stress() shares out among its clients."""
    rng = random.Random(f"{seed}-prepare")
    session = Simple(host, port, user, password, timeout)
    try:
        _, lines = session.command("SELECT INBOX")
        uidvalidity = next(int(re.search(rb"UIDVALIDITY (\d+)", line).group(1)) for line in lines
                           if b"[UIDVALIDITY " in line)
        exists = [int(line.split()[1]) for line in lines if line.endswith(b" EXISTS\r\n")]
        if empty and exists and exists[-1]:
            session.command("STORE 1:* +FLAGS.SILENT (\\Deleted)")
            session.command("EXPUNGE")
        messages = []
        for number in range(count):
            message = make_message(rng, f"p{number}")
            flags = rng.sample(OWNER_FLAGS, rng.randrange(0, 3)) + rng.sample(NOISE_FLAGS, rng.randrange(0, 2))
            reply, _ = session.command(f"APPEND INBOX ({' '.join(flags)})", literal=message.data)
            found = re.search(rb"\[APPENDUID (\d+) (\d+)\]", reply)
            if not found:
                raise RuntimeError(f"APPEND answered {reply[:100]!r}: no APPENDUID (UIDPLUS)")
            messages.append((int(found.group(2)), message, flags))
    finally:
        session.close()
    return Prepared(uidvalidity, messages)


def percentiles(values):
    """(median, 90th percentile) of a list of durations."""
    ordered = sorted(values)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def spread(samples, count):
    """Up to `count` of the distinct descriptions, (kind, text) -> text, taken in turn from each kind so that one
    frequent kind does not hide the others."""
    by_kind = {}
    for (kind, _), text in samples.items():
        by_kind.setdefault(kind, []).append(text)
    chosen = []
    for rank in range(count):
        for texts in by_kind.values():
            if rank < len(texts) and len(chosen) < count:
                chosen.append(texts[rank])
    return chosen


def run_stress(host, port, user, password, clients=10, seconds=20, logins=True, seed=None, initial=50, prepared=None,
               timeout=10, log=print, idle=True):
    """Runs `clients` clients on the INBOX of `user` for `seconds`. Unless `prepared` is given (from
    prepare_mailbox), the INBOX is emptied and filled with `initial` messages first (not timed). With `idle` off,
    IDLE is left out of the mix (a client spends most of its time in IDLE's waits otherwise, which makes commands
    per second the client's figure, not the server's). Returns a Result; prints the seed first and the summary last
    through `log` (None: quiet)."""
    seed = random.randrange(1 << 30) if seed is None else seed
    log = log or (lambda text: None)
    log(f"imap_stress: seed {seed}, {clients} clients, {seconds} s, logins {'in the mix' if logins else 'off'}, "
        f"IDLE {'in the mix' if idle else 'off'}")
    shared = Shared(log)
    if prepared is None and initial:
        prepared = prepare_mailbox(host, port, user, password, initial, seed, timeout)
    if prepared is not None:
        shared.uidvalidity = prepared.uidvalidity
        for number, (uid, message, flags) in enumerate(prepared.messages):
            shared.owners[uid] = number % clients
            shared.owned_flags[uid] = {flag.lower() for flag in flags} & OWNER_SET
            shared.contents[uid] = message
            shared.max_uid = max(shared.max_uid, uid)
    start = time.monotonic()
    settings = Settings(host, port, user, password, timeout, logins, start + seconds, seed,
                        len(prepared.messages) if prepared else initial, idle)
    workers = [Client(index, settings, shared) for index in range(clients)]
    threads = [threading.Thread(target=worker.run, name=f"imap-stress-{index}", daemon=True)
               for index, worker in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.1, start + seconds + 3 * timeout + 5 - time.monotonic()))
    elapsed = time.monotonic() - start
    for thread in threads:
        if thread.is_alive():
            shared.error("hang", f"{thread.name} did not finish within {3 * timeout + 5:.0f} s of the end")
    with shared.lock:
        samples = spread(shared.samples, 20)
        result = Result(shared.commands, sum(shared.errors.values()), samples, elapsed, dict(shared.errors),
                        dict(shared.notes), dict(shared.by_command), seed,
                        {name: percentiles(values) for name, values in shared.latencies.items()})
    log(result.summary())
    return result


def main():
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--user", default="alice@example.test")
    parser.add_argument("--password", default="alice-secret")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--no-logins", action="store_true", help="no LOGOUT and new login in the mix")
    parser.add_argument("--no-idle", action="store_true", help="no IDLE in the mix (its waits are the client's)")
    parser.add_argument("--seed", type=int)
    args = parser.parse_args()
    result = run_stress(args.host, args.port, args.user, args.password, args.clients, args.seconds,
                        not args.no_logins, args.seed, idle=not args.no_idle)
    return 1 if result.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
