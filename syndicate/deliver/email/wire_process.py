"""The wire in a process of its own: composing (the parent) and sending (the child) on two cores.

Python runs one thread at a time, so a sender that composes, records and
talks SMTP in one process spends its time taking turns. Here the parent
claims and composes; the child owns the SMTP sessions, signs, and keeps the
outbox's record of what leaves (:class:`~syndicate.deliver.email.ledger.OutboxLedger`,
its own database connection): each letter is handed off just before its
envelope leaves and recorded just after its reply, with no round trip to
the parent in between.

They talk over a socket pair: each edition's template goes down once, then
chunks of letters with their claims (a letter brings only its recipient's
values), and the parent's clock; what each letter came to comes back up,
chunk by chunk, already recorded.

If the parent dies, the child stops taking new letters, finishes what is on
the wire (within the relays' timeouts), records it, gives back the rest and
exits. If the child dies, the parent marks what it held: handed off ones
``unknown`` (they may have left), the rest pending again.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any

from syndicate.deliver.email.dkim import signer_for
from syndicate.deliver.email.ledger import OutboxLedger
from syndicate.deliver.email.smtp import Reply, SmtpError
from syndicate.deliver.email.wire import Attempt, Fate, FreeLedger, Wire, WireSettings, pools_for
from syndicate.mail import Letter, MessageTemplate
from syndicate.outbox import Channel, Claim, Outbox, RetryPolicy
from syndicate.store import relays
from syndicate.store.db import Database

log = logging.getLogger(__name__)

REPORT_EVERY = 5.0  # seconds between the relays' states written for `status`

DIED = "the sending process stopped"  # the detail of every letter a dead sending process held

Lease = tuple[int, str, int]  # a letter's claim as it crosses: delivery id, lease token, attempts so far


@dataclass(frozen=True)
class Ledgering:
    """What the sending process needs to keep the outbox's record (plain values)."""

    database_url: str
    node: str
    lease_seconds: float
    policy: RetryPolicy


class RemoteWire:
    """A :class:`Wire` in a child process, with the same submit / pump / busy / close.

    The child is a fresh interpreter (``python -m syndicate.deliver.email.wire_process``)
    talking over a socket pair, so it shares no threads, locks or connections
    with the parent.
    """

    def __init__(self, settings: WireSettings, ledgering: Ledgering | None, clock: Callable[[], datetime]) -> None:
        ours, theirs = socket.socketpair()
        command = [sys.executable, "-m", __name__, str(theirs.fileno())]
        self.process = subprocess.Popen(command, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        theirs.close()
        self.pipe = Connection(ours.detach())
        self.clock = clock
        self.now: datetime | None = None
        self.pipe.send((settings, ledgering))
        self.letters: dict[int, list[int]] = {}
        self.going = True
        self.blocked: tuple[datetime, bool] | None = None
        self.failure: SmtpError | None = None
        self.relay_states: dict[str, dict[str, Any]] = {}

    def submit(self, chunk: int, letters: Sequence[Letter], leases: Sequence[Lease]) -> None:
        """Send a chunk down to the child, with the claims of its letters."""
        self.letters[chunk] = [letter.id for letter in letters]
        self._tell_the_time()
        self.pipe.send(("chunk", chunk, list(letters), list(leases)))

    def add_template(self, key: int, template: MessageTemplate) -> None:
        """Send an edition's template to the child, once."""
        self.pipe.send(("template", key, template))

    def busy(self) -> bool:
        """Whether a chunk sent down has not come back."""
        return bool(self.letters)

    def blocked_until(self) -> tuple[datetime, bool] | None:
        """As the child last said: when every relay rests, until when, and whether all throttle."""
        return self.blocked

    def pump(self, going: bool, timeout: float = 0.05) -> list[tuple[int, list[Attempt]]]:
        """Tell the child the time and whether to go on; collect the chunks it finished (already recorded)."""
        if going != self.going:
            self.going = going
            self.pipe.send(("going", going))
        done: list[tuple[int, list[Attempt]]] = []
        try:
            self._tell_the_time()
            while self.pipe.poll(timeout if not done else 0):
                _, payload, blocked, failure, states = self.pipe.recv()
                self.blocked = (datetime.fromisoformat(blocked[0]), blocked[1]) if blocked else None
                self.failure = SmtpError(*failure) if failure else None
                self.relay_states = states
                for chunk, attempts in payload:
                    self.letters.pop(chunk, None)
                    done.append((chunk, [_attempt(*fields) for fields in attempts]))
        except (EOFError, OSError):
            done += self._child_died()
        return done

    def _tell_the_time(self) -> None:
        now = self.clock()
        if now != self.now:
            self.now = now
            self.pipe.send(("clock", now))

    @property
    def dead(self) -> bool:
        """Whether the child has stopped (a new wire is needed)."""
        return self.process.poll() is not None

    def _child_died(self) -> list[tuple[int, list[Attempt]]]:
        log.error("the SMTP sending process stopped unexpectedly (exit code %s)", self.process.poll())
        self.failure = SmtpError("the SMTP sending process stopped")
        lost = [
            (chunk, [Attempt(i, Fate.MAYBE, "dot", None, DIED) for i in indexes])
            for chunk, indexes in self.letters.items()
        ]
        self.letters.clear()
        return lost

    def close(self) -> None:
        """Ask the child to QUIT its sessions and exit."""
        with contextlib.suppress(OSError, EOFError):
            self.pipe.send(("close", None))
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.pipe.close()


class _ParentClock:
    """The parent's clock, as last told, moved on by the time since (the parent's clock may be a test's)."""

    def __init__(self) -> None:
        self.told = datetime.now(UTC)
        self.at = time.monotonic()

    def set(self, now: datetime) -> None:
        self.told, self.at = now, time.monotonic()

    def __call__(self) -> datetime:
        return self.told + timedelta(seconds=time.monotonic() - self.at)


def serve(pipe: Connection) -> None:
    """The child: run the wire until told to close, or until the parent is gone."""
    settings: WireSettings
    ledgering: Ledgering | None
    settings, ledgering = pipe.recv()
    clock = _ParentClock()
    db = Database(ledgering.database_url) if ledgering is not None else None
    ledger: OutboxLedger | FreeLedger = FreeLedger()  # no outbox: a send outside it (a benchmark's ceiling)
    outbox: Outbox | None = None
    if ledgering is not None and db is not None:
        outbox = Outbox(db, ledgering.node, {Channel.EMAIL: ledgering.policy}, ledgering.lease_seconds)
        ledger = OutboxLedger(outbox, clock)
    wire = Wire(pools_for(settings), ledger, clock, signer_for(settings.dkim) if settings.dkim else None)
    wire.watch(pipe)
    reporter = _Reporter(db, ledgering.node if ledgering else "", clock)
    going = True
    try:
        while True:
            while pipe.poll():
                kind, *args = pipe.recv()
                if kind == "close":
                    return
                if kind == "going":
                    going = args[0]
                elif kind == "clock":
                    clock.set(args[0])
                elif kind == "chunk":
                    chunk, letters, leases = args
                    if isinstance(ledger, OutboxLedger):
                        template = letters[0].template
                        ledger.hold(Claim(i, Channel.EMAIL, "edition", template, "", attempts, None, token)
                                    for i, token, attempts in leases)  # fmt: skip
                    wire.submit(chunk, letters)
                elif kind == "template":
                    wire.add_template(args[0], args[1])
            _report(pipe, wire, wire.pump(going, timeout=0.05))
            reporter.maybe(wire)
    except (EOFError, OSError, KeyboardInterrupt):
        _finish_alone(wire)  # the parent is gone: finish what is on the wire and record it
    finally:
        wire.close()
        reporter.maybe(wire, now=True)
        if outbox is not None:
            outbox.close()
        if db is not None:
            db.dispose()


def _report(pipe: Connection, wire: Wire, done: list[tuple[int, list[Attempt]]]) -> None:
    if not done:
        return
    blocked = wire.blocked_until()
    shown = (blocked[0].isoformat(), blocked[1]) if blocked else None
    failure = wire.failure
    states = {name: {**view, "until": view["until"].isoformat() if view["until"] else None}
              for name, view in wire.relays().items()}  # fmt: skip
    payload = [(chunk, [_fields(a) for a in attempts]) for chunk, attempts in done]
    pipe.send(("done", payload, shown, (str(failure), failure.code) if failure else None, states))


def _finish_alone(wire: Wire) -> None:
    """Stop starting letters, let those on the wire end (bounded by the relays' timeouts), record them all."""
    deadline = time.monotonic() + max((pool.relay.timeout for pool in wire.pools), default=30.0) + 1
    with contextlib.suppress(Exception):
        while wire.busy() and time.monotonic() < deadline:
            wire.pump(False, timeout=0.05)


class _Reporter:
    """Writes how this node sees each relay, every few seconds, for ``status`` and ``/metrics``."""

    def __init__(self, db: Database | None, node: str, clock: Callable[[], datetime]) -> None:
        self.db, self.node, self.clock = db, node, clock
        self.last = 0.0

    def maybe(self, wire: Wire, now: bool = False) -> None:
        if self.db is None or (not now and time.monotonic() - self.last < REPORT_EVERY):
            return
        self.last = time.monotonic()
        with contextlib.suppress(Exception), self.db.write() as conn:  # figures: never a reason to stop sending
            relays.report(conn, self.node, wire.relays(), self.clock())


def _fields(attempt: Attempt) -> tuple[Any, ...]:
    """An attempt as plain values for the pipe (unpickling dataclasses costs the parent dear)."""
    reply = attempt.reply
    return (
        attempt.id,
        attempt.fate.value,
        attempt.stage,
        reply.code if reply else None,
        reply.text if reply else "",
        attempt.detail,
        attempt.relay,
        attempt.retry_at.isoformat() if attempt.retry_at else None,
    )


def _attempt(
    index: int, fate: str, stage: str, code: int | None, text: str, detail: str, relay: str, retry_at: str | None
) -> Attempt:
    reply = Reply(code, text) if code is not None else None
    return Attempt(
        index, Fate(fate), stage, reply, detail, relay, datetime.fromisoformat(retry_at) if retry_at else None
    )


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
