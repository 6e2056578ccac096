"""What can go wrong in an SMTP dialogue, declared as data for `servers.smtp.SMTPServer`.

A `Fault` pairs a `Stage` (GREETING, MAIL, RCPT, DATA, BODY, END_OF_DATA) with an
action (`Reply` with a code, `Drop` the connection, `Hang` forever) and criteria that
say when it strikes (connection or transaction ordinals, sender, recipients, the
parsed message, how many times). Build faults with the class methods:

    Fault.greeting(421)                              # refuse every connection
    Fault.rcpt(550, recipients="gone@example.org")   # one mailbox unavailable
    Fault.mail(454, times=2)                         # throttle twice, then accept
    Fault.end_of_data(554, transactions={3})         # reject the 3rd message
    Fault.drop_in_body(after_bytes=1000)             # hang up mid-DATA
    Fault.hang_after_data()                          # never answer the final dot
    Fault.drop_after_data()                          # store, then hang up unanswered
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TypedDict, Unpack


class Stage(enum.StrEnum):
    """Where in the SMTP dialogue a fault strikes."""

    GREETING = "GREETING"
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"  # the DATA command itself, before any 354
    BODY = "BODY"  # while the message content arrives
    END_OF_DATA = "END_OF_DATA"  # the reply to the final dot


_DEFAULT_TEXT = {
    421: "4.3.2 Service not available, closing transmission channel",
    450: "4.2.1 Mailbox temporarily unavailable",
    451: "4.3.0 Requested action aborted: local error in processing",
    452: "4.3.1 Insufficient system storage",
    454: "4.7.0 Temporary failure, slow down",
    550: "5.1.1 Mailbox unavailable",
    552: "5.2.2 Mailbox full",
    553: "5.1.3 Mailbox name not allowed",
    554: "5.6.0 Transaction failed",
}


@dataclass(frozen=True)
class Reply:
    """Answer with `code` instead of the normal reply.

    `close=None` hangs up after a 421, as RFC 5321 section 3.8 has servers do; a reply at
    GREETING always hangs up, since nothing else may follow a refused greeting here.
    """

    code: int
    text: str = ""
    close: bool | None = None

    def line(self) -> str:
        """The reply line, without CRLF."""
        return f"{self.code} {self.text or _DEFAULT_TEXT.get(self.code, 'Fault injected')}"

    def closes(self, stage: Stage) -> bool:
        """Whether the server hangs up after sending this reply at `stage`."""
        if stage is Stage.GREETING:
            return True
        return self.code == 421 if self.close is None else self.close


@dataclass(frozen=True)
class Drop:
    """Close the connection without replying; at BODY, after `after_bytes` of content."""

    after_bytes: int = 0


@dataclass(frozen=True)
class Hang:
    """Never reply; wait until the client hangs up or the server stops."""


Action = Reply | Drop | Hang
AddressMatch = str | Callable[[str], bool]


class Match(TypedDict, total=False):
    """Which occasions a `Fault` applies to; every given criterion must hold.

    connections / transactions: 1-based ordinals (see the module docstring).
    sender, recipients: an address (compared case-insensitively) or a predicate; at
    RCPT `recipients` is tested on the recipient being added, later on every accepted
    recipient (any may match).
    message: a predicate on the parsed message (END_OF_DATA only).
    times: fire at most this many times, then let the dialogue go on normally.
    """

    connections: Collection[int]
    transactions: Collection[int]
    sender: AddressMatch
    recipients: AddressMatch
    message: Callable[[EmailMessage], bool]
    times: int


@dataclass(frozen=True)
class FaultContext:
    """What the server knows when it asks whether a fault strikes."""

    connection: int
    transaction: int | None = None
    sender: str | None = None
    recipients: tuple[str, ...] = ()
    message: EmailMessage | None = None


def _address_matches(match: AddressMatch | None, addresses: Sequence[str]) -> bool:
    if match is None:
        return True
    if isinstance(match, str):
        return match.casefold() in (address.casefold() for address in addresses)
    return any(match(address) for address in addresses)


@dataclass(eq=False)
class Fault:
    """A misbehaviour at `stage`; build one with the class methods.

    `store` (END_OF_DATA only) records the message, flagged `maybe_delivered`, before
    the action, so the server has the message although the client never heard so.
    `fired` counts how often the fault struck.
    """

    stage: Stage
    action: Action
    connections: Collection[int] | None = None
    transactions: Collection[int] | None = None
    sender: AddressMatch | None = None
    recipients: AddressMatch | None = None
    message: Callable[[EmailMessage], bool] | None = None
    store: bool = False
    times: int | None = None
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        for problem, bad in self._problems().items():
            if bad:
                raise ValueError(f"{problem} (fault {self!r})")

    def _problems(self) -> dict[str, bool]:
        early = self.stage in (Stage.GREETING, Stage.MAIL)
        drop_bytes = isinstance(self.action, Drop) and self.action.after_bytes > 0
        return {
            "BODY faults must be Drop": self.stage is Stage.BODY and not isinstance(self.action, Drop),
            "Drop(after_bytes) is for BODY": drop_bytes and self.stage is not Stage.BODY,
            "store= is for END_OF_DATA": self.store and self.stage is not Stage.END_OF_DATA,
            "message= is for END_OF_DATA": self.message is not None and self.stage is not Stage.END_OF_DATA,
            "no recipients are known yet": self.recipients is not None and early,
            "nothing but the connection is known at GREETING": self.stage is Stage.GREETING
            and (self.sender is not None or self.transactions is not None),
        }

    def applies(self, stage: Stage, ctx: FaultContext) -> bool:
        """Whether this fault strikes at `stage` in situation `ctx` (ignores `times`)."""
        if stage is not self.stage:
            return False
        sender = () if ctx.sender is None else (ctx.sender,)
        return (
            (self.connections is None or ctx.connection in self.connections)
            and (self.transactions is None or ctx.transaction in self.transactions)
            and _address_matches(self.sender, sender)
            and _address_matches(self.recipients, ctx.recipients)
            and (self.message is None or (ctx.message is not None and self.message(ctx.message)))
        )

    def exhausted(self) -> bool:
        """Whether it already fired `times` times."""
        return self.times is not None and self.fired >= self.times

    @classmethod
    def greeting(cls, code: int = 421, text: str = "", **match: Unpack[Match]) -> Fault:
        """Greet with `code` (421: service not available) and hang up."""
        return cls(Stage.GREETING, Reply(code, text), **match)

    @classmethod
    def mail(cls, code: int, text: str = "", **match: Unpack[Match]) -> Fault:
        """Answer MAIL with `code`: 421 or 454 for throttling (421 hangs up)."""
        return cls(Stage.MAIL, Reply(code, text), **match)

    @classmethod
    def rcpt(cls, code: int, text: str = "", **match: Unpack[Match]) -> Fault:
        """Answer RCPT with `code`: 451, 550, 552, or 421 / 454 for throttling."""
        return cls(Stage.RCPT, Reply(code, text), **match)

    @classmethod
    def data(cls, code: int, text: str = "", **match: Unpack[Match]) -> Fault:
        """Refuse the DATA command itself with `code`."""
        return cls(Stage.DATA, Reply(code, text), **match)

    @classmethod
    def end_of_data(cls, code: int = 554, text: str = "", **match: Unpack[Match]) -> Fault:
        """Reject the message with `code` in reply to the final dot; nothing is stored."""
        return cls(Stage.END_OF_DATA, Reply(code, text), **match)

    @classmethod
    def drop_in_body(cls, after_bytes: int = 0, **match: Unpack[Match]) -> Fault:
        """Hang up mid-DATA once `after_bytes` of content arrived (or at the dot if fewer)."""
        return cls(Stage.BODY, Drop(after_bytes), **match)

    @classmethod
    def hang_after_data(cls, *, store: bool = False, **match: Unpack[Match]) -> Fault:
        """Read the whole message and the dot, then never reply."""
        return cls(Stage.END_OF_DATA, Hang(), store=store, **match)

    @classmethod
    def drop_after_data(cls, *, store: bool = True, **match: Unpack[Match]) -> Fault:
        """Read the message and the dot, store it (by default), and hang up unanswered."""
        return cls(Stage.END_OF_DATA, Drop(), store=store, **match)
