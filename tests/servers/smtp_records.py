"""What the SMTP test server keeps: a list safe to share with the test, events, messages."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Generic, Literal, TypeVar, overload

T = TypeVar("T")


class ThreadSafeList(Generic[T]):
    """A list the server thread appends to while the test thread reads and waits on it."""

    def __init__(self) -> None:
        self._items: list[T] = []
        self._changed = threading.Condition()

    def append(self, item: T) -> None:
        """Add `item` and wake every `wait_for`."""
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def snapshot(self) -> list[T]:
        """A copy of the items so far."""
        with self._changed:
            return list(self._items)

    def wait_for(self, predicate: Callable[[list[T]], bool], timeout: float = 5.0) -> list[T]:
        """Block until `predicate(items)` holds and return a snapshot; TimeoutError if not."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self._items), timeout):
                raise TimeoutError(f"condition not met within {timeout}s: {self._items!r}")
            return list(self._items)

    def wait_for_len(self, count: int, timeout: float = 5.0) -> list[T]:
        """Block until there are at least `count` items."""
        return self.wait_for(lambda items: len(items) >= count, timeout)

    def clear(self) -> None:
        """Forget every item."""
        with self._changed:
            self._items.clear()

    def __len__(self) -> int:
        with self._changed:
            return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self.snapshot())

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        with self._changed:
            return self._items[index]

    def __repr__(self) -> str:
        return f"ThreadSafeList({self.snapshot()!r})"


EventKind = Literal["connect", "tls", "reply", "stored", "close", "drop", "hang", "disconnect"]


@dataclass(frozen=True)
class Event:
    """One thing the server did.

    kind: `connect`; `tls` (STARTTLS handshake done); `reply` (a reply line was sent,
    recorded before it is written so a client never sees a reply the test cannot);
    `stored` (a message was recorded); `close` (the server hung up after a reply, as
    after a 421); `drop` (hung up without replying); `hang` (decided never to reply);
    `disconnect` (the connection ended, whoever closed it).

    command: for replies, the command answered: GREETING, EHLO, MAIL, RCPT, DATA (the
    354 or a refusal of the DATA command), END_OF_DATA (the reply to the final dot),
    AUTH, STARTTLS, RSET, QUIT... ("" for replies to unparsable lines); for close, drop
    and hang, the `Stage` at which it happened.
    """

    kind: EventKind
    connection: int
    command: str = ""
    code: int | None = None
    text: str = ""
    address: str | None = None
    transaction: int | None = None
    injected: bool = False


@dataclass(frozen=True)
class ReceivedMessage:
    """A message the server stored.

    `maybe_delivered` is True when a fault kept the client from hearing that it was
    stored (accept-then-drop, accept-then-hang): a client retry makes a duplicate that a
    test may want to tell apart. `sender` is "" for the null reverse-path `<>`.
    """

    sender: str
    recipients: tuple[str, ...]
    raw: bytes
    message: EmailMessage
    connection: int
    transaction: int
    maybe_delivered: bool = False
    tls: bool = False
    login: str | None = None
