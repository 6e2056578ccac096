"""The stage that pushes due events to partners: one lane per partner, every lane at once.

A lane sends its partner's pushes one after another over its own HTTP
session, so at most one request per partner is in flight (on each node) and
nothing (a cookie, a pooled connection) passes from one partner to another.
Lanes run side by side on threads, so a slow or dead partner never delays the others;
and a lane that meets a failure stops for this run (its other pushes wait
until the failed one is due again), so a dead partner costs one timeout per
run, not one per event. Outcomes are recorded, on the calling thread, as
lanes finish.

For webhooks the hand-off only decides whether an attempt counts: a lease
that runs out (its process died) is retried with the same ``webhook-id``
whether or not the bytes left, and the partner de-duplicates.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime

import requests
from sqlalchemy.engine import Connection

from syndicate.config import PartnerConfig
from syndicate.deliver.webhooks import Unreachable, redact
from syndicate.deliver.webhooks.compose import Composer, Outgoing, Push
from syndicate.deliver.webhooks.http import Reply, post
from syndicate.deliver.webhooks.verdict import Verdict, judge
from syndicate.outbox import Channel, Claim, Outbox, Outcome, Result
from syndicate.roles import Role
from syndicate.store import partners as partner_store
from syndicate.store.db import Database

log = logging.getLogger(__name__)

MAX_LANES = 128
Stop = Callable[[], bool]


@dataclass
class LaneReport:
    """What one lane did: a result per claim, and what it learnt of its partner."""

    partner: PartnerConfig | None
    results: list[Result] = field(default_factory=list)
    reached_at: datetime | None = None
    error: str | None = None
    gone: str | None = None  # the partner answered 410 Gone: why it is disabled


@dataclass
class WebhookSender:
    """Pushes every due webhook delivery, lane by lane, until none is due or it is told to stop."""

    name = "send-webhooks"
    role = Role.WORKER

    db: Database
    outbox: Outbox
    composer: Composer
    clock: Callable[[], datetime]
    session: Callable[[], requests.Session]
    claim_size: int = 200
    wall: Callable[[], float] = time.time  # signatures carry the real time: partners reject stale ones

    def run(self, now: datetime, stop: Stop) -> dict[str, int]:
        """Push what is due, each delivery at most once per run; return how each ended."""
        counts: Counter[str] = Counter()
        with self.outbox.draining(self.clock):
            self._drain(stop, counts)
        return dict(counts)

    def _drain(self, stop: Stop, counts: Counter[str]) -> None:
        tried: set[int] = set()
        while not stop():
            claims = self.outbox.claim(Channel.WEBHOOK, self.claim_size, self.clock())
            fresh = [c for c in claims if c.id not in tried]
            again = [Result(c, Outcome.REQUEUE) for c in claims if c.id in tried]
            if again:  # due again at once (Retry-After: 0): the next run tries it
                self.outbox.finish(again, self.clock())
            if not fresh:
                break
            tried.update(c.id for c in fresh)
            for reports in self.deliver(fresh, stop):
                self._record(reports, counts)

    def deliver(self, claims: Sequence[Claim], stop: Stop) -> Iterator[list[LaneReport]]:
        """Compose, hand off and push ``claims``; yield the reports of lanes as they finish (nothing is recorded)."""
        outgoing, settled = self.composer.compose(claims, self.clock())
        if settled:
            yield [LaneReport(None, settled)]
        held = self.outbox.handoff([o.claim for o in outgoing], self.clock())
        lanes = _lanes(o for o in outgoing if o.claim.id in held)
        if not lanes:
            return
        with ThreadPoolExecutor(min(len(lanes), MAX_LANES), thread_name_prefix="webhook-lane") as pool:
            running = {pool.submit(self._lane, lane, stop) for lane in lanes}
            yield from self._as_finished(running)

    def probe(self, partner: PartnerConfig) -> tuple[Push, Reply]:
        """Send a signed test event to ``partner`` now, outside the outbox; raises PartnerError if none answered."""
        push = self.composer.test_push(partner, self.clock())
        with self.session() as http:
            return push, post(http, partner, push.payload.body, push.headers(int(self.wall())))

    def _as_finished(self, running: set[Future[LaneReport]]) -> Iterator[list[LaneReport]]:
        """The reports of the lanes finished since last asked, keeping the leases alive meanwhile."""
        while running:
            finished, running = wait(running, timeout=self.outbox.keep_alive_every, return_when=FIRST_COMPLETED)
            if finished:
                yield [future.result() for future in finished]
            self.outbox.keep_alive(self.clock())

    def _lane(self, lane: list[Outgoing], stop: Stop) -> LaneReport:
        """Push one partner's deliveries in order; after a failure the rest wait for the next try."""
        report = LaneReport(lane[0].push.partner)
        with self.session() as http:
            for index, item in enumerate(lane):
                if stop():
                    report.results += [Result(o.claim, Outcome.REQUEUE) for o in lane[index:]]
                    break
                verdict = self._attempt(http, item.push)
                report.results.append(self._result(item.claim, verdict))
                if verdict.outcome != Outcome.SENT:
                    self._hold_back(report, verdict, lane[index + 1 :])
                    break
                report.reached_at = self.clock()
        return report

    def _hold_back(self, report: LaneReport, verdict: Verdict, rest: list[Outgoing]) -> None:
        """Note the failure; the partner's other pushes wait until the failed one is tried again."""
        report.error = verdict.error
        report.gone = verdict.error if verdict.disable else None
        # The rest wait exactly as long as the failed push does, so none of them overtakes it.
        later = self.outbox.held_back_until(report.results[-1], self.clock())
        waiting = f"waiting: the push before it failed ({verdict.error})"
        report.results += [Result(o.claim, Outcome.REQUEUE, waiting, later) for o in rest]

    def _attempt(self, http: requests.Session, push: Push) -> Verdict:
        try:
            reply = post(http, push.partner, push.payload.body, push.headers(int(self.wall())))
        except Unreachable as exc:
            verdict = Verdict(Outcome.RETRY, str(exc))
        except Exception as exc:  # one partner's surprise must not stop the other lanes
            trace = redact(traceback.format_exc())  # the URL in it may carry a password
            log.error("push %s to %s failed unexpectedly:\n%s", push.webhook_id, push.partner.name, trace)
            verdict = Verdict(Outcome.RETRY, f"partner {push.partner.name}: unexpected error: {exc!r}")
        else:
            verdict = judge(push.partner, reply, self.clock())
        detail = f" ({verdict.error})" if verdict.error else ""
        log.info("push %s to %s: %s%s", push.webhook_id, push.partner.name, verdict.outcome.value, detail)
        return verdict

    def _result(self, claim: Claim, verdict: Verdict) -> Result:
        return Result(claim, verdict.outcome, verdict.error, verdict.retry_at)

    def _record(self, reports: list[LaneReport], counts: Counter[str]) -> None:
        """Record outcomes and what was learnt of each partner, in two transactions for all these lanes."""
        now = self.clock()
        results = [result for report in reports for result in report.results]
        self.outbox.finish(results, now)
        counts.update(r.outcome.value for r in results)
        learnt = [r for r in reports if r.partner is not None and (r.reached_at or r.error)]
        if not learnt:
            return
        with self.db.write() as conn:
            for report in learnt:
                _learn(conn, report, now)


def _learn(conn: Connection, report: LaneReport, now: datetime) -> None:
    """Keep what a lane learnt of its partner: it took a push, it failed, it is gone."""
    assert report.partner is not None
    name = report.partner.name
    if report.reached_at:
        partner_store.succeeded(conn, name, report.reached_at)
    if report.error:
        partner_store.failed(conn, name, report.error, now)
    if report.gone:
        partner_store.disable(conn, name, report.gone, now)
        log.warning("partner %s disabled: %s", name, report.gone)


def _lanes(outgoing: Iterable[Outgoing]) -> list[list[Outgoing]]:
    """The pushes grouped by partner, each group in claim order."""
    lanes: dict[str, list[Outgoing]] = {}
    for item in outgoing:
        lanes.setdefault(item.push.partner.name, []).append(item)
    return list(lanes.values())
