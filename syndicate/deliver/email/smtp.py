"""Opening an SMTP session: connect, greeting, EHLO, STARTTLS or implicit TLS, login; and QUIT.

The message phase, where the sessions pipeline many messages at once, is in
:mod:`syndicate.deliver.email.wire`.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

CRLF = b"\r\n"


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


class SmtpConnection:
    """One open SMTP session, reused for many messages."""

    def __init__(self, host: str, port: int, *, security: str = "none", timeout: float = 30.0, helo: str = "localhost",
                 credentials: tuple[str, str] | None = None, tls: ssl.SSLContext | None = None) -> None:  # fmt: skip
        self.host, self.port, self.security, self.timeout, self.helo = host, port, security, timeout, helo
        self.credentials = credentials
        self._tls = tls
        self.extensions: dict[str, str] = {}
        self.sock: socket.socket | None = None
        self._buffer = b""

    @property
    def tls(self) -> ssl.SSLContext:
        """The TLS context, made only when a session uses TLS (loading CA certificates is slow)."""
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

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

    def take_buffer(self) -> bytes:
        """Hand over bytes read past the last reply (the message phase continues elsewhere)."""
        data, self._buffer = self._buffer, b""
        return data

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
