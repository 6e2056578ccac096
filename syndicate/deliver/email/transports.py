"""Where composed mail goes: ``.eml`` files in a folder, or SMTP relays over reused connections.

A transport is a stream: letters are fed to it in batches (``feed``); what
became of each comes back from ``collect``, in the outbox's terms, with the
addresses that must never be mailed again. Feeding while earlier letters are
still on the wire keeps the connections busy between batches.

Each transport marks a letter handed off just before its bytes leave and
records its end: the file transport for each chunk it writes, the SMTP
transport letter by letter on the wire (its ledger, where the sessions run).
How SMTP replies map to outcomes is in :mod:`syndicate.deliver.email.ledger`.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple, Protocol

from syndicate.config import Config
from syndicate.deliver.email.dkim import Signer, signer_for
from syndicate.deliver.email.ledger import OutboxLedger, outcome_of
from syndicate.deliver.email.smtp import SmtpConnection
from syndicate.deliver.email.wire import Attempt, Fate, FreeLedger, RelaySettings, Wire, WireSettings, pools_for
from syndicate.deliver.email.wire_process import DIED, Ledgering, RemoteWire
from syndicate.mail import Letter, MessageTemplate, Signing, press
from syndicate.outbox import Channel, Claim, Outbox, Outcome, Result
from syndicate.render.writer import write_atomic

log = logging.getLogger(__name__)


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
    """What a transport did with a list of messages.

    ``results`` are for the caller to record; ``recorded`` were recorded as they
    happened (by the wire's ledger) and are only counted.
    """

    results: list[Result] = field(default_factory=list)
    recorded: list[Result] = field(default_factory=list)
    suppress: list[tuple[str, str]] = field(default_factory=list)
    throttled_until: datetime | None = None  # every relay throttles: send nothing before then
    paused: bool = False  # no relay can be reached now: claim nothing more this run


class Transport(Protocol):
    """Something that sends composed mail, as a stream."""

    def feed(self, batch: Batch) -> None:
        """Take a batch of claimed letters to send."""
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


def send_all(transport: Transport, batch: Batch, stop: Callable[[], bool]) -> SendReport:
    """Feed ``batch`` and collect until every letter is reported (for one-off sends and benchmarks)."""
    transport.feed(batch)
    report = SendReport()
    while not transport.idle():
        part = transport.collect(not stop(), wait=0.05)
        report.results += part.results
        report.recorded += part.recorded
        report.suppress += part.suppress
        report.throttled_until = part.throttled_until or report.throttled_until
    return report


class FileTransport:
    """Writes each message atomically as ``<delivery id>.eml``: sending twice writes the same file."""

    def __init__(self, folder: Path, chunk: int, outbox: Outbox, clock: Callable[[], datetime],
                 signer: Signing | None = None) -> None:  # fmt: skip
        self.folder = folder
        self.chunk = chunk
        self.outbox = outbox
        self.clock = clock
        self.signer = signer
        self.queue: deque[Batch] = deque()

    def feed(self, batch: Batch) -> None:
        """Queue letters; they are written by :meth:`collect`."""
        self.queue.extend(batch.chunks(self.chunk))

    def collect(self, going: bool, wait: float) -> SendReport:
        """Write every queued message this node still holds (or give them back when stopping)."""
        report = SendReport()
        while self.queue:
            chunk = self.queue.popleft()
            if not going:
                report.results += [Result(claim, Outcome.REQUEUE, "stopping") for claim in chunk.claimed()]
                continue
            held = self.outbox.handoff(chunk.claimed(), self.clock())
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
    """Sends over the relays' pipelining SMTP sessions, reused for many messages.

    The sessions and their ledger run on a :class:`Wire`, in this process or
    (``ledgering`` given) in a child process of their own, so that composing and
    sending use two cores. Chunks go to the wire a few ahead of need; each letter
    is handed off there, just before its envelope leaves.
    """

    def __init__(self, settings: WireSettings, chunk: int, clock: Callable[[], datetime], outbox: Outbox | None,
                 *, in_process: bool = True, ledgering: Ledgering | None = None,
                 connect: Callable[[], SmtpConnection] | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.chunk = chunk
        self.clock = clock
        self.outbox = outbox
        self.in_process = in_process
        self.ledgering = ledgering  # how the sending process reaches the outbox (None: it records nothing)
        self.connect = connect
        self._wire: Wire | RemoteWire | None = None
        self._ledger: OutboxLedger | None = None
        self.queue: deque[Batch] = deque()
        self.on_wire: set[int] = set()  # chunks on the wire, by the id of their last letter
        self.letters: dict[int, tuple[Claim, Letter]] = {}  # letters on the wire, by id
        self.templates: set[int] = set()  # the keys of the templates the wire holds
        # Chunks given to the wire at once: one per session and one waiting for each, so no session
        # waits while this process composes the next (they are claimed, not handed off).
        self.depth = 2 * settings.connections
        self._last_failure = ""

    @property
    def wire(self) -> Wire | RemoteWire:
        """The wire, started on first use."""
        if isinstance(self._wire, RemoteWire) and self._wire.dead and not self._wire.busy():
            self._wire.close()  # it died: what it held was settled; a fresh one takes over
            self._wire = None
            self.templates.clear()
        if self._wire is None and self.in_process:
            signer = signer_for(self.settings.dkim) if self.settings.dkim else None
            ledger = self._local_ledger()
            self._wire = Wire(pools_for(self.settings, self.connect), ledger, self.clock, signer)
        elif self._wire is None:
            self._wire = RemoteWire(self.settings, self.ledgering, self.clock)
        return self._wire

    def _local_ledger(self) -> OutboxLedger | FreeLedger:
        if self.outbox is None:
            return FreeLedger()  # a send outside the outbox: a test mail, a benchmark's ceiling
        self._ledger = OutboxLedger(self.outbox, self.clock)
        return self._ledger

    def feed(self, batch: Batch) -> None:
        """Queue letters in chunks; each goes to the wire when there is room."""
        self.queue.extend(batch.chunks(self.chunk))

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
        blocked = wire.blocked_until()
        stalled = blocked is not None and not wire.busy()
        while going and not stalled and self.queue and len(self.on_wire) < self.depth:
            self._submit(self.queue.popleft(), report)
        if not going or stalled:
            reason = "stopping" if not going else f"every relay rests: {wire.failure}"
            retry_at = blocked[0] if blocked is not None and blocked[1] else None
            report.results += [
                Result(claim, Outcome.REQUEUE, reason, retry_at) for chunk in self.queue for claim in chunk.claimed()
            ]
            self.queue.clear()
        if self.on_wire:
            for number, attempts in wire.pump(going, wait):
                self.on_wire.discard(number)
                self._ended(attempts, report)
        blocked = wire.blocked_until()
        if blocked is not None:
            until, throttled = blocked
            report.throttled_until = until if throttled else None
            report.paused = not throttled
            failure = str(wire.failure)
            if not throttled and failure != self._last_failure:  # one line per failure, not one per message
                log.error("no mail relay can be reached: %s", failure)
                self._last_failure = failure
        return report

    def _submit(self, chunk: Batch, report: SendReport) -> None:
        claims = chunk.claims
        letters = []
        for letter in chunk.letters:
            if _unsafe(letter.recipient):  # the sender is the config's, checked there
                error = f"address {letter.recipient!r} cannot go in an SMTP command"
                report.results.append(Result(claims[letter.id], Outcome.FAILED, error))
            else:
                letters.append(letter)
        if not letters:
            return
        wire = self.wire
        for key in {letter.template for letter in letters} - self.templates:
            wire.add_template(key, chunk.templates[key])  # once per run: letters bring only their own values
            self.templates.add(key)
        self.letters.update((letter.id, (claims[letter.id], letter)) for letter in letters)
        # A chunk is known by its last letter: no two chunks on the wire hold the same delivery.
        self.on_wire.add(letters[-1].id)
        if isinstance(wire, RemoteWire):
            leases = [(c.id, c.token, c.attempts) for c in (claims[letter.id] for letter in letters)]
            wire.submit(letters[-1].id, letters, leases)
        else:
            if self._ledger is not None:
                self._ledger.hold(claims[letter.id] for letter in letters)
            wire.submit(letters[-1].id, letters)

    def _ended(self, attempts: list[Attempt], report: SendReport) -> None:
        """Count letters the wire recorded; a dead sending process's letters are settled here."""
        orphans = [self.letters[a.id][0] for a in attempts if a.fate == Fate.MAYBE and a.detail == DIED]
        unknown = self._orphaned(orphans) if orphans else set()
        first = len(report.recorded)
        for attempt in attempts:
            claim, letter = self.letters.pop(attempt.id)
            if attempt.detail == DIED and attempt.fate == Fate.MAYBE:
                outcome = Outcome.UNKNOWN if claim.id in unknown else Outcome.REQUEUE
                report.recorded.append(Result(claim, outcome, attempt.detail))
                continue
            verdict = outcome_of(attempt)
            if verdict is None:
                continue  # another node's now
            report.recorded.append(Result(claim, verdict.outcome, verdict.error, verdict.retry_at))
            if verdict.suppress:
                report.suppress.append((letter.recipient, attempt.describe()))
        if self.outbox is not None:
            self.outbox.settled(report.recorded[first:])  # their leases need no keeping now

    def _orphaned(self, claims: list[Claim]) -> set[int]:
        if self.outbox is None:
            return set()
        return self.outbox.orphaned(claims, self.clock())

    def close(self) -> None:
        """QUIT every pooled session (and stop the sending process)."""
        if self._wire is not None:
            self._wire.close()
            self._wire = None


_UNSAFE = re.compile(r"[\r\n<> ]")


def _unsafe(address: str) -> bool:
    """Whether an address would break the SMTP command it goes in (checked on entry too; this is the last guard)."""
    return not address.isascii() or _UNSAFE.search(address) is not None


def relay_settings(config: Config) -> tuple[RelaySettings, ...]:
    """The relays of ``config``, with their credentials read from the environment."""
    out = []
    for index, relay in enumerate(config.mail_relays):
        where = "email.smtp" if not config.email.relays else f"email.relays[{index}]"
        credentials = None
        if relay.username_env:
            user = config.secret(f"{where}.username_env", relay.username_env)
            password = config.secret(f"{where}.password_env", relay.password_env) if relay.password_env else ""
            credentials = (user, password)
        helo = relay.helo or config.site.host
        out.append(RelaySettings(relay.name, relay.host, relay.port, relay.security, relay.timeout_seconds, helo,
                                 credentials, relay.connections, relay.rate, relay.weight, relay.daily_limit))  # fmt: skip
    return tuple(out)


def wire_settings(config: Config, signer: Signer | None) -> WireSettings:
    """The relays and signing keys the wire uses."""
    return WireSettings(relay_settings(config), signer.keys if signer is not None else ())


def make_transport(config: Config, clock: Callable[[], datetime], outbox: Outbox) -> Transport:
    """The transport ``email.transport`` names, reading SMTP credentials from the environment."""
    email = config.email
    signer = Signer.from_settings(email.dkim) if email.dkim.enabled else None
    if email.transport == "file":
        return FileTransport(email.outbox, email.batch, outbox, clock, signer)
    settings = wire_settings(config, signer)
    ledgering = None
    if email.smtp.sending_process:
        policy = outbox.policies[Channel.EMAIL]
        ledgering = Ledgering(outbox.db.url, outbox.node, outbox.lease.total_seconds(), policy)
    return SmtpTransport(settings, email.batch, clock, outbox, in_process=ledgering is None, ledgering=ledgering)
