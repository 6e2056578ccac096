"""Where composed mail goes: ``.eml`` files in a folder, or an SMTP server over reused connections.

A transport is a stream: letters are fed to it in batches (``feed``) with a
``handoff`` callback, which it calls with each chunk's claims just before that
chunk's bytes leave, sending only what ``handoff`` says this node still holds;
what became of each letter comes back from ``collect``, in the outbox's terms,
with the addresses that must never be mailed again. Feeding while earlier
letters are still on the wire keeps the connections busy between batches.

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
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple, Protocol

from syndicate.config import Config
from syndicate.deliver.email.dkim import Signer, signer_for
from syndicate.deliver.email.smtp import Reply, SmtpConnection
from syndicate.deliver.email.wire import Attempt, Fate, Wire, WireSettings, session_opener
from syndicate.deliver.email.wire_process import RemoteWire
from syndicate.mail import Letter, MessageTemplate, Signing, press
from syndicate.outbox import Claim, Outcome, Result
from syndicate.render.writer import write_atomic

log = logging.getLogger(__name__)

THROTTLE_CODES = (421, 454)
THROTTLE_WAITS = (60, 300, 900, 1800, 3600)


class Batch(NamedTuple):
    """Letters to send, with what stays on this side of the wire: their claims and the templates they name."""

    letters: Sequence[Letter]
    claims: Mapping[int, Claim]  # by delivery id (a letter's id)
    templates: Mapping[int, MessageTemplate]  # by key (a letter's template)

    def chunks(self, size: int) -> list[Batch]:
        """This batch in pieces of at most ``size`` letters."""
        return [self._replace(letters=self.letters[i : i + size]) for i in range(0, len(self.letters), size)]

    def claimed(self) -> list[Claim]:
        """The claims of these letters, in their order."""
        return [self.claims[letter.id] for letter in self.letters]


@dataclass
class SendReport:
    """What a transport did with a list of messages."""

    results: list[Result] = field(default_factory=list)
    suppress: list[tuple[str, str]] = field(default_factory=list)
    throttled_until: datetime | None = None


Handoff = Callable[[Sequence[Claim]], set[int]]  # given claims about to leave: the ids still held


class Transport(Protocol):
    """Something that sends composed mail, as a stream."""

    def feed(self, batch: Batch, handoff: Handoff) -> None:
        """Take a batch of letters to send (``handoff`` is called for each chunk just before it leaves)."""
        ...

    def collect(self, going: bool, wait: float) -> SendReport:
        """Move the sending on (waiting up to ``wait`` seconds) and report what is done; not ``going``: stop."""
        ...

    def wants_more(self) -> bool:
        """Whether feeding more now keeps it busy (rather than queueing for long)."""
        ...

    def idle(self) -> bool:
        """Whether everything fed has been reported."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def send_all(transport: Transport, batch: Batch, handoff: Handoff, stop: Callable[[], bool]) -> SendReport:
    """Feed ``batch`` and collect until every letter is reported (for one-off sends and benchmarks)."""
    transport.feed(batch, handoff)
    report = SendReport()
    while not transport.idle():
        part = transport.collect(not stop(), wait=0.05)
        report.results += part.results
        report.suppress += part.suppress
        report.throttled_until = part.throttled_until or report.throttled_until
    return report


class FileTransport:
    """Writes each message atomically as ``<delivery id>.eml``: sending twice writes the same file."""

    def __init__(self, folder: Path, chunk: int, signer: Signing | None = None) -> None:
        self.folder = folder
        self.chunk = chunk
        self.signer = signer
        self.queue: deque[tuple[Batch, Handoff]] = deque()

    def feed(self, batch: Batch, handoff: Handoff) -> None:
        """Queue letters; they are written by :meth:`collect`."""
        self.queue.extend((chunk, handoff) for chunk in batch.chunks(self.chunk))

    def collect(self, going: bool, wait: float) -> SendReport:
        """Write every queued message this node still holds (or give them back when stopping)."""
        report = SendReport()
        while self.queue:
            chunk, handoff = self.queue.popleft()
            if not going:
                report.results += [Result(claim, Outcome.REQUEUE, "stopping") for claim in chunk.claimed()]
                continue
            held = handoff(chunk.claimed())
            report.results += [self._write(chunk, letter) for letter in chunk.letters if letter.id in held]
        return report

    def wants_more(self) -> bool:
        """Always: files are written as soon as they are fed."""
        return not self.queue

    def idle(self) -> bool:
        """Whether nothing waits to be written."""
        return not self.queue

    def _write(self, batch: Batch, letter: Letter) -> Result:
        claim = batch.claims[letter.id]
        data = press(batch.templates[letter.template], letter.values, self.signer)
        try:
            write_atomic(self.folder / f"{letter.id}.eml", data, durable=True)
        except OSError as exc:
            return Result(claim, Outcome.RETRY, f"cannot write to {self.folder}: {exc}")
        return Result(claim, Outcome.SENT)

    def close(self) -> None:
        """Nothing to release."""


class SmtpTransport:
    """Sends over up to ``connections`` pipelining SMTP sessions, reused for many messages.

    The sessions run on a :class:`Wire`, in this process or (``in_process=False``)
    in a child process of their own, so that composing and sending use two cores.
    Chunks are handed off just before they go to the wire, a few ahead of need.
    """

    def __init__(self, settings: WireSettings, chunk: int, clock: Callable[[], datetime], *, in_process: bool = True,
                 connect: Callable[[], SmtpConnection] | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.chunk = chunk
        self.clock = clock
        self.connect = connect
        self.in_process = in_process
        self._wire: Wire | RemoteWire | None = None
        self.queue: deque[tuple[Batch, Handoff]] = deque()
        self.on_wire: set[int] = set()  # chunks on the wire, by the id of their last letter
        self.letters: dict[int, tuple[Claim, Letter]] = {}  # letters on the wire, by id
        self.templates: set[int] = set()  # the keys of the templates the wire holds
        # Chunks handed off at once: one per session and one waiting for each, so no session waits
        # while this process composes the next (a crash leaves at most these unknown).
        self.depth = 2 * settings.connections
        self.throttled_until: datetime | None = None
        self.throttles = 0
        self._last_failure = ""

    @property
    def wire(self) -> Wire | RemoteWire:
        """The wire, started on first use."""
        if isinstance(self._wire, RemoteWire) and self._wire.dead and not self._wire.busy():
            self._wire.close()  # it died: what it held came back as unknown; a fresh one takes over
            self._wire = None
            self.templates.clear()
        if self._wire is None and self.in_process:
            signer = signer_for(self.settings.dkim) if self.settings.dkim else None
            self._wire = Wire(session_opener(self.settings, self.connect), self.settings.connections, signer)
        elif self._wire is None:
            self._wire = RemoteWire(self.settings)
        return self._wire

    def feed(self, batch: Batch, handoff: Handoff) -> None:
        """Queue letters in chunks; each is handed off just before it goes to the wire."""
        self.queue.extend((chunk, handoff) for chunk in batch.chunks(self.chunk))

    def wants_more(self) -> bool:
        """Whether the wire would run dry before more is fed."""
        return len(self.queue) < self.depth

    def idle(self) -> bool:
        """Whether every fed message has been reported."""
        return not self.queue and not self.on_wire

    def collect(self, going: bool, wait: float) -> SendReport:
        """Keep the wire fed, let it work up to ``wait`` seconds, and report the chunks it finished."""
        report = SendReport()
        wire = self.wire
        going = going and not self._throttled()
        if going and wire.failure is not None and not wire.busy():
            wire.failure = None  # a server that refused a while ago is tried again
        while going and wire.failure is None and self.queue and len(self.on_wire) < self.depth:
            self._submit(*self.queue.popleft(), report)
        if not going or (wire.failure is not None and not wire.busy()):
            report.results += [self._untried(claim) for chunk, _ in self.queue for claim in chunk.claimed()]
            self.queue.clear()
        if self.on_wire:
            for number, attempts in wire.pump(going, wait):
                self.on_wire.discard(number)
                report.results += [self._result(*self.letters.pop(a.id), a, report) for a in attempts]
        report.throttled_until = self.throttled_until if self._throttled() else None
        return report

    def _submit(self, chunk: Batch, handoff: Handoff, report: SendReport) -> None:
        claims = chunk.claims
        letters = []
        for letter in chunk.letters:
            if _unsafe(letter.recipient):  # the sender is the config's, checked there
                error = f"address {letter.recipient!r} cannot go in an SMTP command"
                report.results.append(Result(claims[letter.id], Outcome.FAILED, error))
            else:
                letters.append(letter)
        held = handoff([claims[letter.id] for letter in letters])
        letters = [letter for letter in letters if letter.id in held]
        if not letters:
            return
        wire = self.wire
        for key in {letter.template for letter in letters} - self.templates:
            wire.add_template(key, chunk.templates[key])  # once per run: letters bring only their own values
            self.templates.add(key)
        self.letters.update((letter.id, (claims[letter.id], letter)) for letter in letters)
        # A chunk is known by its last letter: no two chunks on the wire hold the same delivery.
        self.on_wire.add(letters[-1].id)
        wire.submit(letters[-1].id, letters)

    def _result(self, claim: Claim, letter: Letter, attempt: Attempt, report: SendReport) -> Result:
        reply = attempt.reply
        if attempt.fate == Fate.DELIVERED:
            return Result(claim, Outcome.SENT)
        if attempt.fate == Fate.MAYBE:
            return Result(claim, Outcome.UNKNOWN, attempt.describe())
        if attempt.fate == Fate.NOT_SENT:
            return Result(claim, Outcome.RETRY, attempt.describe())
        if attempt.fate == Fate.UNTRIED:
            return self._untried(claim, attempt.detail)
        assert reply is not None
        if reply.code in THROTTLE_CODES:
            self._throttle(attempt.describe())
            return Result(claim, Outcome.REQUEUE, attempt.describe(), self.throttled_until)
        if reply.code >= 500 and not (reply.code == 552 and attempt.stage == "rcpt") and attempt.stage != "mail":
            if about_the_address(attempt.stage, reply):
                report.suppress.append((letter.recipient, attempt.describe()))
            return Result(claim, Outcome.FAILED, attempt.describe())
        return Result(claim, Outcome.RETRY, attempt.describe())

    def _untried(self, claim: Claim, detail: str = "not started") -> Result:
        """A message that never went out: back to pending; a failed connection counts as an attempt."""
        failure = self.wire.failure
        if failure is not None and failure.code in THROTTLE_CODES:
            self._throttle(f"greeting: {failure}")
        if failure is not None and not self._throttled():
            if str(failure) != self._last_failure:  # one line per failure, not one per message
                log.error("cannot open an SMTP session: %s", failure)
                self._last_failure = str(failure)
            return Result(claim, Outcome.RETRY, f"connect: {failure}")
        return Result(claim, Outcome.REQUEUE, detail, self.throttled_until if self._throttled() else None)

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
        """QUIT every pooled session (and stop the sending process)."""
        if self._wire is not None:
            self._wire.close()
            self._wire = None


_ENHANCED = re.compile(r"^5\.(\d{1,3})\.\d{1,3}\b")


def about_the_address(stage: str, reply: Reply) -> bool:
    """Whether a permanent refusal is about the recipient's address (suppress it), not about us or the message.

    Enhanced status codes (RFC 3463) say so when given: 5.1.x addressing and
    5.2.x mailbox are the address's; 5.7.x (relaying denied, policy) and the
    rest are ours, and suppressing for them would empty the list in one run.
    Without one, only an RCPT refusal of 550, 551 or 553 counts.
    """
    enhanced = _ENHANCED.match(reply.text)
    if enhanced:
        return enhanced.group(1) in ("1", "2")
    return stage == "rcpt" and reply.code in (550, 551, 553)


_UNSAFE = re.compile(r"[\r\n<> ]")


def _unsafe(address: str) -> bool:
    """Whether an address would break the SMTP command it goes in (checked on entry too; this is the last guard)."""
    return not address.isascii() or _UNSAFE.search(address) is not None


def make_transport(config: Config, clock: Callable[[], datetime]) -> Transport:
    """The transport ``email.transport`` names, reading SMTP credentials from the environment."""
    email = config.email
    signer = Signer.from_settings(email.dkim) if email.dkim.enabled else None
    if email.transport == "file":
        return FileTransport(email.outbox, email.batch, signer)
    smtp = email.smtp
    credentials = None
    if smtp.username_env:
        user = config.secret("email.smtp.username_env", smtp.username_env)
        password = config.secret("email.smtp.password_env", smtp.password_env) if smtp.password_env else ""
        credentials = (user, password)
    settings = WireSettings(
        smtp.host, smtp.port, smtp.security, smtp.timeout_seconds, smtp.helo or config.site.host,
        credentials, smtp.connections, smtp.rate, signer.keys if signer is not None else (),
    )  # fmt: skip
    return SmtpTransport(settings, email.batch, clock, in_process=not smtp.sending_process)
