"""A fault-injecting SMTP server on loopback for syndicate's delivery tests.

`SMTPServer` runs aiosmtpd in its own asyncio loop on a thread, bound to 127.0.0.1 on
an ephemeral port. It records what it received (`.messages`) and everything it did
(`.events`), and misbehaves on cue: each `Fault` (see `servers.smtp_faults`, re-exported
here) names a `Stage` of the SMTP dialogue, an action (`Reply`, `Drop`, `Hang`) and which
connections, transactions, senders, recipients or messages it applies to. STARTTLS and
SMTPS use the certificate of `servers.tls`.

    with SMTPServer([Fault.rcpt(550, recipients="gone@example.org"),
                     Fault.end_of_data(554, transactions={3})]) as server:
        smtplib.SMTP(server.host, server.port) ...
        assert server.codes("RCPT") == [250, 550]

PIPELINING (RFC 2920): aiosmtpd 1.4.6 does not advertise it, but it reads one command
line at a time from a buffered stream and writes each reply before reading the next
line, so commands that arrive in one segment are answered in order. This server adds
the EHLO keyword and keeps that property in the parts it replaces (DATA, faults): after
a fault that ends the session nothing more is read, so pipelined commands behind it
get no reply at all, as from a real server that hung up.

Numbering: connections and transactions (MAIL commands, accepted or not) are counted
from 1 across the server's lifetime, so a client's retry of "the 3rd message" on a new
connection is transaction 4. To pick a message whatever the attempt, match on its
content with `message=`, and use `times=` to make a fault transient.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal, Self

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .smtp_faults import Drop, Fault, FaultContext, Hang, Match, Reply, Stage
from .smtp_protocol import FaultySMTP
from .smtp_records import Event, ReceivedMessage, ThreadSafeList
from .tls import SelfSignedCertificate, self_signed_certificate

__all__ = [
    "Drop",
    "Event",
    "Fault",
    "Hang",
    "Match",
    "ReceivedMessage",
    "Reply",
    "SMTPServer",
    "SelfSignedCertificate",
    "Stage",
    "ThreadSafeList",
    "self_signed_certificate",
]

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


TLSMode = Literal["none", "starttls", "implicit"]


class SMTPServer:
    """A fault-injecting SMTP server on loopback, run in a thread; a context manager.

    faults: `Fault`s tried in order, the first that applies strikes (add more with
        `add_fault` while running).
    credentials: (user, password) to require AUTH PLAIN/LOGIN before MAIL.
    tls: "starttls" offers STARTTLS, "implicit" is SMTPS (TLS from the first byte); both
        use `self_signed_certificate()`, which `client_tls_context()` trusts.
    auth_requires_tls: offer AUTH only after STARTTLS (always satisfied with SMTPS).
    without: EHLO keywords not to offer (e.g. "PIPELINING", "8BITMIME"), to play an older server.
    require_starttls: refuse everything but EHLO/STARTTLS/QUIT before STARTTLS.
    """

    def __init__(
        self,
        faults: Sequence[Fault] = (),
        *,
        credentials: tuple[str, str] | None = None,
        tls: TLSMode = "none",
        auth_requires_tls: bool = False,
        require_starttls: bool = False,
        hostname: str = "mx.test",
        host: str = HOST,
        data_size_limit: int = 32 * 1024 * 1024,
        idle_timeout: float = 60.0,
        without: Sequence[str] = (),
    ) -> None:
        self.host = host
        self.port = 0
        self.credentials = credentials
        self.without = frozenset(name.upper() for name in without)  # EHLO keywords not to offer
        self.tls: TLSMode = tls
        self.messages: ThreadSafeList[ReceivedMessage] = ThreadSafeList()
        self.events: ThreadSafeList[Event] = ThreadSafeList()
        self._faults = list(faults)
        self._lock = threading.Lock()
        self._counts = {"connections": 0, "transactions": 0}
        self._live: set[FaultySMTP] = set()
        self._smtp_kwargs = {
            "hostname": hostname,
            "data_size_limit": data_size_limit,
            "timeout": idle_timeout,
            "enable_SMTPUTF8": True,
            "require_starttls": require_starttls,
            "auth_require_tls": auth_requires_tls and tls == "starttls",
            "authenticator": self._authenticate,
        }
        self._tls_context = self_signed_certificate().server_context() if tls != "none" else None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None

    # ---- test-facing API

    def add_fault(self, fault: Fault) -> None:
        """Add a fault while the server runs (tried after the earlier ones)."""
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Behave normally from now on."""
        with self._lock:
            self._faults.clear()

    def replies(self, command: str) -> list[Event]:
        """The reply events for `command` (e.g. "RCPT", "END_OF_DATA"), in order."""
        return [e for e in self.events if e.kind == "reply" and e.command == command]

    def codes(self, command: str) -> list[int | None]:
        """The reply codes given to `command`, in order."""
        return [event.code for event in self.replies(command)]

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        with self._lock:
            return self._counts["connections"]

    def client_tls_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate."""
        return self_signed_certificate().client_context()

    # ---- life cycle

    def start(self) -> Self:
        """Bind and serve; returns when the port is known."""
        if self._thread is not None:
            raise RuntimeError("already started")
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="smtp-server", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT):
            raise TimeoutError("SMTP server did not start")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self

    def stop(self) -> None:
        """Hang up on every client (hung sessions included) and end the thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        thread.join(STOP_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError("SMTP server thread did not stop")
        if self._error is not None:
            raise RuntimeError("SMTP server thread crashed") from self._error

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SMTPServer({self.host}:{self.port}, tls={self.tls})"

    def _run(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._serve(ready))
        except BaseException as error:  # reported to start() or lost with the thread
            self._error = error
        finally:
            ready.set()

    async def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await loop.create_server(
            lambda: FaultySMTP(self, loop=loop, tls_context=self._starttls(), **self._smtp_kwargs),
            self.host,
            self.port,
            ssl=self._tls_context if self.tls == "implicit" else None,
        )
        self.port = server.sockets[0].getsockname()[1]
        self._loop = loop
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            await self._abort_sessions()
            await server.wait_closed()

    def _starttls(self) -> ssl.SSLContext | None:
        return self._tls_context if self.tls == "starttls" else None

    async def _abort_sessions(self) -> None:
        tasks = [task for proto in list(self._live) if (task := proto.abort()) is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)

    # ---- SessionOwner: called by the sessions, on the server thread

    def register(self, proto: FaultySMTP) -> int:
        """Count a new connection and record it; return its number."""
        with self._lock:
            self._counts["connections"] += 1
            number = self._counts["connections"]
        self._live.add(proto)
        self.events.append(Event("connect", number))
        return number

    def unregister(self, proto: FaultySMTP) -> None:
        """Forget a closed connection."""
        self._live.discard(proto)

    def next_transaction(self) -> int:
        """Count a MAIL command; return its number."""
        with self._lock:
            self._counts["transactions"] += 1
            return self._counts["transactions"]

    def pick_fault(self, stage: Stage, ctx: FaultContext) -> Fault | None:
        """The first unspent fault that applies at `stage`, counted as fired."""
        with self._lock:
            for fault in self._faults:
                if not fault.exhausted() and fault.applies(stage, ctx):
                    fault.fired += 1
                    return fault
        return None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        expected = self.credentials
        ok = (
            expected is not None
            and isinstance(auth_data, LoginPassword)
            and (auth_data.login, auth_data.password) == tuple(s.encode() for s in expected)
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
