"""A channel's retry policy, declared as data: the waits after each failed attempt, and the limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """How a channel retries: the waits after each failed attempt, and for how long at most.

    After the last wait the delivery fails; it also fails once ``give_up_after``
    seconds have passed since it was planned. ``unknown_after_handoff`` says what
    a lease that ran out after hand-off means: the copy may have arrived, so it
    is left ``unknown`` (mail: never sent twice on its own), or it is tried
    again (a partner de-duplicates on the event's id).
    """

    waits: tuple[float, ...]
    give_up_after: float | None = None
    unknown_after_handoff: bool = True

    def __post_init__(self) -> None:
        if not self.waits or any(wait < 0 for wait in self.waits):
            raise ValueError(f"a retry policy needs one or more waits of 0 s or more, not {self.waits!r}")

    def next_try(
        self, attempts: int, created_at: datetime, now: datetime, asked: datetime | None = None
    ) -> datetime | None:
        """When to try again after ``attempts`` tries (``asked``: when the other side asked), or None to give up.

        A time the other side asked for (Retry-After, a throttling server)
        replaces the policy's wait, never its limits: a used-up schedule fails.
        """
        if attempts > len(self.waits):
            return None
        retry_at = asked or now + timedelta(seconds=self.waits[attempts - 1])
        if self.give_up_after is not None and retry_at - created_at > timedelta(seconds=self.give_up_after):
            return None
        return retry_at
