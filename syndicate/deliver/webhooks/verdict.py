"""What a partner's reply means for the delivery: sent, retry (and when), failed, or the partner is gone.

| reply                       | outcome                                             |
|-----------------------------|-----------------------------------------------------|
| 2xx                         | sent                                                |
| 410 Gone                    | failed, and the partner is disabled                 |
| 429, 503                    | retry at ``Retry-After`` (seconds or an HTTP date)   |
| 3xx (not followed), 408, 5xx| retry on the schedule                               |
| other 4xx                   | failed: asking again will get the same answer       |
| no reply (refused, timeout) | retry on the schedule, with the same ``webhook-id`` |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from syndicate.config import PartnerConfig
from syndicate.deliver.webhooks import redact
from syndicate.deliver.webhooks.http import Reply
from syndicate.outbox import Outcome

RETRY_STATUSES = frozenset({408})
THROTTLE_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Verdict:
    """The outcome of one push, and what it means for the partner."""

    outcome: Outcome
    error: str | None = None
    retry_at: datetime | None = None  # only from Retry-After; otherwise the retry policy decides
    disable: bool = False

    def __post_init__(self) -> None:
        # The error is stored and logged as it is: a partner URL in it must not carry its password.
        if self.error is not None:
            object.__setattr__(self, "error", redact(self.error))


def judge(partner: PartnerConfig, reply: Reply, now: datetime) -> Verdict:
    """The verdict on ``reply`` to a push to ``partner`` at ``now``."""
    if reply.ok:
        return Verdict(Outcome.SENT)
    error = f"partner {partner.name}: {partner.url} answered {reply.describe()}"
    if reply.status == 410:
        disabled = f"{error}; partner disabled (syndicate partners enable {partner.name})"
        return Verdict(Outcome.FAILED, disabled, disable=True)
    if reply.status in THROTTLE_STATUSES:
        wait = retry_after(reply.headers.get("retry-after"), now)
        return Verdict(Outcome.RETRY, error + (f"; asked to wait until {wait.isoformat()}" if wait else ""), wait)
    if 300 <= reply.status < 400:
        moved = reply.headers.get("location", "nowhere")
        return Verdict(Outcome.RETRY, f"{error}; redirects are not followed (to {moved}): fix its url")
    if 400 <= reply.status < 500 and reply.status not in RETRY_STATUSES:
        return Verdict(Outcome.FAILED, error)
    return Verdict(Outcome.RETRY, error)


def retry_after(value: str | None, now: datetime) -> datetime | None:
    """When ``Retry-After`` (delay-seconds or an HTTP date) says to come back; None if absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return now + timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(when, now)
