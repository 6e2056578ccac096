"""The outbox's side of the wire: what each SMTP reply comes to, recorded as it happens.

:class:`OutboxLedger` is the wire's :class:`~syndicate.deliver.email.wire.Ledger`:
each turn of the wire it commits, in one transaction, the ends of the letters
that finished and the hand-off of those whose envelope leaves next. It lives
where the wire lives (the sending process, by default), so the marks follow
the bytes without a round trip to another process.

SMTP replies map to outcomes so (:func:`outcome_of`):

- 2xx after the final dot: sent;
- 421 or 454 anywhere: the relay is throttling; the message waits (not counted
  as an attempt) until the relay's rest is over, unless another relay took it;
- other 4xx, and 552 on RCPT (mailbox full): retried later;
- other 5xx: failed, and the address is suppressed when the refusal is about it;
- the connection failed before the final dot left: retried (nothing arrived);
- no reply after the final dot: unknown (it may have arrived; never re-sent on its own).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from syndicate.deliver.email.smtp import Reply
from syndicate.deliver.email.wire import THROTTLE_CODES, Attempt, Fate
from syndicate.outbox import Claim, Outbox, Outcome, Result
from syndicate.store import relays


class Verdict(NamedTuple):
    """What an attempt comes to in the outbox's terms (and whether its address must never be mailed again)."""

    outcome: Outcome
    error: str | None = None
    retry_at: datetime | None = None
    suppress: bool = False


def outcome_of(attempt: Attempt) -> Verdict | None:
    """The verdict on one attempt (None: the letter was another node's, nothing to record)."""
    fate, reply = attempt.fate, attempt.reply
    if fate == Fate.DELIVERED:
        return Verdict(Outcome.SENT)
    if fate == Fate.LOST:
        return None
    if fate == Fate.MAYBE:
        return Verdict(Outcome.UNKNOWN, attempt.describe())
    if fate == Fate.NOT_SENT:
        return Verdict(Outcome.RETRY, attempt.describe())
    if fate == Fate.UNTRIED:
        if attempt.stage == "connect":  # no relay could be reached: an attempt, retried on the policy's waits
            return Verdict(Outcome.RETRY, f"connect: {attempt.detail}")
        return Verdict(Outcome.REQUEUE, attempt.detail or "not started", attempt.retry_at)
    assert reply is not None
    if reply.code in THROTTLE_CODES:
        return Verdict(Outcome.REQUEUE, attempt.describe(), attempt.retry_at)
    if reply.code >= 500 and not (reply.code == 552 and attempt.stage == "rcpt") and attempt.stage != "mail":
        return Verdict(Outcome.FAILED, attempt.describe(), None, about_the_address(attempt.stage, reply))
    return Verdict(Outcome.RETRY, attempt.describe())


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


class OutboxLedger:
    """Records the wire's work in the outbox, one commit per turn; reserves each relay's daily quota."""

    def __init__(self, outbox: Outbox, clock: Callable[[], datetime]) -> None:
        self.outbox = outbox
        self.db = outbox.db
        self.clock = clock
        self.claims: dict[int, Claim] = {}

    def hold(self, claims: Iterable[Claim]) -> None:
        """The claims of letters given to the wire (their lease tokens fence every write)."""
        self.claims.update((claim.id, claim) for claim in claims)

    def settle(self, ends: Sequence[Attempt], starting: Sequence[int]) -> set[int]:
        """Record ``ends`` and hand off ``starting``, in one transaction; return the ids of ``starting`` still held."""
        results = []
        for attempt in ends:
            verdict = outcome_of(attempt)
            claim = self.claims.get(attempt.id)
            if verdict is not None and claim is not None:
                results.append(Result(claim, verdict.outcome, verdict.error, verdict.retry_at))
        held = self.outbox.settle(results, [self.claims[i] for i in starting if i in self.claims], self.clock())
        for attempt in ends:
            self.claims.pop(attempt.id, None)
        return held

    def reserve(self, relay: str, wanted: int, limit: int) -> int:
        """Take up to ``wanted`` of ``relay``'s daily quota."""
        with self.db.write() as conn:
            return relays.reserve(conn, relay, wanted, limit, self.clock())

    def give_back(self, relay: str, count: int) -> None:
        """Return quota reserved and not used."""
        with self.db.write() as conn:
            relays.give_back(conn, relay, count, self.clock())
