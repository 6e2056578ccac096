"""The SMTP state machine of the benchmarks' sink (servers.smtp_sink_server): bytes in, replies out, in order.

The fault server of the delivery tests (servers.smtp) stays on aiosmtpd, an SMTP
implementation that is not ours; this one is built for speed, to measure a sender.

`SMTPSession` is an asyncio protocol speaking the ESMTP that syndicate needs from a
server: EHLO (SIZE, 8BITMIME, SMTPUTF8, PIPELINING; STARTTLS and AUTH PLAIN/LOGIN when
set up), HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, STARTTLS and AUTH. It parses all that
one read brought, answers every command in it in order and writes those replies at once,
as RFC 2920 allows. DATA is framed by the final dot and its transparency dots are counted
in the receive buffer, not copied, so a message costs a few searches.

What becomes of a session is up to a subclass, through hooks called on the way:

    greeting()                           the first reply
    check_mail / check_rcpt / check_data a refusal (reply bytes), or None to go on
    body_pending(received)               part of a message is in, not yet its final dot
    deliver(envelope, start, end, size)  a message arrived whole: the reply to its dot
    refuse(reply)                        a message refused at its dot (too big, line too long)
    start_tls()                          STARTTLS was answered: upgrade, then `restart()`

A hook ends the dialogue with `stop(close=...)`: nothing more is read, and with close the
connection is closed once the replies so far are written. The subclasses are
`servers.smtp_protocol.FaultySMTP` (faults, records, TLS) and
`servers.smtp_sink_server.SinkSession` (counters only, many thousand messages a second).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

CRLF = b"\r\n"
FINAL_DOT = b"\r\n.\r\n"
MAX_COMMAND_LINE = 64 * 1024
RECEIVE_BUFFER = 256 * 1024

OK = b"250 2.0.0 Ok\r\n"
UNRECOGNIZED = b"500 5.5.2 Command not recognized\r\n"
NOT_OFFERED = b"502 5.5.1 Command not implemented\r\n"
NEED_HELO = b"503 5.5.1 Error: send HELO first\r\n"
NEED_MAIL = b"503 5.5.1 Error: need MAIL command\r\n"
NEED_RCPT = b"503 5.5.1 Error: need RCPT command\r\n"
NEED_STARTTLS = b"530 5.7.0 Must issue a STARTTLS command first\r\n"
BAD_BASE64 = b"501 5.5.2 Cannot decode response\r\n"


@dataclass(frozen=True)
class Settings:
    """What a session offers and enforces.

    hostname: in the greeting and EHLO.
    size_limit: the SIZE offered; a bigger message is refused (552), declared or at its dot.
    line_limit: the longest DATA line accepted, CRLF and transparency dot not counted
        (RFC 5321 section 4.5.3.1.6 says 998); None not to look.
    credentials: (user, password) offered as AUTH PLAIN and LOGIN, and required before MAIL.
    starttls: offer STARTTLS (the subclass upgrades the transport).
    require_starttls: refuse MAIL and AUTH before STARTTLS.
    auth_requires_tls: offer and take AUTH only over TLS.
    without: EHLO keywords not to offer (e.g. "PIPELINING"), upper case, to play an older server.
    """

    hostname: str = "localhost"
    size_limit: int = 32 * 1024 * 1024
    line_limit: int | None = None
    credentials: tuple[str, str] | None = None
    starttls: bool = False
    require_starttls: bool = False
    auth_requires_tls: bool = False
    without: frozenset[str] = frozenset()

    def ehlo(self, tls: bool) -> bytes:
        """The EHLO reply, all its lines, to a client over TLS or not."""
        keywords = [f"SIZE {self.size_limit}", "8BITMIME", "SMTPUTF8", "PIPELINING"]
        if self.starttls and not tls:
            keywords.append("STARTTLS")
        if self.credentials is not None and (tls or not self.auth_requires_tls):
            keywords.append("AUTH LOGIN PLAIN")
        lines = [self.hostname, *(k for k in keywords if k.split()[0] not in self.without)]
        return "".join(f"250-{line}\r\n" for line in lines[:-1]).encode() + f"250 {lines[-1]}\r\n".encode()


class Envelope(NamedTuple):
    """A message's sender ("" for the null reverse-path) and accepted recipients."""

    sender: str
    recipients: list[str]


def verb(line: bytes | bytearray) -> str:
    """The command word of `line`, upper case (at most 16 characters of it)."""
    space = line.find(b" ", 0, 16)
    return bytes(line[: space if space >= 0 else 16]).upper().decode("ascii", "replace")


def _path(line: bytearray, opening: bytes) -> tuple[str, bytes] | None:
    """(address, parameters) of `MAIL FROM:<address> params` (`opening` "MAIL FROM:<"), None if malformed."""
    if line.startswith(opening) and line[-1] == 62:  # the usual "...:<address>", no parameters: quick
        return str(line[len(opening) : -1], "utf-8", "replace"), b""
    keyword = opening[:-1]
    if line[: len(keyword)].upper() != keyword:
        return None
    rest = bytes(line[len(keyword) :]).lstrip(b" ")
    if rest.startswith(b"<"):
        closing = rest.find(b">")
        return None if closing < 0 else (rest[1:closing].decode("utf-8", "replace"), rest[closing + 1 :])
    address, _, params = rest.partition(b" ")
    return (address.decode("utf-8", "replace"), params) if address else None


def _declared_size(params: bytes) -> int:
    at = params.upper().find(b"SIZE=")
    value = params[at + 5 :].split(b" ", 1)[0] if at >= 0 else b""
    return int(value) if value.isdigit() else 0


def unstuff(content: bytes) -> bytes:
    """Remove the transparency dots of RFC 5321 section 4.5.2 from CRLF-framed content."""
    return (CRLF + content).replace(b"\r\n.", CRLF)[2:]


def _decode(data: bytes) -> bytes | None:
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        return None


class SMTPSession(asyncio.BufferedProtocol):
    """One SMTP session; subclasses fill in the hooks (see the module docstring)."""

    # each handled by smtp_<name>
    COMMANDS: ClassVar[tuple[str, ...]] = ("HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "AUTH", "STARTTLS")  # fmt: skip
    _handlers: ClassVar[dict[bytes, Callable[[Any, bytearray], bytes]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._table()

    @classmethod
    def _table(cls) -> None:
        # looked up by the first four letters, which tell the commands apart; the handlers of
        # longer verbs check the rest
        cls._handlers = {name[:4].encode(): getattr(cls, f"smtp_{name}") for name in cls.COMMANDS}

    def __init__(self, settings: Settings, live: LiveSessions | None = None, receive: memoryview | None = None) -> None:
        self.settings = settings
        self.live = live
        # asyncio reads into this buffer and calls buffer_updated(); a fresh bytes object
        # per read costs more (page faults) than all the parsing
        self.receive = memoryview(bytearray(RECEIVE_BUFFER)) if receive is None else receive
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.scan = 0  # where the search for the final dot resumes
        self.in_data = False
        self.tls = False
        self.helo = False
        self.login: str | None = None
        self.sender: str | None = None  # None: no MAIL yet
        self.recipients: list[str] = []
        self.continuation: Callable[[bytearray], bytes] | None = None  # takes the answer to an AUTH challenge
        self.stopped = False
        self.closing = False
        self.upgrading = False
        self.lost = False
        self._ehlo = settings.ehlo(tls=False)
        self._gated = settings.require_starttls or settings.credentials is not None  # MAIL may be refused

    # ---- hooks

    def greeting(self) -> bytes:
        """The first reply."""
        return f"220 {self.settings.hostname} ESMTP ready\r\n".encode()

    def check_mail(self, address: str) -> bytes | None:
        """A refusal of MAIL FROM:<address>, or None to accept it."""
        return None

    def check_rcpt(self, address: str) -> bytes | None:
        """A refusal of RCPT TO:<address>, or None to accept it."""
        return None

    def check_data(self) -> bytes | None:
        """A refusal of the DATA command, or None to answer 354."""
        return None

    def body_pending(self, received: int) -> None:
        """`received` bytes of a message are in, its final dot not yet."""

    def deliver(self, envelope: Envelope, start: int, end: int, size: int) -> bytes:
        """The reply to the final dot of a message framed by `start` and `end` in `self.buf`.

        `start` is the CRLF that ended the DATA command, `end` the CRLF before the final
        dot (so every line, the first included, follows a CRLF); `size` is the content's
        length without transparency dots, and `content(start, end)` the content itself.
        """
        return OK

    def refuse(self, reply: bytes) -> bytes:
        """The reply to the final dot of a message refused with `reply`."""
        return reply

    def start_tls(self) -> None:
        """Upgrade the transport after the reply to STARTTLS, then call `restart()`."""
        raise NotImplementedError("a session that offers STARTTLS upgrades its transport")

    # ---- what hooks call

    def stop(self, *, close: bool) -> None:
        """Read nothing more; with `close`, hang up once the replies so far are written."""
        self.stopped = True
        self.closing = close

    def restart(self, transport: asyncio.Transport) -> None:
        """Go on over `transport`, now TLS, as a new session (RFC 3207 section 4.2)."""
        self.transport = transport
        self.tls = True
        self._ehlo = self.settings.ehlo(tls=True)
        self.buf.clear()
        self.scan = 0
        self.helo = False
        self.sender, self.recipients = None, []
        self.stopped = False

    def content(self, start: int, end: int) -> bytes:
        """The message framed by `start` and `end` (see `deliver`) without transparency dots."""
        return unstuff(bytes(self.buf[start + 2 : end + 2]))

    def abort(self) -> None:
        """Cut the connection at once (the server stops)."""
        if self.transport is not None:
            self.transport.abort()

    # ---- the connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Greet (after the handshake, with implicit TLS)."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.live is not None:
            self.live.add(self)
        if transport.get_extra_info("sslcontext") is not None:
            self.tls = True
            self._ehlo = self.settings.ehlo(tls=True)
        self._send([self.greeting()])

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where asyncio puts what it reads."""
        return self.receive

    def buffer_updated(self, nbytes: int) -> None:
        """Take what was read into the receive buffer."""
        self.feed(self.receive[:nbytes])

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the transport so nothing writes to it."""
        if self.lost:  # a failed STARTTLS handshake may report it twice
            return
        self.lost = True
        self.transport = None
        if self.live is not None:
            self.live.discard(self)

    def feed(self, data: bytes | memoryview) -> None:
        """Parse as many commands and messages as arrived; answer them in one write."""
        if self.stopped:
            return
        self.buf += data
        replies: list[bytes] = []
        pos = self._consume(replies)
        if pos:
            del self.buf[:pos]
            self.scan = max(0, self.scan - pos)
        self._send(replies)

    def _send(self, replies: list[bytes]) -> None:
        transport = self.transport
        if transport is None:
            return
        if replies:
            transport.write(b"".join(replies))
        if self.closing:
            transport.close()
        elif self.upgrading:
            self.upgrading = False
            self.start_tls()

    def _consume(self, replies: list[bytes]) -> int:
        buf, pos = self.buf, 0
        while not self.stopped:
            if self.in_data:
                end = buf.find(FINAL_DOT, max(pos, self.scan))
                if end < 0:
                    self.scan = max(pos, len(buf) - 4)
                    self.body_pending(len(buf) - pos - 2)
                    break
                replies.append(self._end_of_data(pos, end))
                pos = end + 5
                continue
            eol = buf.find(CRLF, pos)
            if eol < 0:
                if len(buf) - pos > MAX_COMMAND_LINE:
                    replies.append(b"500 5.5.2 Line too long\r\n")
                    self.stop(close=True)
                break
            replies.append(self._line(buf[pos:eol]))
            # the body is framed from the CRLF ending "DATA" on: see deliver()
            pos = eol if self.in_data else eol + 2
        return pos

    def _line(self, line: bytearray) -> bytes:
        """The reply to one command line, or to the answer to an AUTH challenge."""
        if self.continuation is not None:
            return self.continuation(line)
        handler = self._handlers.get(bytes(line[:4]).upper())
        return UNRECOGNIZED if handler is None else handler(self, line)

    def _end_of_data(self, start: int, end: int) -> bytes:
        self.in_data = False
        envelope = Envelope(self.sender or "", self.recipients)
        self.sender, self.recipients = None, []
        size = end - start - self.buf.count(b"\r\n.", start, end + 2)
        limit = self.settings.line_limit
        if limit is not None and max(len(line) - line.startswith(b".") for line in self._lines(start, end)) > limit:
            return self.refuse(b"500 5.5.2 Line too long (see RFC 5321 4.5.3.1.6)\r\n")
        if size > self.settings.size_limit:
            return self.refuse(b"552 5.3.4 Too much mail data\r\n")
        return self.deliver(envelope, start, end, size)

    def _lines(self, start: int, end: int) -> list[bytes]:
        return bytes(self.buf[start + 2 : end]).split(CRLF)

    # ---- commands

    def smtp_HELO(self, line: bytearray) -> bytes:
        """Start over, plain SMTP."""
        if len(line) < 6:
            return b"501 5.5.4 Syntax: HELO hostname\r\n"
        self.helo, self.sender, self.recipients = True, None, []
        return f"250 {self.settings.hostname}\r\n".encode()

    def smtp_EHLO(self, line: bytearray) -> bytes:
        """Start over, ESMTP."""
        if len(line) < 6:
            return b"501 5.5.4 Syntax: EHLO hostname\r\n"
        self.helo, self.sender, self.recipients = True, None, []
        return self._ehlo

    def smtp_MAIL(self, line: bytearray) -> bytes:
        """Start a transaction."""
        if not self.helo:
            return NEED_HELO
        if self._gated and (refused := self._mail_gate()) is not None:
            return refused
        if self.sender is not None:
            return b"503 5.5.1 Error: nested MAIL command\r\n"
        path = _path(line, b"MAIL FROM:<")
        if path is None:
            return b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
        if path[1] and _declared_size(path[1]) > self.settings.size_limit:
            return b"552 5.3.4 Message size exceeds fixed limit\r\n"
        refused = self.check_mail(path[0])
        if refused is None:
            self.sender = path[0]
            return OK
        return refused

    def _mail_gate(self) -> bytes | None:
        if self.settings.require_starttls and not self.tls:
            return NEED_STARTTLS
        if self.settings.credentials is not None and self.login is None:
            return b"530 5.7.0 Authentication required\r\n"
        return None

    def smtp_RCPT(self, line: bytearray) -> bytes:
        """Add a recipient."""
        if self.sender is None:
            return NEED_MAIL
        path = _path(line, b"RCPT TO:<")
        if path is None or not path[0]:
            return b"501 5.5.4 Syntax: RCPT TO:<address>\r\n"
        refused = self.check_rcpt(path[0])
        if refused is None:
            self.recipients.append(path[0])
            return OK
        return refused

    def smtp_DATA(self, line: bytearray) -> bytes:
        """Open the message (the next lines up to the final dot)."""
        if not self.recipients:
            return NEED_RCPT
        if len(line) > 4:
            return b"501 5.5.4 Syntax: DATA\r\n"
        refused = self.check_data()
        if refused is not None:
            return refused
        self.in_data = True
        return b"354 End data with <CR><LF>.<CR><LF>\r\n"

    def smtp_RSET(self, line: bytearray) -> bytes:
        """Forget the transaction."""
        self.sender, self.recipients = None, []
        return OK

    def smtp_NOOP(self, line: bytearray) -> bytes:
        """Nothing."""
        return OK

    def smtp_QUIT(self, line: bytearray) -> bytes:
        """Say goodbye and hang up."""
        self.stop(close=True)
        return b"221 2.0.0 Bye\r\n"

    def smtp_STARTTLS(self, line: bytearray) -> bytes:
        """Answer, then hand the connection to `start_tls` (pipelined lines behind it are dropped)."""
        if line.upper() != b"STARTTLS":
            return UNRECOGNIZED if verb(line) != "STARTTLS" else b"501 5.5.4 Syntax: STARTTLS\r\n"
        if not self.settings.starttls or self.tls:
            return NOT_OFFERED
        self.stopped = self.upgrading = True
        return b"220 2.0.0 Ready to start TLS\r\n"

    def smtp_AUTH(self, line: bytearray) -> bytes:
        """AUTH PLAIN or LOGIN (RFC 4954), with or without an initial response."""
        refused = self._auth_refusal()
        if refused is not None:
            return refused
        mechanism, _, initial = bytes(line[5:]).strip().partition(b" ")
        if mechanism.upper() == b"PLAIN":
            return self._plain(initial) if initial else self._challenge(b"", self._plain)
        if mechanism.upper() == b"LOGIN":
            return self._login_user(initial) if initial else self._challenge(b"Username:", self._login_user)
        return b"504 5.5.4 Unrecognized authentication type\r\n"

    def _auth_refusal(self) -> bytes | None:
        settings = self.settings
        if settings.credentials is None:
            return NOT_OFFERED
        if not self.helo:
            return NEED_HELO
        if settings.require_starttls and not self.tls:
            return NEED_STARTTLS
        if settings.auth_requires_tls and not self.tls:
            return b"538 5.7.11 Encryption required for requested authentication mechanism\r\n"
        if self.login is not None:
            return b"503 5.5.1 Already authenticated\r\n"
        return None

    def _challenge(self, prompt: bytes, then: Callable[[bytes], bytes]) -> bytes:
        def answer(line: bytearray) -> bytes:
            self.continuation = None
            return b"501 5.7.0 Auth aborted\r\n" if line == b"*" else then(bytes(line))

        self.continuation = answer
        return b"334 " + base64.b64encode(prompt) + CRLF

    def _plain(self, response: bytes) -> bytes:
        parts = (_decode(response) or b"").split(b"\0")
        return self._authenticate(parts[1], parts[2]) if len(parts) == 3 else BAD_BASE64

    def _login_user(self, response: bytes) -> bytes:
        user = _decode(response)
        if user is None:
            return BAD_BASE64
        return self._challenge(b"Password:", lambda answer: self._authenticate(user, _decode(answer)))

    def _authenticate(self, user: bytes, password: bytes | None) -> bytes:
        expected = self.settings.credentials
        if expected is None or (user, password) != (expected[0].encode(), expected[1].encode()):
            return b"535 5.7.8 Authentication credentials invalid\r\n"
        self.login = expected[0]
        return b"235 2.7.0 Authentication successful\r\n"


SMTPSession._table()


class LiveSessions:
    """The open sessions of one listener, so that stopping can cut them and wait till they are gone."""

    def __init__(self) -> None:
        self._sessions: set[SMTPSession] = set()
        self._gone: asyncio.Event | None = None

    def add(self, session: SMTPSession) -> None:
        """A connection was made."""
        self._sessions.add(session)

    def discard(self, session: SMTPSession) -> None:
        """A connection was lost."""
        self._sessions.discard(session)
        if not self._sessions and self._gone is not None:
            self._gone.set()

    async def cut(self, timeout: float) -> None:
        """Abort every session and wait (at most `timeout` s) until each one saw its connection lost."""
        self._gone = asyncio.Event()
        if not self._sessions:
            return
        for session in list(self._sessions):
            session.abort()
        await asyncio.wait_for(self._gone.wait(), timeout)


async def serve_until(server: asyncio.Server, live: LiveSessions, stop: asyncio.Event, timeout: float) -> None:
    """Serve until `stop` is set; then close the listener and cut every session (hung ones too)."""
    try:
        await stop.wait()
    finally:
        server.close()
        await live.cut(timeout)
        await server.wait_closed()
