"""Rate limits in memory: a token bucket per key, forgetting the least recent keys beyond a bound.

Limits live in the process that answers the request: with several processes
(or nodes) each one counts on its own, so the real limit is the setting times
the number of processes. That is enough to stop one client from flooding the
confirmation mail and to stop mail-bombing one address; it is not a quota.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_KEYS = 10_000


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds for each key, refilled evenly over the window."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float], max_keys: int = MAX_KEYS) -> None:
        self.limit = float(limit)
        self.rate = limit / window
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> float:
        """Count one event for ``key``: 0 if it is allowed, else the seconds until one would be."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.pop(key, (self.limit, now))
            tokens = min(self.limit, tokens + max(0.0, now - then) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._buckets[key] = (tokens - 1 if not wait else tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(frozen=True)
class SubscribeLimits:
    """The two limits on subscribing: per client address and per e-mail address."""

    client: RateLimiter
    address: RateLimiter

    def client_wait(self, client: str) -> float:
        """Seconds this client must wait (0: go ahead); counts the request."""
        return self.client.hit(client)

    def address_wait(self, email: str) -> float:
        """Seconds before ``email`` may be asked for again (0: go ahead); counts the request.

        The address is kept only as a hash, so memory holds no list of addresses.
        """
        return self.address.hit(hashlib.sha256(email.encode()).hexdigest())


def minutes(seconds: float) -> int:
    """Whole minutes to tell a person to wait (at least one)."""
    return max(1, math.ceil(seconds / 60))
