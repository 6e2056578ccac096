"""The SMTP session behind `servers.smtp.SMTPServer`: aiosmtpd's protocol, misbehaving.

It adds the PIPELINING keyword to EHLO, records every reply before sending it, numbers
connections and transactions, and carries out the `Fault`s its owner picks. It replaces
aiosmtpd's DATA handling (to drop mid-body and to act after the final dot) but keeps
its way of answering pipelined commands: one line read, one reply written, in order.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Awaitable, Callable
from dataclasses import replace
from email.message import EmailMessage
from typing import Any, NoReturn, Protocol

from aiosmtpd.smtp import MISSING, SMTP, Envelope, LoginPassword, Session, syntax

from .smtp_faults import Action, Drop, Fault, FaultContext, Hang, Reply, Stage
from .smtp_records import Event, EventKind, ReceivedMessage, ThreadSafeList


class SessionOwner(Protocol):
    """What a session needs from the server that runs it."""

    credentials: tuple[str, str] | None
    messages: ThreadSafeList[ReceivedMessage]
    events: ThreadSafeList[Event]

    def register(self, session: FaultySMTP) -> int:
        """Count a new connection; return its number."""
        ...

    def unregister(self, session: FaultySMTP) -> None:
        """Forget a closed connection."""
        ...

    def next_transaction(self) -> int:
        """Count a MAIL command; return its number."""
        ...

    def pick_fault(self, stage: Stage, ctx: FaultContext) -> Fault | None:
        """The first unspent fault that applies, counted as fired."""
        ...


class _Body:
    """Collects DATA lines framed as RFC 5321 section 4.5.2 says, and their trouble."""

    def __init__(self, limit: int | None) -> None:
        self.lines: list[bytes] = []
        self.size = 0
        self.error: str | None = None
        self._limit = limit
        self._partial = False  # the previous chunk was a line cut at the reader's limit

    def is_end(self, line: bytes) -> bool:
        """Whether `line` is the final dot."""
        return not self._partial and line == b".\r\n"

    def add(self, line: bytes, complete: bool) -> None:
        """Take one line, or a piece of an over-long one (`complete` False)."""
        self.size += len(line)
        if self.error is None:
            if not complete:
                self.error = "500 5.5.2 Line too long (see RFC 5321 4.5.3.1.6)"
            elif self._limit and self.size > self._limit:
                self.error = "552 5.3.4 Too much mail data"
            if self.error is not None:
                self.lines.clear()
            elif not self._partial:
                self.lines.append(line)
        self._partial = not complete

    def content(self) -> bytes:
        """The message with transparency dots removed."""
        return b"".join(line[1:] if line.startswith(b".") else line for line in self.lines)


def _parse(raw: bytes) -> EmailMessage:
    # the email package keeps CRLFs in payloads; with LFs get_content() reads naturally
    message = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


class _Hooks:
    """aiosmtpd handler: passes each hook to the protocol instance that called it."""

    async def handle_EHLO(
        self,
        server: FaultySMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """Advertise PIPELINING; aiosmtpd expects the 5-argument hook to set host_name."""
        session.host_name = hostname
        return server.ehlo_lines(responses)

    async def handle_MAIL(
        self,
        server: FaultySMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> object:
        """Inject MAIL faults."""
        return await server.on_mail(address)

    async def handle_RCPT(
        self,
        server: FaultySMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> object:
        """Inject RCPT faults."""
        return await server.on_rcpt(address)


SMTPMethod = Callable[[str | None], Awaitable[None]]


class FaultySMTP(SMTP):
    """aiosmtpd's protocol with fault injection, event recording and PIPELINING."""

    def __init__(self, owner: SessionOwner, **kwargs: Any) -> None:
        super().__init__(_Hooks(), **kwargs)
        self._owner = owner
        self._connection = 0
        self._transaction: int | None = None
        self._command = str(Stage.GREETING)  # whose reply push() is sending
        self._address: str | None = None
        self._injected = False
        self._close_after_reply = False
        self._lost = False
        if owner.credentials is not None:
            # set after __init__: passing auth_required without TLS makes aiosmtpd warn
            self._auth_required = True
        self._smtp_methods = {name: self._tracked(name, method) for name, method in self._smtp_methods.items()}

    def _tracked(self, name: str, method: SMTPMethod) -> SMTPMethod:
        async def run(arg: str | None) -> None:
            self._command, self._address = name, None
            try:
                await method(arg)
            finally:
                self._command = ""
            if self._close_after_reply:
                # stop here, or pipelined commands behind the 421 would be answered
                await self._hang_up("close", Stage(name))  # only MAIL and RCPT set it

        return run

    # ---- connection life

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Number the connection (or note the STARTTLS handshake) and start the session."""
        upgrading = self.transport is not None
        super().connection_made(transport)
        if upgrading:
            self._record("tls")
        else:
            self._connection = self._owner.register(self)

    def connection_lost(self, error: Exception | None) -> None:
        """Record the disconnect."""
        if self._lost:  # aiosmtpd calls it itself after a failed STARTTLS handshake
            return
        self._lost = True
        self._owner.unregister(self)
        self._record("disconnect")
        super().connection_lost(error)

    def abort(self) -> asyncio.Task[None] | None:
        """Cut the connection at once (server shutdown); returns the session task."""
        for transport in (self.transport, self._original_transport):
            if isinstance(transport, asyncio.Transport):
                transport.abort()
        return self._handler_coroutine

    async def _handle_client(self) -> None:
        fault = self._owner.pick_fault(Stage.GREETING, self._context())
        if fault is not None:
            await self._carry_out(fault.action, Stage.GREETING)
        await super()._handle_client()

    async def _park(self) -> NoReturn:
        # connection_lost() cancels the session task, which ends this wait
        await self.loop.create_future()
        raise AssertionError("unreachable")

    async def _hang_up(self, kind: EventKind, stage: Stage) -> NoReturn:
        self._record(kind, command=stage, injected=True)
        if self.transport is not None:
            self.transport.close()
        await self._park()

    # ---- replies

    async def push(self, status: str | bytes) -> None:
        """Record a reply line (last line of multi-line replies only), then send it."""
        text = status if isinstance(status, str) else status.decode("utf-8", "replace")
        if text[3:4] != "-":
            code = int(text[:3]) if text[:3].isdigit() else None
            self._record("reply", command=self._command, code=code, text=text[4:], injected=self._injected)
            self._injected = False
            if self._command == Stage.GREETING:
                self._command = ""
        await super().push(status.encode() if isinstance(status, str) else status)

    def _record(self, kind: EventKind, **details: Any) -> None:
        details["command"] = str(details.get("command", ""))  # plain str, not a Stage, in reprs
        details.setdefault("address", self._address)
        details.setdefault("transaction", self._transaction)
        self._owner.events.append(Event(kind, self._connection, **details))

    async def _carry_out(self, action: Action, stage: Stage) -> None:
        if isinstance(action, Drop):
            await self._hang_up("drop", stage)
        if isinstance(action, Hang):
            self._record("hang", command=stage, injected=True)
            await self._park()
        assert isinstance(action, Reply)
        self._injected = True
        await self.push(action.line())
        if action.closes(stage):
            await self._hang_up("close", stage)

    async def _fault_status(self, stage: Stage, ctx: FaultContext) -> object:
        """The status line for aiosmtpd to send, or MISSING to carry on normally."""
        fault = self._owner.pick_fault(stage, ctx)
        if fault is None:
            return MISSING
        if not isinstance(fault.action, Reply):
            await self._carry_out(fault.action, stage)
        assert isinstance(fault.action, Reply)
        self._injected = True
        self._close_after_reply = fault.action.closes(stage)
        return fault.action.line()

    def _context(self, **changes: Any) -> FaultContext:
        envelope = self.envelope
        ctx = FaultContext(self._connection, self._transaction)
        if envelope is not None:
            ctx = replace(ctx, sender=envelope.mail_from, recipients=tuple(envelope.rcpt_tos))
        return replace(ctx, **changes)

    # ---- commands

    def ehlo_lines(self, lines: list[str]) -> list[str]:
        """EHLO reply lines with PIPELINING added and AUTH dropped unless configured."""
        if self._owner.credentials is None:
            lines = [line for line in lines if not line[4:].startswith("AUTH")]
        lines = [*lines[:-1], "250-PIPELINING", lines[-1]]
        kept = [line for line in lines[1:] if line[4:].split(" ")[0].upper() not in self._owner.without]
        return [lines[0], *[f"250-{line[4:]}" for line in kept[:-1]], *[f"250 {line[4:]}" for line in kept[-1:]]]

    async def on_mail(self, address: str) -> object:
        """MAIL hook: the fault reply, if any."""
        self._address = address
        return await self._fault_status(Stage.MAIL, self._context(sender=address))

    async def on_rcpt(self, address: str) -> object:
        """RCPT hook: the fault reply, if any."""
        self._address = address
        return await self._fault_status(Stage.RCPT, self._context(recipients=(address,)))

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        """Number the transaction, then let aiosmtpd handle MAIL."""
        self._transaction = self._owner.next_transaction()
        await super().smtp_MAIL(arg)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """DATA with faults at the command, in the body and at the final dot."""
        if await self._refuse_data(arg):
            return
        ctx = self._context()
        fault = self._owner.pick_fault(Stage.DATA, ctx)
        if fault is not None:
            await self._carry_out(fault.action, Stage.DATA)
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        self._command = Stage.END_OF_DATA
        body = await self._receive_body(self._owner.pick_fault(Stage.BODY, ctx))
        self.envelope = self._create_envelope()
        if body.error is not None:
            await self.push(body.error)
        else:
            await self._finish_message(body.content(), ctx)

    async def _refuse_data(self, arg: str) -> bool:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return True
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return True
        if arg:
            await self.push("501 Syntax: DATA")
            return True
        return False

    async def _receive_body(self, drop: Fault | None) -> _Body:
        drop_at = drop.action.after_bytes if drop and isinstance(drop.action, Drop) else None
        body = _Body(self.data_size_limit)
        while drop_at is None or body.size < drop_at:
            line, complete = await self._read_data_line()
            if body.is_end(line):
                break
            body.add(line, complete)
        if drop_at is not None:
            # reached the threshold, or the dot came first: either way no reply
            await self._hang_up("drop", Stage.BODY)
        return body

    async def _read_data_line(self) -> tuple[bytes, bool]:
        try:
            return await self._reader.readuntil(b"\r\n"), True
        except asyncio.LimitOverrunError as error:
            return await self._reader.read(error.consumed), False

    async def _finish_message(self, raw: bytes, ctx: FaultContext) -> None:
        message = _parse(raw)
        ctx = replace(ctx, message=message)
        fault = self._owner.pick_fault(Stage.END_OF_DATA, ctx)
        if fault is None or fault.store:
            self._store(raw, ctx, message, maybe_delivered=fault is not None)
        if fault is None:
            await self.push(f"250 2.0.0 Ok: queued as {ctx.transaction}")
        else:
            await self._carry_out(fault.action, Stage.END_OF_DATA)

    def _store(self, raw: bytes, ctx: FaultContext, message: EmailMessage, *, maybe_delivered: bool) -> None:
        assert self.session is not None
        assert ctx.transaction is not None
        login = self.session.auth_data
        received = ReceivedMessage(
            sender="" if ctx.sender in (None, "<>") else str(ctx.sender),
            recipients=ctx.recipients,
            raw=raw,
            message=message,
            connection=ctx.connection,
            transaction=ctx.transaction,
            maybe_delivered=maybe_delivered,
            tls=self.transport is not None and self.transport.get_extra_info("sslcontext") is not None,
            login=login.login.decode() if isinstance(login, LoginPassword) else None,
        )
        self._owner.messages.append(received)
        self._record("stored", injected=maybe_delivered)
