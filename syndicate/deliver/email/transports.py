"""Where composed mail goes: ``.eml`` files in a folder, or an SMTP server over reused connections.

A transport is handed a list of messages and a ``handoff`` callback. It calls
``handoff`` for each chunk just before that chunk's bytes leave, and sends only
what ``handoff`` says this node still holds. It answers with what became of each
message, in the outbox's terms, and which addresses must never be mailed again.

SMTP replies map to outcomes so:

- 2xx after the final dot: sent;
- 421 or 454 anywhere: the server is throttling us; the whole transport
  backs off and the message waits (not counted as an attempt);
- other 4xx, and 552 on RCPT (mailbox full): retried later;
- other 5xx: failed, and the address is suppressed;
- the connection failed before the final dot left: retried (nothing arrived);
- no reply after the final dot: unknown (it may have arrived; never re-sent on its own).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from syndicate.config import Config
from syndicate.deliver.email.smtp import SmtpConnection
from syndicate.deliver.email.wire import Attempt, Fate, Letter, Session, Wire
from syndicate.outbox import Claim, Outcome, Result
from syndicate.render.writer import write_atomic

log = logging.getLogger(__name__)

THROTTLE_CODES = (421, 454)
THROTTLE_WAITS = (60, 300, 900, 1800, 3600)


@dataclass(frozen=True)
class Outgoing:
    """One composed message for one claimed delivery."""

    claim: Claim
    sender: str
    recipient: str
    data: bytes


@dataclass
class SendReport:
    """What a transport did with a list of messages."""

    results: list[Result] = field(default_factory=list)
    suppress: list[tuple[str, str]] = field(default_factory=list)
    throttled_until: datetime | None = None


Handoff = Callable[[Sequence[Outgoing]], set[int]]


class Transport(Protocol):
    """Something that sends composed mail."""

    def send(self, messages: Sequence[Outgoing], handoff: Handoff, stop: Callable[[], bool]) -> SendReport:
        """Send ``messages`` (calling ``handoff`` before each chunk leaves); say what became of each."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class FileTransport:
    """Writes each message atomically as ``<delivery id>.eml``: sending twice writes the same file."""

    def __init__(self, folder: Path, chunk: int) -> None:
        self.folder = folder
        self.chunk = chunk

    def send(self, messages: Sequence[Outgoing], handoff: Handoff, stop: Callable[[], bool]) -> SendReport:
        """Write every message this node still holds."""
        report = SendReport()
        for start in range(0, len(messages), self.chunk):
            chunk = messages[start : start + self.chunk]
            if stop():
                report.results += [Result(m.claim, Outcome.REQUEUE, "stopping") for m in chunk]
                continue
            held = handoff(chunk)
            for message in chunk:
                if message.claim.id in held:
                    report.results.append(self._write(message))
        return report

    def _write(self, message: Outgoing) -> Result:
        try:
            write_atomic(self.folder / f"{message.claim.id}.eml", message.data, durable=True)
        except OSError as exc:
            return Result(message.claim, Outcome.RETRY, f"cannot write to {self.folder}: {exc}")
        return Result(message.claim, Outcome.SENT)

    def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach the mail server."""

    host: str
    port: int
    security: str
    timeout: float
    helo: str
    credentials: tuple[str, str] | None
    connections: int
    rate: float
    chunk: int


class RateLimit:
    """At most ``rate`` messages per second over all connections (0 = no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = time.monotonic()

    def reserve(self) -> float:
        """The monotonic time the next message may start at (and book it)."""
        slot = max(time.monotonic(), self.next)
        self.next = slot + self.interval
        return slot


class SmtpTransport:
    """Sends over up to ``connections`` pipelining SMTP sessions at once, reused for many messages."""

    def __init__(
        self, settings: SmtpSettings, clock: Callable[[], datetime], connect: Callable[[], SmtpConnection] | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.connect = connect or self._connect
        self.rate = RateLimit(settings.rate)
        self.wire = Wire(self._session, settings.connections, settings.chunk)
        self.throttled_until: datetime | None = None
        self.throttles = 0

    def _connect(self) -> SmtpConnection:
        s = self.settings
        connection = SmtpConnection(
            s.host, s.port, security=s.security, timeout=s.timeout, helo=s.helo, credentials=s.credentials
        )
        connection.open()
        return connection

    def _session(self) -> Session:
        return Session(self.connect(), self.settings.timeout, self.rate.reserve if self.rate.interval else None)

    def send(self, messages: Sequence[Outgoing], handoff: Handoff, stop: Callable[[], bool]) -> SendReport:
        """Send ``messages``; each chunk is handed off just before its first byte leaves."""
        report = SendReport()
        letters = [Letter(i, m.sender, m.recipient, m.data) for i, m in enumerate(messages)]

        def hand_off(chunk: Sequence[Letter]) -> set[int]:
            held = handoff([messages[letter.index] for letter in chunk])
            return {letter.index for letter in chunk if messages[letter.index].claim.id in held}

        attempts = self.wire.send(letters, hand_off, lambda: not stop() and not self._throttled())
        for attempt in attempts:
            report.results.append(self._result(messages[attempt.index], attempt, report))
        report.throttled_until = self.throttled_until if self._throttled() else None
        return report

    def _result(self, message: Outgoing, attempt: Attempt, report: SendReport) -> Result:
        claim, reply = message.claim, attempt.reply
        if attempt.fate == Fate.DELIVERED:
            return Result(claim, Outcome.SENT)
        if attempt.fate == Fate.MAYBE:
            return Result(claim, Outcome.UNKNOWN, attempt.describe())
        if attempt.fate == Fate.NOT_SENT:
            return Result(claim, Outcome.RETRY, attempt.describe())
        if attempt.fate == Fate.UNTRIED:
            return self._untried(claim, attempt)
        assert reply is not None
        if reply.code in THROTTLE_CODES:
            self._throttle(attempt.describe())
            return Result(claim, Outcome.REQUEUE, attempt.describe(), self.throttled_until)
        if reply.code >= 500 and not (reply.code == 552 and attempt.stage == "rcpt") and attempt.stage != "mail":
            report.suppress.append((message.recipient, attempt.describe()))
            return Result(claim, Outcome.FAILED, attempt.describe())
        return Result(claim, Outcome.RETRY, attempt.describe())

    def _untried(self, claim: Claim, attempt: Attempt) -> Result:
        failure = self.wire.failure
        if failure is not None and failure.code in THROTTLE_CODES:
            self._throttle(f"greeting: {failure}")
        if failure is not None and not self._throttled():
            log.error("cannot open an SMTP session: %s", failure)
            return Result(claim, Outcome.RETRY, f"connect: {failure}")
        return Result(claim, Outcome.REQUEUE, attempt.detail, self.throttled_until if self._throttled() else None)

    def _throttled(self) -> bool:
        return self.throttled_until is not None and self.clock() < self.throttled_until

    def _throttle(self, reason: str) -> None:
        if self._throttled():
            return
        wait = THROTTLE_WAITS[min(self.throttles, len(THROTTLE_WAITS) - 1)]
        self.throttles += 1
        self.throttled_until = self.clock() + timedelta(seconds=wait)
        log.warning("mail server is throttling (%s); all sending waits %d s", reason, wait)

    def close(self) -> None:
        """QUIT every pooled session."""
        self.wire.close()


def make_transport(config: Config, clock: Callable[[], datetime]) -> Transport:
    """The transport ``email.transport`` names, reading SMTP credentials from the environment."""
    email = config.email
    if email.transport == "file":
        return FileTransport(email.outbox, email.batch)
    smtp = email.smtp
    credentials = None
    if smtp.username_env:
        user = config.secret("email.smtp.username_env", smtp.username_env)
        password = config.secret("email.smtp.password_env", smtp.password_env) if smtp.password_env else ""
        credentials = (user, password)
    settings = SmtpSettings(
        smtp.host, smtp.port, smtp.security, smtp.timeout_seconds, smtp.helo or config.site.host,
        credentials, smtp.connections, smtp.rate, email.batch,
    )  # fmt: skip
    return SmtpTransport(settings, clock)
