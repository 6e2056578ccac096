"""Many SMTP sessions driven from one thread, pipelined (RFC 2920): one round trip per message.

Each session sends a message's text, its final dot and the next message's
envelope (MAIL, RCPT, DATA) in one write, then waits for the four replies; it
never sends a message's text before the 354 that allows it. A selector drives
all sessions at once, so the connections keep the server busy while Python
waits on none of them, and no thread is needed per connection.

What became of each message is known from how far it got:

- refused at MAIL, RCPT or DATA: the server's reply, nothing arrived;
- the connection failed before the final dot left this host: nothing arrived;
- the final dot left and no reply came back: it may have arrived (``unknown``);
- never started (the session ended first): handed back untouched.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

from syndicate.deliver.email.dkim import Key
from syndicate.deliver.email.smtp import CRLF, Reply, SmtpConnection, SmtpError
from syndicate.mail import Letter, MessageTemplate, Signing, dot_stuff, press, seven_bit


class Fate(Enum):
    """How far a message got on the wire."""

    DELIVERED = "delivered"  # 2xx after the final dot
    REFUSED = "refused"  # a 4xx/5xx reply at some stage
    NOT_SENT = "not sent"  # the connection failed before the final dot left: nothing arrived
    MAYBE = "maybe"  # the final dot left; no reply came back
    UNTRIED = "untried"  # never started


class Attempt(NamedTuple):
    """The end of one letter on the wire (by its id): its fate, the stage, the reply (if any) and why."""

    id: int
    fate: Fate
    stage: str
    reply: Reply | None = None
    detail: str = ""

    def describe(self) -> str:
        """For ``deliveries list``: the stage and what the server said (or that it said nothing)."""
        said = str(self.reply) if self.reply else self.detail or "no reply"
        return f"{self.stage}: {said}"


@dataclass
class _Job:
    letter: Letter
    envelope_replies: list[Reply] = field(default_factory=list)
    dot_ends_at: int = 0  # offset in the session's output stream just after this message's final dot


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
        self.last_heard = time.monotonic()
        self.not_before = 0.0
        self.slot_booked = False
        self.press: Callable[[Letter, bool], bytes] | None = None  # finishes a letter's bytes; set by the wire

    # -- what the Wire asks --

    @property
    def busy(self) -> bool:
        """Whether replies are awaited or letters are queued."""
        return bool(self.expect or self.queue)

    @property
    def wants_write(self) -> bool:
        """Whether output is waiting for the socket."""
        return bool(self.out)

    def start(self, now: float) -> None:
        """Begin the next queued letter if nothing is in flight (a new batch, or after a refusal)."""
        if not self.expect:
            self._maybe_next(now)

    def _maybe_next(self, now: float) -> None:
        """Start the next queued letter now, unless the rate limit says later."""
        if not self.queue or now < self.not_before:
            return
        if self.pace is not None and not self.slot_booked:
            slot = self.pace()
            if slot > now:
                self.not_before, self.slot_booked = slot, True  # the slot is ours: use it when it comes
                return
        self.slot_booked = False
        self._envelope(self.queue.popleft())

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
        if kind == "dot":
            fate = Fate.DELIVERED if reply.ok else Fate.REFUSED
            outcomes.append(Attempt(job.letter.id, fate, "dot", reply))
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

    def _next_command(self, kind: str, job: _Job) -> None:
        command = f"RCPT TO:<{job.letter.recipient}>" if kind == "mail" else "DATA"
        self._queue_output(command.encode() + CRLF)
        self.expect.append(("rcpt" if kind == "mail" else "data", job))

    def _decide(self, job: _Job, outcomes: list[Attempt], go_on: Callable[[], bool]) -> None:
        replies = job.envelope_replies
        refusal = next((r for r in replies if not (r.ok or r.code == 354)), None)
        if refusal is None and replies[-1].code == 354:
            self._text(job, go_on)
            return
        if replies[-1].code == 354:
            self._queue_output(b"." + CRLF)  # DATA opened although the envelope failed: close it empty
            self.expect.append(("empty-dot", None))
        stage = ("mail", "rcpt", "data")[replies.index(refusal)] if refusal else "data"
        outcomes.append(Attempt(job.letter.id, Fate.REFUSED, stage, refusal or replies[-1]))
        self.dirty = True
        if any(r.code == 421 for r in replies):
            self.alive = False
        elif go_on():
            self._maybe_next(time.monotonic())

    def _text(self, job: _Job, go_on: Callable[[], bool]) -> None:
        assert self.press is not None, "a session sends only for a wire"
        data = self.press(job.letter, self.eight_bit)
        stuffed = dot_stuff(data)
        self._queue_output(stuffed + b"." + CRLF)
        job.dot_ends_at = self.written_total
        self.expect.append(("dot", job))
        if self.pipelining and go_on():
            self._maybe_next(time.monotonic())

    def _envelope(self, letter: Letter) -> None:
        job = _Job(letter)
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
        for kind, job in self.expect:
            if job is None or job.letter.id in seen:
                continue
            seen.add(job.letter.id)
            refusal = next((r for r in job.envelope_replies if not (r.ok or r.code == 354)), None)
            if refusal is not None:  # refused (421 and hung up, say) before it could be sent
                stage = ("mail", "rcpt", "data")[job.envelope_replies.index(refusal)]
                outcomes.append(Attempt(job.letter.id, Fate.REFUSED, stage, refusal))
            elif kind == "dot" and self.sent_total >= job.dot_ends_at:
                outcomes.append(Attempt(job.letter.id, Fate.MAYBE, "dot", None, f"{reason} after the final dot"))
            else:
                stage = "text" if kind == "dot" else kind
                outcomes.append(
                    Attempt(job.letter.id, Fate.NOT_SENT, stage, None, f"{reason} before the message was sent")
                )
        self.expect.clear()
        outcomes.extend(Attempt(letter.id, Fate.UNTRIED, "", None, reason) for letter in self.queue)
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


@dataclass(frozen=True)
class WireSettings:
    """How to reach the mail server and how hard to press it (plain values: they cross to a sending process)."""

    host: str
    port: int
    security: str
    timeout: float
    helo: str
    credentials: tuple[str, str] | None
    connections: int
    rate: float
    dkim: tuple[Key, ...] = ()  # the wire signs what it finishes with each key


def session_opener(
    settings: WireSettings, connect: Callable[[], SmtpConnection] | None = None
) -> Callable[[], Session]:
    """Opens sessions that share one rate limit."""
    pace = RateLimit(settings.rate).reserve if settings.rate > 0 else None

    def open_session() -> Session:
        if connect is not None:
            return Session(connect(), settings.timeout, pace)
        connection = SmtpConnection(
            settings.host, settings.port, security=settings.security, timeout=settings.timeout,
            helo=settings.helo, credentials=settings.credentials,
        )  # fmt: skip
        connection.open()
        return Session(connection, settings.timeout, pace)

    return open_session


def _wait(sessions: list[Session], ceiling: float) -> float:
    """How long the selector may sleep: until a rate-limited letter's slot, at most ``ceiling``."""
    now = time.monotonic()
    waiting = [s.not_before - now for s in sessions if s.queue and not s.expect and s.not_before > now]
    return max(0.0, min([ceiling, *waiting]))


class Wire:
    """Sessions driven from one thread: chunks of letters go in (:meth:`submit`), fates come out (:meth:`pump`).

    A session takes one chunk at a time; up to ``limit`` sessions are open at once.
    Every submitted letter comes back with exactly one :class:`Attempt`, grouped by
    the chunk it came in.
    """

    def __init__(self, open_session: Callable[[], Session], limit: int, signer: Signing | None = None) -> None:
        self.open_session = open_session
        self.limit = limit
        self.signer = signer
        self.templates: dict[int, MessageTemplate] = {}
        self.idle: list[Session] = []
        self.active: list[Session] = []
        self.waiting: deque[tuple[int, list[Letter]]] = deque()
        self.selector = selectors.DefaultSelector()
        self.masks: dict[int, int] = {}
        self.chunk_of: dict[int, int] = {}
        self.left: dict[int, int] = {}
        self.fates: dict[int, list[Attempt]] = {}
        self.failure: SmtpError | None = None  # why the last session could not be opened

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
        """Queue a chunk (already handed off) for the next free session."""
        for letter in letters:
            self.chunk_of[letter.id] = chunk
        self.left[chunk] = len(letters)
        self.fates[chunk] = []
        self.waiting.append((chunk, list(letters)))

    def busy(self) -> bool:
        """Whether any submitted letter still has no fate."""
        return bool(self.left)

    def watch(self, fileobj: Any) -> None:
        """Also wake when ``fileobj`` is readable (the control pipe of a sending process)."""
        self.selector.register(fileobj, selectors.EVENT_READ, None)

    def pump(self, going: bool, timeout: float = 0.05) -> list[tuple[int, list[Attempt]]]:
        """One turn: start waiting chunks, move bytes, and return the chunks whose letters all have fates."""
        outcomes: list[Attempt] = []
        self._assign(going, outcomes)
        self._turn(going, outcomes, timeout)
        for session in [s for s in self.active if not s.busy or not s.alive]:
            self.active.remove(session)
            self.selector.unregister(session.sock)
            self.masks.pop(id(session), None)
            if session.alive:
                self.idle.append(session)
        return self._finished(outcomes)

    def _finished(self, outcomes: list[Attempt]) -> list[tuple[int, list[Attempt]]]:
        done = []
        for attempt in outcomes:
            chunk = self.chunk_of.pop(attempt.id)
            self.fates[chunk].append(attempt)
            self.left[chunk] -= 1
            if not self.left[chunk]:
                del self.left[chunk]
                done.append((chunk, self.fates.pop(chunk)))
        return done

    def _assign(self, going: bool, outcomes: list[Attempt]) -> None:
        if not going:
            self._give_back("stopping", outcomes)
            return
        while self.waiting and (self.idle or len(self.active) < self.limit):
            try:
                session = self.idle.pop() if self.idle else self.open_session()
            except SmtpError as exc:
                self.failure = exc
                if not self.active:
                    self._give_back(f"could not open a session: {exc}", outcomes)
                return
            self.failure = None
            _, letters = self.waiting.popleft()
            session.press = self.press
            session.queue.extend(letters)
            session.start(time.monotonic())
            self.active.append(session)
            self.selector.register(session.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, session)
            self.masks[id(session)] = selectors.EVENT_READ | selectors.EVENT_WRITE

    def _give_back(self, reason: str, outcomes: list[Attempt]) -> None:
        while self.waiting:
            _, letters = self.waiting.popleft()
            outcomes.extend(Attempt(letter.id, Fate.UNTRIED, "", None, reason) for letter in letters)

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
                    if session.alive and going:
                        session.start(time.monotonic())
                if not session.alive:
                    session.lost("the server closed the session", outcomes)
            except (OSError, ConnectionError) as exc:
                session.lost(f"connection lost ({exc})", outcomes)
        now = time.monotonic()
        for session in self.active:
            if session.alive and going:
                session.start(now)  # a letter held back by the rate limit may go now
            if session.alive and session.overdue(now):
                session.lost(f"no reply within {session.timeout:g} s", outcomes)
            elif session.alive and not going and not session.expect:
                session.lost("stopping", outcomes)

    def close(self) -> None:
        """QUIT every idle session; drop the rest."""
        outcomes: list[Attempt] = []
        for session in self.active:
            session.lost("closing", outcomes)
        for session in self.idle:
            session.sock.setblocking(True)
            session.connection.close()
        self.idle.clear()
        self.active.clear()
        self.selector.close()
