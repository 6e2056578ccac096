"""An SMTP client that knows, for every message, whether it was delivered, refused, or may have been.

It pipelines (RFC 2920): the end of one message and the envelope of the next
go out in one write, so a message costs one round trip, not four. Every
outcome says how far the message got:

- refused before its text was sent (greeting, MAIL, RCPT, DATA): nothing arrived;
- the connection failed while the text was being written: the final dot never
  left, so nothing arrived and it is safe to send again;
- the dot left and no reply came back: the message may have arrived (``unknown``).
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

CRLF = b"\r\n"
_DOT_START = re.compile(rb"(?m)^\.")


class SmtpError(Exception):
    """The server refused, or the connection failed, outside a message (opening, login)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Reply:
    """A server reply: its code and text."""

    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}"

    @property
    def ok(self) -> bool:
        """A positive completion (2xx)."""
        return 200 <= self.code < 300


@dataclass(frozen=True)
class Sent:
    """How one message fared: the stage it reached and the server's reply (None: no reply came)."""

    stage: str  # "mail", "rcpt", "data", "text" (writing the message), "dot" (after the final dot)
    reply: Reply | None
    error: str = ""

    @property
    def delivered(self) -> bool:
        """The server took the message (2xx after the final dot)."""
        return self.stage == "dot" and self.reply is not None and self.reply.ok

    @property
    def may_have_arrived(self) -> bool:
        """The final dot left and no reply came: the server may have queued it."""
        return self.stage == "dot" and self.reply is None

    def describe(self) -> str:
        """The outcome in words, with the reply, for ``deliveries list``."""
        said = str(self.reply) if self.reply else self.error or "no reply"
        return f"{self.stage}: {said}"


@dataclass(frozen=True)
class Envelope:
    """One message to send: who from, who to, and its bytes (CRLF line ends)."""

    sender: str
    recipient: str
    data: bytes


class SmtpConnection:
    """One open SMTP session, reused for many messages."""

    def __init__(self, host: str, port: int, *, security: str = "none", timeout: float = 30.0, helo: str = "localhost",
                 credentials: tuple[str, str] | None = None, tls: ssl.SSLContext | None = None) -> None:  # fmt: skip
        self.host, self.port, self.security, self.timeout, self.helo = host, port, security, timeout, helo
        self.credentials = credentials
        self.tls = tls or ssl.create_default_context()
        self.extensions: dict[str, str] = {}
        self.sock: socket.socket | None = None
        self._buffer = b""
        self._dirty = False  # a transaction was left half-way: RSET before the next

    # -- opening and closing --

    def open(self) -> None:
        """Connect, read the greeting, say EHLO, start TLS and log in as configured."""
        try:
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise SmtpError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host) if self.security == "tls" else raw
        try:
            self._expect(self._read_reply(), "greeting")
            self._ehlo()
            if self.security == "starttls":
                self._starttls()
            if self.credentials:
                self._login(*self.credentials)
        except (OSError, SmtpError) as exc:
            self.abort()
            if isinstance(exc, SmtpError):
                raise
            raise SmtpError(f"connection to {self.host}:{self.port} failed while opening: {exc}") from exc

    def close(self) -> None:
        """Say QUIT and close (quietly: the messages are already accounted for)."""
        if self.sock is None:
            return
        try:
            self.sock.sendall(b"QUIT" + CRLF)
            self._read_reply()
        except (OSError, SmtpError):
            pass
        self.abort()

    def abort(self) -> None:
        """Close the socket without a word."""
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
                self._buffer = b""

    @property
    def is_open(self) -> bool:
        """Whether the session can take another message."""
        return self.sock is not None

    def _ehlo(self) -> None:
        self._command(f"EHLO {self.helo}")
        reply = self._read_reply(keep_lines=True)
        if not reply.ok:
            raise SmtpError(f"EHLO refused: {reply}", reply.code)
        self.extensions = {}
        for line in reply.text.split("\n")[1:]:
            name, _, value = line.strip().partition(" ")
            self.extensions[name.upper()] = value

    def _starttls(self) -> None:
        if "STARTTLS" not in self.extensions:
            raise SmtpError(f"{self.host} does not offer STARTTLS (email.smtp.security = 'starttls')")
        self._command("STARTTLS")
        self._expect(self._read_reply(), "STARTTLS")
        assert self.sock is not None
        self.sock = self.tls.wrap_socket(self.sock, server_hostname=self.host)
        self._ehlo()

    def _login(self, user: str, password: str) -> None:
        import base64

        methods = self.extensions.get("AUTH", "").upper().split()
        if "PLAIN" in methods:
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            self._command(f"AUTH PLAIN {token}")
            self._expect(self._read_reply(), "AUTH PLAIN")
        elif "LOGIN" in methods:
            self._command("AUTH LOGIN")
            for value in (user, password):
                self._expect(self._read_reply(), "AUTH LOGIN", want=334)
                self._command(base64.b64encode(value.encode()).decode())
            self._expect(self._read_reply(), "AUTH LOGIN")
        else:
            raise SmtpError(f"{self.host} offers no login method this client speaks (PLAIN, LOGIN)")

    # -- sending --

    def send_many(self, envelopes: Sequence[Envelope], pace: Callable[[], None] = lambda: None) -> Iterator[Sent]:
        """Send each message in turn, yielding its outcome before the next one's text leaves.

        ``pace`` is called before each message (a rate limit). Stops early
        (yields nothing more) when the connection is lost; the caller knows the
        rest were never attempted.
        """
        pipelining = "PIPELINING" in self.extensions
        awaiting: list[bytes] = []
        for index, envelope in enumerate(envelopes):
            pace()
            following = envelopes[index + 1] if pipelining and index + 1 < len(envelopes) else None
            outcome, awaiting = self._one(envelope, awaiting, following, pipelining)
            yield outcome
            if not self.is_open:
                return

    def _one(
        self, envelope: Envelope, awaiting: list[bytes], following: Envelope | None, pipelining: bool
    ) -> tuple[Sent, list[bytes]]:
        """Send one message; ``awaiting`` are its envelope commands if already written (pipelined)."""
        try:
            replies = self._read_replies(awaiting) if awaiting else self._exchange(self._envelope(envelope), pipelining)
        except (OSError, SmtpError) as exc:
            self.abort()
            return Sent("mail", None, f"connection lost before the message was sent: {exc}"), []
        refused = self._refused(replies)
        if refused is not None:
            return refused, []
        stuffed = _DOT_START.sub(b"..", envelope.data)
        if not stuffed.endswith(CRLF):
            stuffed += CRLF
        try:
            self._write(stuffed + b"." + CRLF)
        except OSError as exc:
            self.abort()
            return Sent("text", None, f"connection lost while sending the message: {exc}"), []
        next_commands = self._envelope(following) if following is not None else []
        try:
            if next_commands:
                self._write(b"".join(next_commands))
            reply = self._read_reply()
        except (OSError, SmtpError) as exc:
            self.abort()
            return Sent("dot", None, f"no reply after the final dot: {exc}"), []
        if reply.code == 421:
            self.abort()
        return Sent("dot", reply), next_commands

    def _exchange(self, commands: list[bytes], pipelining: bool) -> list[Reply]:
        """Write the envelope commands (all at once when pipelining) and read their replies."""
        if pipelining:
            self._write(b"".join(commands))
            return self._read_replies(commands)
        replies = []
        for command in commands:
            self._write(command)
            reply = self._read_reply()
            if command.startswith(b"RSET"):
                continue
            replies.append(reply)
            if not (reply.ok or reply.code == 354):
                break
        return replies

    def _read_replies(self, commands: list[bytes]) -> list[Reply]:
        """One reply per command, in order; a RSET's reply is read and set aside."""
        replies = [self._read_reply() for _ in commands]
        return [r for command, r in zip(commands, replies, strict=True) if not command.startswith(b"RSET")]

    def _refused(self, replies: list[Reply]) -> Sent | None:
        """None if the envelope was taken (354 to DATA); else the refusal, leaving the session ready."""
        if len(replies) == 3 and replies[0].ok and replies[1].ok and replies[2].code == 354:
            return None
        if replies[-1].code == 354:
            # The server opened DATA although the envelope failed: close it empty.
            self._write(b"." + CRLF)
            self._read_reply()
        self._dirty = True
        if any(r.code == 421 for r in replies):
            self.abort()
        stage = ("mail", "rcpt", "data")[
            next((i for i, r in enumerate(replies) if not (r.ok or r.code == 354)), len(replies) - 1)
        ]
        refusal = next((r for r in replies if not (r.ok or r.code == 354)), replies[-1])
        return Sent(stage, refusal)

    def _envelope(self, envelope: Envelope) -> list[bytes]:
        body = " BODY=8BITMIME" if "8BITMIME" in self.extensions else ""
        commands = [b"RSET" + CRLF] if self._dirty else []
        self._dirty = False
        commands += [
            f"MAIL FROM:<{envelope.sender}>{body}".encode() + CRLF,
            f"RCPT TO:<{envelope.recipient}>".encode() + CRLF,
            b"DATA" + CRLF,
        ]
        return commands

    # -- the wire --

    def _command(self, line: str) -> None:
        self._write(line.encode() + CRLF)

    def _write(self, data: bytes) -> None:
        if self.sock is None:
            raise OSError("connection closed")
        self.sock.sendall(data)

    def _read_line(self) -> bytes:
        while CRLF not in self._buffer:
            if self.sock is None:
                raise SmtpError("connection closed")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SmtpError("the server closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(CRLF)
        return line

    def _read_reply(self, keep_lines: bool = False) -> Reply:
        lines = []
        while True:
            line = self._read_line()
            if len(line) < 3 or not line[:3].isdigit():
                raise SmtpError(f"unreadable reply {line[:80]!r}")
            lines.append(line[4:].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                code = int(line[:3])
                return Reply(code, "\n".join(lines) if keep_lines else " ".join(lines))

    def _expect(self, reply: Reply, what: str, want: int | None = None) -> Reply:
        if (want is None and not reply.ok) or (want is not None and reply.code != want):
            raise SmtpError(f"{what}: {reply}", reply.code)
        return reply
