"""The names the outbox speaks in: channels, where a delivery stands, and what an attempt came to."""

from __future__ import annotations

import enum


class Channel(enum.StrEnum):
    """A way a copy goes out; each declares its retry policy (:mod:`syndicate.outbox.policy`)."""

    EMAIL = "email"
    WEBHOOK = "webhook"
    ACTIVITYPUB = "activitypub"


class SourceKind(enum.StrEnum):
    """What a delivery carries: an edition (mail, rendered once), a partner event, or a fediverse activity."""

    EDITION = "edition"
    EVENT = "event"
    ACTIVITY = "activity"


class DeliveryState(enum.StrEnum):
    """Where a delivery stands (the diagram is in :mod:`syndicate.outbox`)."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"


# The states that end a delivery: nothing moves it again but an operator's decision.
FINAL = frozenset({DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.UNKNOWN, DeliveryState.CANCELLED})
# The states in which a delivery's bytes may have reached its target.
MAYBE_RECEIVED = frozenset({DeliveryState.SENT, DeliveryState.IN_FLIGHT, DeliveryState.UNKNOWN})


class Outcome(enum.StrEnum):
    """What one attempt came to."""

    SENT = "sent"
    RETRY = "retry"  # a temporary failure: try again after the policy's wait
    FAILED = "failed"  # a permanent failure
    UNKNOWN = "unknown"  # the bytes left; whether they arrived is not known
    REQUEUE = "requeue"  # not attempted after all (stopping, throttled): back to pending, no attempt counted
    CANCELLED = "cancelled"
