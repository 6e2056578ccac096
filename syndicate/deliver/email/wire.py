"""Many SMTP sessions over one or more relays, driven from one thread, pipelined (RFC 2920).

Each session sends a message's text, its final dot and the next message's
envelope (MAIL, RCPT, DATA) in one write, then waits for the four replies; it
never sends a message's text before the 354 that allows it. A selector drives
all sessions at once, so the connections keep the servers busy while Python
waits on none of them, and no thread is needed per connection.

**Relays.** Chunks of letters are spread over the relays (:class:`Pool`) by
weight. A relay that cannot be reached, that throttles (421/454) or whose daily
quota is used up is skipped until it recovers; what it had not sent goes to
the others. A message refused for its address is never tried elsewhere.

**Hand-off follows the bytes.** A letter is marked handed off in the outbox
(the :class:`Ledger`) just before its envelope leaves, and its end is recorded
just after its reply, both in one grouped commit per turn. A session holds at
most :data:`WINDOW` letters handed off and not yet recorded, so if the whole
sending side is killed, at most that many per connection are left unknown;
everything else is claimed again and sent once.

What became of each message is known from how far it got:

- refused at MAIL, RCPT or DATA: the server's reply, nothing arrived;
- the connection failed before the final dot left this host: nothing arrived;
- the final dot left and no reply came back: it may have arrived (``unknown``);
- never started (the session ended first): handed back untouched.
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, NamedTuple, Protocol

from syndicate.deliver.email.dkim import Key
from syndicate.deliver.email.smtp import CRLF, Reply, SmtpConnection, SmtpError
from syndicate.mail import Letter, MessageTemplate, Signing, dot_stuff, press, seven_bit

log = logging.getLogger(__name__)

COMMIT_DELAY = 0.002  # seconds an end may wait for a commit that carries more with it
WINDOW = 2  # letters per session handed off and not yet recorded: what a crash can leave unknown
THROTTLE_CODES = (421, 454)
THROTTLE_WAITS = (60, 300, 900, 1800, 3600)  # seconds a throttling relay rests, longer each time in a run
DOWN_WAITS = (10, 30, 60, 300)  # seconds an unreachable relay rests before it is tried again
UNLIMITED = 2**31 - 1  # the daily limit of a relay without one
UNLIMITED_BLOCK = 1000  # a relay without a limit is counted in blocks this large (what is unused goes back)
RATE_WINDOW = 30.0  # seconds over which each relay's sending rate is measured


class Fate(Enum):
    """How far a message got on the wire."""

    DELIVERED = "delivered"  # 2xx after the final dot
    REFUSED = "refused"  # a 4xx/5xx reply at some stage
    NOT_SENT = "not sent"  # the connection failed before the final dot left: nothing arrived
    MAYBE = "maybe"  # the final dot left; no reply came back
    UNTRIED = "untried"  # never started
    LOST = "lost"  # another node holds its delivery now: not ours to send, nor to record


class Attempt(NamedTuple):
    """The end of one letter on the wire (by its id): its fate, the stage, the reply (if any) and why."""

    id: int
    fate: Fate
    stage: str
    reply: Reply | None = None
    detail: str = ""
    relay: str = ""
    retry_at: datetime | None = None  # a throttling relay's rest: not before then

    def describe(self) -> str:
        """For ``deliveries list``: the stage and what the server said (or that it said nothing)."""
        said = str(self.reply) if self.reply else self.detail or "no reply"
        where = f" ({self.relay})" if self.relay else ""
        return f"{self.stage}: {said}{where}"


class Ledger(Protocol):
    """The outbox's record of what the wire does, committed as it happens."""

    def settle(self, ends: Sequence[Attempt], starting: Sequence[int]) -> set[int]:
        """Record ``ends`` and mark ``starting`` handed off, in one commit; return the ids of ``starting`` still held."""
        ...

    def reserve(self, relay: str, wanted: int, limit: int) -> int:
        """Take up to ``wanted`` messages of ``relay``'s daily ``limit``; return how many were granted."""
        ...

    def give_back(self, relay: str, count: int) -> None:
        """Return reserved quota that was not used."""
        ...


class FreeLedger:
    """A ledger that holds everything and records nothing: for sends outside the outbox (send-test, benchmarks)."""

    def settle(self, ends: Sequence[Attempt], starting: Sequence[int]) -> set[int]:
        """Every letter is ours."""
        return set(starting)

    def reserve(self, relay: str, wanted: int, limit: int) -> int:
        """No quota is kept."""
        return wanted

    def give_back(self, relay: str, count: int) -> None:
        """Nothing to return."""


@dataclass(frozen=True)
class RelaySettings:
    """How to reach one mail server and how hard to press it (plain values: they cross to a sending process)."""

    name: str
    host: str
    port: int
    security: str
    timeout: float
    helo: str
    credentials: tuple[str, str] | None
    connections: int
    rate: float
    weight: float = 1.0
    daily_limit: int = 0


@dataclass(frozen=True)
class WireSettings:
    """The relays, and the keys the wire signs with."""

    relays: tuple[RelaySettings, ...]
    dkim: tuple[Key, ...] = ()

    @property
    def connections(self) -> int:
        """Sessions open at once over every relay."""
        return sum(relay.connections for relay in self.relays)


@dataclass
class _Job:
    letter: Letter
    envelope_replies: list[Reply] = field(default_factory=list)
    dot_ends_at: int = 0  # offset in the session's output stream just after this message's final dot
    opened: bool = False  # the server said 354: the text may follow, once the letter is handed off
    cancelled: bool = False  # another node took it over after its envelope left: its text never follows


class Session:
    """One open SMTP connection in its message phase, advanced by :class:`Wire` as replies arrive."""

    def __init__(self, connection: SmtpConnection, timeout: float, pace: Callable[[], float] | None = None) -> None:
        assert connection.sock is not None
        self.connection = connection
        self.sock: socket.socket = connection.sock
        self.pace = pace
        self.sock.setblocking(False)
        self.timeout = timeout
        self.pipelining = "PIPELINING" in connection.extensions
        self.eight_bit = "8BITMIME" in connection.extensions
        self.body = " BODY=8BITMIME" if self.eight_bit else ""
        self.out = bytearray()
        self.sent_total = 0  # bytes of the output stream that left this host
        self.written_total = 0  # bytes of the output stream queued so far
        self.incoming = bytearray(connection.take_buffer())
        self.expect: deque[tuple[str, _Job | None]] = deque()
        self.queue: deque[Letter] = deque()
        self.dirty = False
        self.alive = True
        self.hang_up = False  # set when the session must be dropped at the end of the turn
        self.last_heard = time.monotonic()
        self.not_before = 0.0
        self.slot_booked = False
        self.pool: Pool | None = None  # the relay this session talks to; set by the wire
        self.press: Callable[[Letter, bool], bytes] | None = None  # finishes a letter's bytes; set by the wire
        self.permitted: set[int] = set()  # the wire's letters handed off (shared by every session)
        self.pending: _Job | None = None  # the letter whose envelope is out and whose text has not left
        self.asking: int | None = None  # the letter this session waits to have handed off
        self.unsettled = 0  # its letters handed off and not yet recorded (at most WINDOW)

    # -- what the Wire asks --

    @property
    def busy(self) -> bool:
        """Whether replies are awaited, a text waits for its hand-off, or letters are queued."""
        return bool(self.expect or self.queue or self.pending)

    @property
    def wants_write(self) -> bool:
        """Whether output is waiting for the socket."""
        return bool(self.out)

    def start(self, now: float, going: bool = True) -> None:
        """Go on after a commit: send a text just handed off, ask for the next hand-off, begin the next letter.

        While the wire stops (``going`` false) the letter whose envelope is out still ends; none begins.
        """
        job = self.pending
        if job is not None and job.opened and job.letter.id in self.permitted:
            self._text(job, lambda: going)
        self._ask()
        idle = not self.expect or (self.pipelining and self.expect[-1][0] == "dot")
        if going and self.pending is None and idle:
            self._maybe_next(now)

    def _ask(self) -> None:
        """Ask the wire to hand off the letter whose envelope is out, if this session's window has room."""
        job = self.pending
        if job is None or job.cancelled or job.letter.id in self.permitted:
            return
        if self.asking is None and self.unsettled < WINDOW:
            self.asking = job.letter.id  # the wire hands it off in its next commit

    def cancel(self, letter_id: int) -> None:
        """Another node took the letter over: its text never leaves (its envelope, if out, is abandoned)."""
        if self.pending is not None and self.pending.letter.id == letter_id:
            self.pending.cancelled = True
            if self.pending.opened:  # the server waits for the text: only hanging up ends that without a message
                self.hang_up = True
        self.queue = deque(letter for letter in self.queue if letter.id != letter_id)

    def _maybe_next(self, now: float) -> None:
        """Start the next queued letter's envelope now, if the rate limit says it may go (its text waits to be
        handed off)."""
        if not self.queue or now < self.not_before or self.pending is not None:
            return
        if self.pace is not None and not self.slot_booked:
            slot = self.pace()
            if slot > now:
                self.not_before, self.slot_booked = slot, True  # the slot is ours: use it when it comes
                return
        self.slot_booked = False
        self._envelope(self.queue.popleft())
        self._ask()

    def overdue(self, now: float) -> bool:
        """Whether a reply has been awaited longer than the timeout."""
        return bool(self.expect) and now - self.last_heard > self.timeout

    # -- the socket --

    def write(self) -> None:
        """Send what the socket takes now."""
        try:
            sent = self.sock.send(self.out)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return
        del self.out[:sent]
        self.sent_total += sent
        if sent:
            self.last_heard = time.monotonic()  # a long message still going out is progress, not silence

    def read(self) -> list[Reply]:
        """Read what arrived and return the complete replies in it (raises ConnectionError at EOF)."""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self.incoming += chunk
            if not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
                break
        self.last_heard = time.monotonic()
        return self._replies()

    def _replies(self) -> list[Reply]:
        replies: list[Reply] = []
        lines: list[str] = []
        position = done = 0
        while (end := self.incoming.find(CRLF, position)) != -1:
            line = bytes(self.incoming[position:end])
            position = end + 2
            if len(line) < 3 or not line[:3].isdigit():
                raise ConnectionError(f"unreadable reply {line[:80]!r}")
            lines.append(line[4:].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                replies.append(Reply(int(line[:3]), " ".join(lines)))
                lines = []
                done = position
        del self.incoming[:done]  # an unfinished multi-line reply waits for its last line
        return replies

    # -- the dialogue --

    def on_reply(self, reply: Reply, outcomes: list[Attempt], go_on: Callable[[], bool]) -> None:
        """One reply, matched to the command it answers."""
        if not self.expect:
            # Nothing was asked: a server shutting down (421), or one out of step. Either way
            # this session can no longer be trusted to pair replies with messages.
            self.alive = False
            raise ConnectionError(f"unexpected reply {reply}")
        kind, job = self.expect.popleft()
        if kind in ("rset", "empty-dot") or job is None:
            return
        if job.cancelled:
            self._cancelled(kind, job, reply)
            return
        if kind == "dot":
            fate = Fate.DELIVERED if reply.ok else Fate.REFUSED
            outcomes.append(self._attempt(job.letter.id, fate, "dot", reply))
            if reply.code == 421:
                self.alive = False
            return
        job.envelope_replies.append(reply)
        if not self.pipelining and kind != "data" and (reply.ok or reply.code == 354):
            self._next_command(kind, job)
            return
        if kind == "data" or not (reply.ok or reply.code == 354):
            if kind != "data" and self.pipelining:
                return  # the rest of the pipelined envelope still answers; decide at DATA
            self._decide(job, outcomes, go_on)

    def _attempt(self, id: int, fate: Fate, stage: str, reply: Reply | None = None, detail: str = "") -> Attempt:
        return Attempt(id, fate, stage, reply, detail, self.pool.relay.name if self.pool else "")

    def _next_command(self, kind: str, job: _Job) -> None:
        command = f"RCPT TO:<{job.letter.recipient}>" if kind == "mail" else "DATA"
        self._queue_output(command.encode() + CRLF)
        self.expect.append(("rcpt" if kind == "mail" else "data", job))

    def _cancelled(self, kind: str, job: _Job, reply: Reply) -> None:
        """A reply for a letter taken over by another node: it has no outcome here, and no text follows."""
        if reply.code == 354:
            self.hang_up = True  # DATA is open: hanging up is the only way out that delivers nothing
        elif kind == "data" or not self.pipelining:
            self.pending = None  # the envelope is over (refused, or stopped here): RSET before the next
            self.dirty = True

    def _decide(self, job: _Job, outcomes: list[Attempt], go_on: Callable[[], bool]) -> None:
        replies = job.envelope_replies
        refusal = next((r for r in replies if not (r.ok or r.code == 354)), None)
        if refusal is None and replies[-1].code == 354:
            job.opened = True
            if job.letter.id in self.permitted:
                self._text(job, go_on)
            else:
                self._ask()  # the text follows when the wire has handed it off
            return
        if replies[-1].code == 354:
            self._queue_output(b"." + CRLF)  # DATA opened although the envelope failed: close it empty
            self.expect.append(("empty-dot", None))
        stage = ("mail", "rcpt", "data")[replies.index(refusal)] if refusal else "data"
        outcomes.append(self._attempt(job.letter.id, Fate.REFUSED, stage, refusal or replies[-1]))
        self.pending = None
        if self.asking == job.letter.id:
            self.asking = None  # refused before its hand-off was committed: nothing to hand off
        self.dirty = True
        if any(r.code == 421 for r in replies):
            self.alive = False
        elif go_on():
            self._maybe_next(time.monotonic())

    def _text(self, job: _Job, go_on: Callable[[], bool]) -> None:
        assert self.press is not None, "a session sends only for a wire"
        self.pending = None
        data = self.press(job.letter, self.eight_bit)
        stuffed = dot_stuff(data)
        self._queue_output(stuffed + b"." + CRLF)
        job.dot_ends_at = self.written_total
        self.expect.append(("dot", job))
        if self.pipelining and go_on():
            self._maybe_next(time.monotonic())

    def _envelope(self, letter: Letter) -> None:
        job = _Job(letter)
        self.pending = job
        if self.dirty:
            self._queue_output(b"RSET" + CRLF)
            self.expect.append(("rset", None))
            self.dirty = False
        mail = f"MAIL FROM:<{letter.sender}>{self.body}".encode() + CRLF
        if self.pipelining:
            self._queue_output(mail + f"RCPT TO:<{letter.recipient}>".encode() + CRLF + b"DATA" + CRLF)
            self.expect.extend([("mail", job), ("rcpt", job), ("data", job)])
        else:
            self._queue_output(mail)
            self.expect.append(("mail", job))
        self.last_heard = time.monotonic()

    def _queue_output(self, data: bytes) -> None:
        self.out += data
        self.written_total += len(data)

    def lost(self, reason: str, outcomes: list[Attempt]) -> None:
        """The connection failed: say what became of every message it held."""
        self.alive = False
        seen: set[int] = set()
        jobs = list(self.expect)
        if self.pending is not None and self.pending.opened:
            jobs.append(("text", self.pending))  # its envelope was answered; its text had not left
        for kind, job in jobs:
            if job is None or job.letter.id in seen:
                continue
            seen.add(job.letter.id)
            if job.cancelled:
                continue  # another node's now
            refusal = next((r for r in job.envelope_replies if not (r.ok or r.code == 354)), None)
            if refusal is not None:  # refused (421 and hung up, say) before it could be sent
                stage = ("mail", "rcpt", "data")[job.envelope_replies.index(refusal)]
                outcomes.append(self._attempt(job.letter.id, Fate.REFUSED, stage, refusal))
            elif kind == "dot" and self.sent_total >= job.dot_ends_at:
                outcomes.append(self._attempt(job.letter.id, Fate.MAYBE, "dot", None, f"{reason} after the final dot"))
            else:
                stage = "text" if kind == "dot" else kind
                outcomes.append(
                    self._attempt(job.letter.id, Fate.NOT_SENT, stage, None, f"{reason} before the message was sent")
                )
        self.expect.clear()
        self.pending = None
        self.asking = None
        outcomes.extend(self._attempt(letter.id, Fate.UNTRIED, "", None, reason) for letter in self.queue)
        self.queue.clear()
        self.connection.abort()


class RateLimit:
    """At most ``rate`` messages per second over every session that shares it."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = time.monotonic()

    def reserve(self) -> float:
        """The monotonic time the next message may start at (and book it)."""
        slot = max(time.monotonic(), self.next)
        self.next = slot + self.interval
        return slot


def session_opener(relay: RelaySettings, connect: Callable[[], SmtpConnection] | None = None) -> Callable[[], Session]:
    """Opens sessions to ``relay`` that share one rate limit."""
    pace = RateLimit(relay.rate).reserve if relay.rate > 0 else None

    def open_session() -> Session:
        if connect is not None:
            return Session(connect(), relay.timeout, pace)
        connection = SmtpConnection(
            relay.host, relay.port, security=relay.security, timeout=relay.timeout,
            helo=relay.helo, credentials=relay.credentials,
        )  # fmt: skip
        connection.open()
        return Session(connection, relay.timeout, pace)

    return open_session


class Pool:
    """One relay's sessions, and whether the relay may be used now: up, down, throttled or out of quota."""

    def __init__(self, relay: RelaySettings, open_session: Callable[[], Session]) -> None:
        self.relay = relay
        self.open_session = open_session
        self.idle: list[Session] = []
        self.active = 0
        self.state = "up"
        self.detail = ""
        self.until = 0.0  # monotonic: not used before then
        self.failure: SmtpError | None = None  # why it could not be reached, last time
        self.rests = 0  # times it rested this run: each rest is longer
        self.assigned = 0  # letters given to it, for the weights
        self.quota = 0  # reserved from its daily limit and not used yet
        self.delivered: deque[float] = deque()  # when each recent message was accepted, for its rate

    def usable(self, now: float) -> bool:
        """Whether letters may go to this relay now."""
        if self.state != "up" and now >= self.until:
            self.state, self.detail = "up", ""
        return self.state == "up"

    def has_room(self) -> bool:
        """Whether a session is free or may be opened."""
        return bool(self.idle) or self.active < self.relay.connections

    def rest(self, state: str, detail: str, waits: Sequence[float], now: float) -> None:
        """Stop using this relay for a while (a longer while each time)."""
        if self.state == state and now < self.until:
            return
        wait = waits[min(self.rests, len(waits) - 1)]
        self.rests += 1
        self.state, self.detail, self.until = state, detail, now + wait
        log.warning("relay %s is %s (%s); it rests %g s", self.relay.name, state, detail, wait)

    def note_delivered(self, now: float) -> None:
        """A message was accepted: the relay is well (a later rest starts short again)."""
        self.delivered.append(now)
        self.rests = 0

    def rate(self, now: float) -> float:
        """Messages per second accepted over the last :data:`RATE_WINDOW` seconds."""
        while self.delivered and self.delivered[0] < now - RATE_WINDOW:
            self.delivered.popleft()
        return len(self.delivered) / RATE_WINDOW

    def view(self, now: float, wall: datetime) -> dict[str, Any]:
        """How this relay stands, for ``status``: state, why, until when (wall clock), rate."""
        until = wall + timedelta(seconds=self.until - now) if self.state != "up" else None
        return {"state": self.state, "detail": self.detail, "until": until, "rate": self.rate(now)}


def _wait(sessions: list[Session], ceiling: float) -> float:
    """How long the selector may sleep: until a rate-limited letter's slot, at most ``ceiling``."""
    now = time.monotonic()
    waiting = [s.not_before - now for s in sessions if s.queue and not s.expect and s.not_before > now]
    return max(0.0, min([ceiling, *waiting]))


class Wire:
    """Sessions over the relays, driven from one thread: chunks go in (:meth:`submit`), fates come out (:meth:`pump`).

    A session takes one chunk at a time; each relay has at most its ``connections``
    sessions open. Every submitted letter comes back with exactly one
    :class:`Attempt`, grouped by the chunk it came in, and already recorded in
    the ledger.
    """

    def __init__(
        self,
        pools: Sequence[Pool],
        ledger: Ledger,
        clock: Callable[[], datetime],
        signer: Signing | None = None,
    ) -> None:
        self.pools = list(pools)
        self.ledger = ledger
        self.clock = clock
        self.signer = signer
        self.templates: dict[int, MessageTemplate] = {}
        self.active: list[Session] = []
        self.waiting: deque[tuple[int, list[Letter]]] = deque()
        self.selector = selectors.DefaultSelector()
        self.masks: dict[int, int] = {}
        self.chunk_of: dict[int, int] = {}
        self.left: dict[int, int] = {}
        self.fates: dict[int, list[Attempt]] = {}
        self.letters: dict[int, Letter] = {}  # every letter submitted and not yet ended, by id
        self.permitted: set[int] = set()  # letters handed off: their text may leave
        self.owner: dict[int, Session] = {}  # the session each handed-off letter counts against
        self.moves: dict[int, int] = {}  # how often each letter went to another relay
        self.unrecorded: list[Attempt] = []  # ends not yet committed
        self.unrecorded_since = 0.0
        self.ledger_error = ""

    # -- what the transport asks --

    def add_template(self, key: int, template: MessageTemplate) -> None:
        """Keep an edition's template: letters name it by ``key`` and bring only their own values."""
        self.templates[key] = template

    def press(self, letter: Letter, eight_bit: bool = True) -> bytes:
        """A letter's finished bytes: its edition filled in with its values, and signed when DKIM is on.

        For a server without 8BITMIME the text is re-encoded first and signed after, so the signature
        covers the bytes that are sent.
        """
        template = self.templates[letter.template]
        if eight_bit:
            return press(template, letter.values, self.signer)
        data = press(template, letter.values)
        data = data if data.isascii() else seven_bit(data)
        return self.signer.sign(data) if self.signer is not None else data

    def submit(self, chunk: int, letters: Sequence[Letter]) -> None:
        """Queue a chunk of claimed letters for the next free session of the relay whose turn it is."""
        for letter in letters:
            self.chunk_of[letter.id] = chunk
            self.letters[letter.id] = letter
        self.left[chunk] = len(letters)
        self.fates[chunk] = []
        self.waiting.append((chunk, list(letters)))

    def busy(self) -> bool:
        """Whether any submitted letter still has no fate."""
        return bool(self.left)

    @property
    def failure(self) -> SmtpError | None:
        """Why no relay can be used now (None while one can)."""
        now = time.monotonic()
        if any(pool.usable(now) for pool in self.pools):
            return None
        return next((pool.failure for pool in self.pools if pool.failure is not None), SmtpError("no relay usable"))

    def blocked_until(self) -> tuple[datetime, bool] | None:
        """When every relay is resting: until when the first one does, and whether all of them throttle."""
        now = time.monotonic()
        if any(pool.usable(now) for pool in self.pools):
            return None
        first = min(pool.until for pool in self.pools)
        throttled = all(pool.state == "throttled" for pool in self.pools)
        return self.clock() + timedelta(seconds=max(0.0, first - now)), throttled

    def relays(self) -> dict[str, dict[str, Any]]:
        """How each relay stands now (for status)."""
        now, wall = time.monotonic(), self.clock()
        return {pool.relay.name: pool.view(now, wall) for pool in self.pools}

    def watch(self, fileobj: Any) -> None:
        """Also wake when ``fileobj`` is readable (the control pipe of a sending process)."""
        self.selector.register(fileobj, selectors.EVENT_READ, None)

    def pump(self, going: bool, timeout: float = 0.05) -> list[tuple[int, list[Attempt]]]:
        """One turn: start waiting chunks, move bytes, commit what ended and what starts, return finished chunks."""
        outcomes: list[Attempt] = []
        self._assign(going, outcomes)
        self._turn(going, outcomes, timeout)
        ends = self._commit(self._route(outcomes, going), going)
        for session in [s for s in self.active if not s.busy or not s.alive]:
            self.active.remove(session)
            self.selector.unregister(session.sock)
            self.masks.pop(id(session), None)
            assert session.pool is not None
            session.pool.active -= 1
            if session.alive:
                session.pool.idle.append(session)
        return self._finished(ends)

    # -- routing --

    def _choose(self, now: float) -> Pool | None:
        """The relay whose turn it is (the least served for its weight), if it may take a chunk now."""
        usable = [pool for pool in self.pools if pool.usable(now)]
        if not usable:
            return None
        pool = min(usable, key=lambda p: p.assigned / p.relay.weight)
        return pool if pool.has_room() else None

    def _assign(self, going: bool, outcomes: list[Attempt]) -> None:
        if not going:
            self._give_back("stopping", outcomes)
            return
        now = time.monotonic()
        while self.waiting:
            pool = self._choose(now)
            if pool is None:
                if self.failure is not None:  # every relay rests: nothing can go now
                    self._give_back_untried(outcomes)
                return
            chunk, letters = self.waiting[0]
            taken = self._quota(pool, len(letters), now)
            if not taken:
                continue  # out of quota: resting now; the next relay is chosen
            session = self._open(pool, now)
            if session is None:
                continue
            self.waiting.popleft()
            if taken < len(letters):
                self.waiting.appendleft((chunk, letters[taken:]))  # the rest waits for another relay
                letters = letters[:taken]
            pool.assigned += len(letters)
            pool.quota -= len(letters)
            session.queue.extend(letters)
            session.start(now)
            self.active.append(session)
            self.selector.register(session.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, session)
            self.masks[id(session)] = selectors.EVENT_READ | selectors.EVENT_WRITE

    def _quota(self, pool: Pool, wanted: int, now: float) -> int:
        """How many of ``wanted`` letters the relay's daily limit lets go now (reserving more as needed).

        A relay without a limit reserves too, from a limit it never reaches, so its figures are counted
        alike; it reserves a block at a time (:data:`UNLIMITED_BLOCK`), not a database write per chunk.
        """
        limit = pool.relay.daily_limit or UNLIMITED
        if pool.quota < wanted:
            more = wanted - pool.quota if pool.relay.daily_limit else max(wanted - pool.quota, UNLIMITED_BLOCK)
            try:
                pool.quota += self.ledger.reserve(pool.relay.name, more, limit)
            except Exception as exc:  # the database: a relay whose quota cannot be counted is not used now
                if pool.quota <= 0:
                    pool.rest("down", f"its quota cannot be counted: {exc}", DOWN_WAITS, now)
                    return 0
        if pool.quota <= 0:
            wall = self.clock()
            next_hour = (wall.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1) - wall).total_seconds()
            pool.rest("quota", f"daily limit of {limit} reached", (next_hour,), now)
            return 0
        return min(wanted, pool.quota)

    def _open(self, pool: Pool, now: float) -> Session | None:
        if pool.idle:
            session = pool.idle.pop()
        else:
            try:
                session = pool.open_session()
            except SmtpError as exc:
                pool.failure = exc
                throttled = exc.code in THROTTLE_CODES
                waits = THROTTLE_WAITS if throttled else DOWN_WAITS
                pool.rest(
                    "throttled" if throttled else "down", f"greeting: {exc}" if throttled else str(exc), waits, now
                )
                return None
        pool.failure = None
        pool.active += 1
        session.pool = pool
        session.press = self.press
        session.permitted = self.permitted
        return session

    def _give_back(self, reason: str, outcomes: list[Attempt]) -> None:
        while self.waiting:
            _, letters = self.waiting.popleft()
            outcomes.extend(Attempt(letter.id, Fate.UNTRIED, "", None, reason) for letter in letters)

    def _give_back_untried(self, outcomes: list[Attempt]) -> None:
        """No relay can be used: what waits goes back, as a failed connection (an attempt) or a throttle's wait."""
        blocked = self.blocked_until()
        assert blocked is not None
        until, throttled = blocked
        failure = self.failure
        stage, detail = ("", f"every relay throttles: {failure}") if throttled else ("connect", str(failure))
        while self.waiting:
            _, letters = self.waiting.popleft()
            outcomes.extend(
                Attempt(letter.id, Fate.UNTRIED, stage, None, detail, "", until if throttled else None)
                for letter in letters
            )

    def _route(self, outcomes: list[Attempt], going: bool) -> list[Attempt]:
        """Send to another relay what one could not send (and nothing arrived); return the rest: the ends."""
        now = time.monotonic()
        ends: list[Attempt] = []
        moved: dict[int, list[Letter]] = {}
        for attempt in outcomes:
            pool = self._pool(attempt.relay)
            throttle = attempt.reply is not None and attempt.reply.code in THROTTLE_CODES
            if pool is not None and throttle:
                pool.rest("throttled", attempt.describe(), THROTTLE_WAITS, now)
            elif pool is not None and attempt.fate == Fate.DELIVERED:
                pool.note_delivered(now)
            movable = attempt.fate in (Fate.UNTRIED, Fate.NOT_SENT) or (attempt.fate == Fate.REFUSED and throttle)
            other = pool is not None and any(p is not pool and p.usable(now) for p in self.pools)
            if going and movable and other and self.moves.get(attempt.id, 0) < len(self.pools):
                self.moves[attempt.id] = self.moves.get(attempt.id, 0) + 1
                assert pool is not None
                letter = self.letters[attempt.id]
                pool.assigned -= 1
                pool.quota += 1  # it never left through this relay
                moved.setdefault(self.chunk_of[attempt.id], []).append(letter)
                continue
            if throttle and attempt.fate == Fate.REFUSED and pool is not None:
                rest = self.clock() + timedelta(seconds=max(0.0, pool.until - now))
                attempt = attempt._replace(retry_at=rest)
            ends.append(attempt)
        for chunk, letters in moved.items():
            self.waiting.append((chunk, letters))
        return ends

    def _pool(self, name: str) -> Pool | None:
        return next((pool for pool in self.pools if pool.relay.name == name), None)

    # -- the grouped commit --

    def _commit(self, ends: list[Attempt], going: bool) -> list[Attempt]:
        """Record what ended and hand off what starts next, in one commit, once one is due; return what it recorded.

        A hand-off is asked for as a letter's envelope leaves and is needed only when the server
        has answered DATA, so a commit can wait for a moment when something needs it: a text
        waiting, a session with nothing in flight, the wire stopping, or :data:`COMMIT_DELAY`
        since the oldest end waiting to be recorded. Each commit then carries more letters.
        """
        if ends and not self.unrecorded:
            self.unrecorded_since = time.monotonic()
        self.unrecorded += ends
        if not self._due(going):
            return []
        for attempt in self.unrecorded:
            session = self.owner.pop(attempt.id, None)
            if session is not None:
                session.unsettled -= 1  # recorded in the commit below, with whatever starts in its place
            self.permitted.discard(attempt.id)
        now = time.monotonic()
        for session in self.active:
            if session.alive:
                session.start(now, going)  # asks for the next letter's hand-off, if its window allows
        asking = {s.asking: s for s in self.active if s.alive and s.asking is not None}
        recordable = [a for a in self.unrecorded if a.fate != Fate.LOST]
        if not self.unrecorded and not asking:
            return []
        try:
            held = self.ledger.settle(recordable, list(asking)) if recordable or asking else set()
        except Exception as exc:  # the database failed: the sessions wait, and the commit is tried again
            if str(exc) != self.ledger_error:
                log.error("cannot record the sending in the outbox (tried again): %s", exc)
                self.ledger_error = str(exc)
            return []
        recorded, self.unrecorded, self.ledger_error = self.unrecorded, [], ""
        for letter_id, session in asking.items():
            session.asking = None
            if letter_id in held:
                self.permitted.add(letter_id)
                self.owner[letter_id] = session
                session.unsettled += 1
            else:  # another node took it over: not ours to send
                session.cancel(letter_id)
                recorded.append(Attempt(letter_id, Fate.LOST, "", None, "taken over by another node"))
        now = time.monotonic()
        for session in self.active:
            if session.alive:
                session.start(now, going)
        return recorded

    def _due(self, going: bool) -> bool:
        """Whether a commit is needed now (see :meth:`_commit`)."""
        if not going or (self.unrecorded and time.monotonic() - self.unrecorded_since >= COMMIT_DELAY):
            return True
        for session in self.active:
            job = session.pending
            if not session.alive or not session.expect:
                return True  # it waits for nothing but a commit (or it is over)
            if job is not None and job.opened and job.letter.id not in self.permitted:
                return True  # the server waits for a text that waits for its hand-off
        return False

    def _finished(self, outcomes: list[Attempt]) -> list[tuple[int, list[Attempt]]]:
        done = []
        for attempt in outcomes:
            chunk = self.chunk_of.pop(attempt.id)
            self.moves.pop(attempt.id, None)
            self.letters.pop(attempt.id, None)
            self.fates[chunk].append(attempt)
            self.left[chunk] -= 1
            if not self.left[chunk]:
                del self.left[chunk]
                done.append((chunk, self.fates.pop(chunk)))
        return done

    # -- the sockets --

    def _turn(self, going: bool, outcomes: list[Attempt], timeout: float) -> None:
        go_on = (lambda: True) if going else (lambda: False)
        for session in self.active:
            wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if session.wants_write else 0)
            if self.masks.get(id(session)) != wanted:
                self.selector.modify(session.sock, wanted, session)
                self.masks[id(session)] = wanted
        for key, mask in self.selector.select(timeout=_wait(self.active, timeout)):
            session = key.data
            if session is None:
                continue  # the control pipe: its reader looks after it
            try:
                if mask & selectors.EVENT_WRITE:
                    session.write()
                if mask & selectors.EVENT_READ:
                    for reply in session.read():
                        session.on_reply(reply, outcomes, go_on)
                if not session.alive:
                    session.lost("the server closed the session", outcomes)
            except (OSError, ConnectionError) as exc:
                session.lost(f"connection lost ({exc})", outcomes)
        now = time.monotonic()
        for session in self.active:
            if session.alive and session.hang_up:
                session.lost("abandoning a letter another node took over", outcomes)
            elif session.alive and session.overdue(now):
                session.lost(f"no reply within {session.timeout:g} s", outcomes)
            elif session.alive and not going and not session.expect and session.pending is None:
                session.lost("stopping", outcomes)

    def close(self) -> None:
        """QUIT every idle session; drop the rest; return unused quota."""
        outcomes: list[Attempt] = []
        for session in self.active:
            session.lost("closing", outcomes)
        for pool in self.pools:
            for session in pool.idle:
                session.sock.setblocking(True)
                session.connection.close()
            pool.idle.clear()
            if pool.quota > 0:
                try:
                    self.ledger.give_back(pool.relay.name, pool.quota)
                except Exception as exc:
                    log.error("cannot give back the unused quota of relay %s: %s", pool.relay.name, exc)
                pool.quota = 0
        self.active.clear()
        self.selector.close()


def pools_for(settings: WireSettings, connect: Callable[[], SmtpConnection] | None = None) -> list[Pool]:
    """One pool per relay (``connect`` replaces the real connection, for every relay: tests)."""
    return [Pool(relay, session_opener(relay, connect)) for relay in settings.relays]
