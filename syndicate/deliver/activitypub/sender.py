"""The stage that delivers the actor's activities: one lane per server, every lane at once.

Each delivery is the activity's stored bytes, POSTed to one inbox and signed
(draft-cavage-12, what every peer takes) with the actor's key. A lane sends
its server's deliveries one after another; lanes run side by side, so a slow
or dead server delays only itself, and a lane stops at its first server that
does not answer (the rest wait for its next turn), so a dead one costs one
timeout per run. An inbox that answers 410 Gone loses its followers.

Receivers de-duplicate on the activity's id, so a lease that runs out after
hand-off is tried again (the channel's policy), never left unknown.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import requests
from requests.structures import CaseInsensitiveDict

from syndicate.activitypub import keys
from syndicate.activitypub.signatures import Message, sign_cavage
from syndicate.config import Config
from syndicate.errors import SourceError
from syndicate.outbox import Channel, Claim, Outbox, Outcome, Result
from syndicate.render import activitypub as documents
from syndicate.roles import Role
from syndicate.sources.fetch import FetchLimits, Posted, post
from syndicate.store import fediverse as store
from syndicate.store.db import Database

log = logging.getLogger(__name__)
MAX_LANES = 64
LIMITS = FetchLimits(timeout=10.0, deadline=30.0, max_bytes=4096, public_only=True)
CONTENT_TYPE = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
Stop = Callable[[], bool]


@dataclass
class Lane:
    """One server's deliveries of this run, and what came of them."""

    host: str
    claims: list[Claim]
    results: list[Result] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)  # inboxes that answered 410


@dataclass
class ActivityPubSender:
    """Delivers every due activity, lane by lane, until none is due or it is told to stop."""

    name = "send-activitypub"
    role = Role.WORKER

    config: Config
    db: Database
    outbox: Outbox
    clock: Callable[[], datetime]
    session: Callable[[], requests.Session]
    claim_size: int = 200
    # Signatures carry the real time: receivers refuse a Date an hour off theirs.
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def run(self, now: datetime, stop: Stop) -> dict[str, int]:
        """Deliver what is due, each delivery at most once per run; return how each ended."""
        counts: Counter[str] = Counter()
        if not self.config.fediverse.enabled:
            return {}
        tried: set[int] = set()
        with self.outbox.draining(self.clock):
            while not stop():
                claims = self.outbox.claim(Channel.ACTIVITYPUB, self.claim_size, self.clock())
                fresh = [c for c in claims if c.id not in tried]
                again = [Result(c, Outcome.REQUEUE) for c in claims if c.id in tried]
                if again:
                    self.outbox.finish(again, self.clock())
                if not fresh:
                    break
                tried.update(c.id for c in fresh)
                for lane in self._deliver(fresh, stop):
                    self._record(lane, counts)
        return dict(counts)

    def _deliver(self, claims: Sequence[Claim], stop: Stop) -> list[Lane]:
        with self.db.read() as conn:
            bodies = store.activity_bodies(conn, [c.source_id for c in claims])
        key = keys.current(self.db, self.clock())
        held = self.outbox.handoff(claims, self.clock())
        lanes: dict[str, Lane] = {}
        for claim in claims:
            if claim.id in held:
                lanes.setdefault(_host(claim.target), Lane(_host(claim.target), [])).claims.append(claim)
        if not lanes:
            return []
        signer = (documents.urls(self.config).key_id, key.private_pem)
        with ThreadPoolExecutor(min(len(lanes), MAX_LANES), thread_name_prefix="activitypub-lane") as pool:
            running = {pool.submit(self._lane, lane, bodies, signer, stop) for lane in lanes.values()}
            finished: list[Lane] = []
            while running:
                done, running = wait(running, timeout=self.outbox.keep_alive_every, return_when=FIRST_COMPLETED)
                finished.extend(future.result() for future in done)
                self.outbox.keep_alive(self.clock())
        return finished

    def _lane(self, lane: Lane, bodies: dict[int, str], signer: tuple[str, str], stop: Stop) -> Lane:
        with self.session() as session:
            for n, claim in enumerate(lane.claims):
                if stop():
                    lane.results.extend(Result(c, Outcome.REQUEUE) for c in lane.claims[n:])
                    break
                body = bodies.get(claim.source_id)
                if body is None:
                    lane.results.append(Result(claim, Outcome.CANCELLED, "the activity is gone"))
                    continue
                result = self._send(session, claim, body.encode(), signer, lane)
                lane.results.append(result)
                if result.outcome is Outcome.RETRY and result.error and result.error.startswith("no answer"):
                    lane.results.extend(Result(c, Outcome.REQUEUE) for c in lane.claims[n + 1 :])
                    break
        return lane

    def _send(
        self, session: requests.Session, claim: Claim, body: bytes, signer: tuple[str, str], lane: Lane
    ) -> Result:
        message = sign_cavage(Message("POST", claim.target, CaseInsensitiveDict({"Content-Type": CONTENT_TYPE}),
                                      body), signer[0], signer[1], self.wall())  # fmt: skip
        limits = LIMITS if not self.config.fediverse.allow_private_addresses else _private(LIMITS)
        try:
            answer = post(session, claim.target, body, dict(message.headers), limits)
        except SourceError as exc:
            return Result(claim, Outcome.RETRY, f"no answer: {exc}")
        return _verdict(claim, answer, lane, self.clock())

    def _record(self, lane: Lane, counts: Counter[str]) -> None:
        self.outbox.finish(lane.results, self.clock())
        for result in lane.results:
            counts[result.outcome.value] += 1
        if lane.gone:
            with self.db.write() as conn:
                for inbox in lane.gone:
                    removed = store.remove_followers_at(conn, inbox)
                    log.info("%s answered 410 Gone: %d follower(s) there forgotten", inbox, removed)


def _verdict(claim: Claim, answer: Posted, lane: Lane, now: datetime) -> Result:
    """What an inbox's answer means for the delivery."""
    status = answer.status
    if 200 <= status < 300:
        return Result(claim, Outcome.SENT)
    reason = f"{claim.target} answered {status}"
    if status == 410:
        lane.gone.add(claim.target)
        return Result(claim, Outcome.FAILED, reason + " (Gone): its followers are forgotten")
    if status in (408, 429) or status >= 500:
        return Result(claim, Outcome.RETRY, reason, _retry_after(answer, now))
    return Result(claim, Outcome.FAILED, reason)


def _retry_after(answer: Posted, now: datetime) -> datetime | None:
    value = next((v for k, v in answer.headers.items() if k.lower() == "retry-after"), "")
    return now + timedelta(seconds=min(int(value), 86400)) if value.isdigit() else None


def _host(url: str) -> str:
    return (urlsplit(url).netloc or url).lower()


def _private(limits: FetchLimits) -> FetchLimits:
    """The limits, letting inboxes on private addresses be reached (``fediverse.allow_private_addresses``)."""
    return FetchLimits(limits.timeout, limits.deadline, limits.max_bytes, limits.redirect_origins, public_only=False)
