"""The outbox: every copy owed to a subscriber or a partner, and the state machine that sends it once.

::

     planned ──► pending ──claim (lease)──► in_flight ──┬──► sent
                   ▲  │                        │        ├──► failed     (a permanent answer, or retries used up)
                   │  │                        │        ├──► unknown    (the bytes left, no answer came back)
                   │  │                        │        └──► cancelled  (the recipient left, or the edition is gone)
                   │  └────────────────────────┼───────────► cancelled  (the same, seen before it was claimed)
                   └── retry, or lease lost ───┘

- A delivery is planned once: rows are unique on (source, channel, target), so
  planning twice, or on two nodes at once, plans nothing new.
- ``claim`` takes due rows under a lease (PostgreSQL ``FOR UPDATE SKIP LOCKED``;
  SQLite ``BEGIN IMMEDIATE``) and marks them with one token; every later update
  is fenced on that token, so a node whose lease ran out cannot overwrite the
  work of the node that took over.
- ``handoff`` is committed just before the bytes leave. A lease that expires
  without hand-off is safely claimed again; with hand-off, the channel's policy
  decides: email goes to ``unknown`` (never re-sent on its own), a webhook is
  retried (the partner de-duplicates on its id).
- A pending delivery whose recipient unsubscribed, was removed or bounced, or
  whose statement was retracted before it went out, is ``cancelled``.
- Retry times and give-ups come from each channel's :class:`RetryPolicy`
  (data); a sender only reports what an attempt came to.

Modules: :mod:`~syndicate.outbox.states` (the names), :mod:`~syndicate.outbox.policy`
(retry policies), :mod:`~syndicate.outbox.table` (the ``deliveries`` table: the only
module that reads or writes it) and :mod:`~syndicate.outbox.claims` (one node's
claims, leases and outcomes).
"""

from syndicate.outbox.claims import Claim, Outbox, Recipient, Result
from syndicate.outbox.policy import RetryPolicy
from syndicate.outbox.rollups import edition_reports
from syndicate.outbox.states import FINAL, MAYBE_RECEIVED, Channel, DeliveryState, Outcome, SourceKind
from syndicate.outbox.table import (
    COMPLAINT_LINE,
    Latency,
    Reach,
    backlog,
    backlog_by_target,
    cancel,
    cancel_sources,
    cancel_target,
    count_in,
    counts,
    held_by_node,
    latency,
    listing,
    make_due,
    oldest_due,
    plan_many,
    plan_one,
    reach,
    requeue,
    sent_since,
)

__all__ = [
    "COMPLAINT_LINE",
    "FINAL",
    "MAYBE_RECEIVED",
    "Channel",
    "Claim",
    "DeliveryState",
    "Latency",
    "Outbox",
    "Outcome",
    "Reach",
    "Recipient",
    "Result",
    "RetryPolicy",
    "SourceKind",
    "backlog",
    "backlog_by_target",
    "cancel",
    "cancel_sources",
    "cancel_target",
    "count_in",
    "counts",
    "edition_reports",
    "held_by_node",
    "latency",
    "listing",
    "make_due",
    "oldest_due",
    "plan_many",
    "plan_one",
    "reach",
    "requeue",
    "sent_since",
]
