"""A statement's mail as a reader gets it: previewed, or sent to one address as a test.

Both go through the code that sends newsletters: the edition's own rendering
(boundary and all), personalised as the sender personalises each copy; a
test mail goes out through the real SMTP transport (the same sessions,
signing and re-encoding) but not through the outbox, so nothing is recorded
and no subscriber is mailed. ``syndicate preview``, ``syndicate send-test``
and the console share them.
"""

from __future__ import annotations

import email
import email.policy
import time
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.utils import format_datetime

from syndicate.app import App
from syndicate.deliver.email.dkim import Signer
from syndicate.deliver.email.transports import wire_settings
from syndicate.deliver.email.wire import Attempt, Fate, FreeLedger, Wire, pools_for
from syndicate.errors import SyndicateError
from syndicate.mail import Letter
from syndicate.model import Revision
from syndicate.plan.editions import edition_key
from syndicate.render.email import MessageTemplate
from syndicate.store import statements
from syndicate.store import subscribers as subscriber_store
from syndicate.subscribers import InvalidSubscriber, normalise_email

SAMPLE_ADDRESS = "reader@example.org"
DIGESTS = ("daily", "weekly")


class NoSuchStatement(SyndicateError):
    """The statement asked for is not in the database."""


def preview(app: App, statement_id: str, digest: str | None = None, to: str | None = None) -> bytes:
    """Render the statement's mail (or a digest holding it) and personalise it for ``to``, as the sender would."""
    if digest is not None and digest not in DIGESTS:
        raise SyndicateError(f"no digest {digest!r} (there are: {', '.join(DIGESTS)})")
    now = app.clock()
    address = _address(to) if to else SAMPLE_ADDRESS
    revision, subscriber_id = _revision(app, statement_id, address)
    if digest:
        rendered = app.email.digest(digest, revision.lang, [revision], f"preview:{statement_id}:{digest}", now)
    else:
        # The edition's own key: the message is the one its subscribers get, boundary and all.
        rendered = app.email.statement(revision, edition_key(revision, app.config.email.resend_updates), now)
    template = MessageTemplate.from_bytes(rendered.message)
    return app.email_composer.personalise(template, "syndicate.preview", subscriber_id, address, now)


@dataclass(frozen=True)
class Parts:
    """A previewed message as a person reads it: its headers and its two bodies."""

    subject: str
    sender: str
    to: str
    html: str
    text: str


def parts(message: bytes) -> Parts:
    """The subject, sender, recipient and the HTML and plain-text bodies of a message, decoded."""
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    bodies = {}
    for kind in ("html", "plain"):
        part = parsed.get_body((kind,))
        bodies[kind] = part.get_content() if isinstance(part, EmailMessage) else ""
    return Parts(str(parsed["Subject"] or ""), str(parsed["From"] or ""), str(parsed["To"] or ""),
                 bodies["html"], bodies["plain"])  # fmt: skip


@dataclass(frozen=True)
class TestResult:
    """What a relay answered to a test mail."""

    relay: str
    host: str
    port: int
    attempt: Attempt

    @property
    def delivered(self) -> bool:
        return self.attempt.fate == Fate.DELIVERED

    def describe(self) -> str:
        return f"relay {self.relay} ({self.host}:{self.port}): {self.attempt.describe()}"


def send_test(app: App, statement_id: str, to: str, relay: str | None = None) -> TestResult:
    """Send ``statement_id``'s mail, exactly as a subscriber would get it, to ``to`` alone, through ``relay``."""
    config = app.config
    if config.email.transport != "smtp":
        raise SyndicateError('a test mail needs email.transport = "smtp" (the file transport sends nothing)')
    address = _address(to)
    template, subscriber_id = preview_template(app, statement_id, address)
    signer = Signer.from_settings(config.email.dkim) if config.email.dkim.enabled else None
    settings = wire_settings(config, signer)
    relays = [r for r in settings.relays if not relay or r.name == relay][:1]
    if not relays:
        known = ", ".join(r.name for r in settings.relays)
        raise SyndicateError(f"no relay named {relay!r} (there are: {known})")
    now = app.clock()
    values = app.email_composer.values(template, f"syndicate.test-{int(time.time())}", subscriber_id, address, now,
                                       format_datetime(now).encode())  # fmt: skip
    wire = Wire(pools_for(replace(settings, relays=tuple(relays))), FreeLedger(), app.clock, signer)
    wire.add_template(0, template)
    wire.submit(0, [Letter(0, config.sender[1], address, 0, values)])
    return TestResult(relays[0].name, relays[0].host, relays[0].port, _one(wire))


def preview_template(app: App, statement_id: str, address: str) -> tuple[MessageTemplate, int]:
    """The statement's mail as its edition would hold it, and the subscriber id its links are signed for."""
    revision, subscriber_id = _revision(app, statement_id, address)
    rendered = app.email.statement(revision, edition_key(revision, app.config.email.resend_updates), app.clock())
    return MessageTemplate.from_bytes(rendered.message), subscriber_id


def _revision(app: App, statement_id: str, address: str) -> tuple[Revision, int]:
    with app.db.read() as conn:
        revision = statements.latest_revision(conn, statement_id) or statements.as_revision(conn, statement_id)
        subscriber = subscriber_store.by_email(conn, address)
    if revision is None:
        raise NoSuchStatement(f"no statement with id {statement_id!r} (run `syndicate build` after adding it)")
    return revision, subscriber.id if subscriber else 0


def _one(wire: Wire) -> Attempt:
    deadline = time.monotonic() + max(r.relay.timeout for r in wire.pools) * 4 + 5
    try:
        while time.monotonic() < deadline:
            for _, attempts in wire.pump(True, timeout=0.05):
                return attempts[0]
        return Attempt(0, Fate.MAYBE, "dot", None, "no answer in time")
    finally:
        wire.close()


def _address(raw: str) -> str:
    try:
        return normalise_email(raw)
    except InvalidSubscriber as exc:
        raise SyndicateError(f"not an address: {exc}") from exc
