"""The composition root: build every stage of the pipeline from one checked config.

Nothing else constructs collaborators; each stage is handed what it needs, so
a test can hand it something else (a clock, an HTTP session, a folder).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import requests

from syndicate import __version__
from syndicate.config import Config
from syndicate.deliver.activitypub.sender import ActivityPubSender
from syndicate.deliver.email.compose import Composer
from syndicate.deliver.email.dkim import Signer
from syndicate.deliver.email.sender import EmailSender
from syndicate.deliver.email.transports import make_transport
from syndicate.deliver.reaper import Reaper
from syndicate.deliver.webhooks import http as webhook_http
from syndicate.deliver.webhooks.compose import Composer as PushComposer
from syndicate.deliver.webhooks.sender import WebhookSender
from syndicate.inbound.mailbox import mailboxes
from syndicate.inbound.receive import HearBack, Receiver
from syndicate.outbox import Channel, Outbox, RetryPolicy
from syndicate.outbox.rollups import Rollup
from syndicate.plan.confirmations import ConfirmationPlanner
from syndicate.plan.editions import EditionPlanner
from syndicate.plan.events import EventPlanner
from syndicate.plan.fediverse import FediversePlanner
from syndicate.render import templates
from syndicate.render.documents import DocumentRenderer
from syndicate.render.email import EmailRenderer
from syndicate.render.entries import EntryRenderer
from syndicate.render.feeds import FeedBuilder
from syndicate.render.partner import PartnerRenderer
from syndicate.render.site.builder import SiteBuilder
from syndicate.render.site.pages import SiteRenderer
from syndicate.render.websub import Pinger
from syndicate.roles import Role
from syndicate.sources import Source, make_source
from syndicate.store import Database, migrate, require_current
from syndicate.tokens import Secrets, load_secrets
from syndicate.verp import ReturnPath

Clock = Callable[[], datetime]
USER_AGENT = f"syndicate/{__version__}"

# Temporary mail failures are retried with growing waits for up to three days.
EMAIL_RETRY = RetryPolicy(waits=(60, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400), give_up_after=3 * 86400)
# Partner pushes: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, then failed. An attempt cut short after
# hand-off is retried (same webhook-id; the partner de-duplicates), never left unknown.
WEBHOOK_RETRY = RetryPolicy(waits=(5, 300, 1800, 7200, 18000, 36000, 36000), unknown_after_handoff=False)
# Fediverse deliveries retry on the partners' schedule; receivers de-duplicate on the activity's id.
ACTIVITYPUB_RETRY = RetryPolicy(waits=(5, 300, 1800, 7200, 18000, 36000, 36000), unknown_after_handoff=False)


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


class Stage(Protocol):
    """A step of the tick after ingest and feeds: planning (role SCHEDULER) or delivering (WORKER)."""

    name: str
    role: Role

    def run(self, now: datetime, stop: Callable[[], bool]) -> dict[str, int]:
        """Do this stage's work that is due at ``now``; return counts for the log and status."""
        ...


@dataclass
class App:
    """Every collaborator of one syndicate process."""

    config: Config
    db: Database
    source: Source
    feeds: FeedBuilder
    site: SiteBuilder
    pinger: Pinger
    session: requests.Session
    outbox: Outbox
    secrets: Secrets
    email: EmailRenderer
    email_composer: Composer  # what ``preview`` personalises a message with, as the sender does
    email_sender: EmailSender
    webhook_sender: WebhookSender
    receiver: Receiver
    clock: Clock = utc_now
    stages: list[Stage] = field(default_factory=list)

    @property
    def node(self) -> str:
        """This process's name among the nodes sharing the database."""
        return self.outbox.node

    def stage(self, name: str) -> Stage:
        """The stage called ``name``."""
        return next(s for s in self.stages if s.name == name)

    def close(self) -> None:
        """Release connections."""
        self.session.close()
        self.outbox.close()
        self.db.dispose()


def http_session() -> requests.Session:
    """An HTTP session that says who it is."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def build_app(
    config: Config, clock: Clock = utc_now, session: requests.Session | None = None, *, read_only: bool = False
) -> App:
    """Wire the pipeline for ``config``, upgrading the database schema if needed.

    ``read_only`` (commands that only look) changes nothing in the database: it
    is opened read-only, must be at the current schema, and no secret is made.
    """
    db = Database(config.database_url(), read_only=read_only)
    try:
        require_current(db) if read_only else migrate(db)
    except BaseException:
        db.dispose()  # nothing else will: there is no App to close
        raise
    session = session or http_session()
    env = templates.environment(config.templates.dir)
    entries = EntryRenderer(
        config.site,
        config.feeds.full_content,
        templates.load(env, "feeds/attribution.html"),
        templates.load(env, "feeds/attribution.txt"),
    )
    feeds = FeedBuilder(config, db, DocumentRenderer(config, entries))
    site = SiteBuilder(config, db, SiteRenderer(config, env))
    policies = {Channel.EMAIL: EMAIL_RETRY, Channel.WEBHOOK: WEBHOOK_RETRY, Channel.ACTIVITYPUB: ACTIVITYPUB_RETRY}
    outbox = Outbox(db, node_id(), policies, config.scheduler.lease_seconds)
    secrets = load_secrets(config, db)
    email = EmailRenderer(config, env)
    signer = Signer.from_settings(config.email.dkim) if config.email.dkim.enabled else None
    return_path = (
        ReturnPath(config.email.return_path, (secrets.current, *secrets.previous)) if config.email.return_path else None
    )
    composer = Composer(db, secrets, config.sender[1], signer, return_path)
    # One chunk per claim: the sender tops the wire up often, between short stretches of composing.
    claim = config.email.batch
    email_sender = EmailSender(db, outbox, composer, lambda: make_transport(config, clock, outbox), clock, claim)
    pushes = PushComposer(config, db, PartnerRenderer(config, entries.attribution_html, entries.attribution_text))
    webhook_sender = WebhookSender(db, outbox, pushes, clock, lambda: webhook_http.session(USER_AGENT))
    receiver = Receiver(config, db, secrets, clock)
    app = App(
        config, db, make_source(config, session), feeds, site, Pinger(db, session), session, outbox, secrets, email,
        email_composer=composer, email_sender=email_sender, webhook_sender=webhook_sender, receiver=receiver,
        clock=clock,
    )  # fmt: skip
    app.stages = [
        ConfirmationPlanner(db, email),  # before the mail stage: a confirmation goes out on the same tick
        EditionPlanner(config, db, email),
        EventPlanner(config, db),
        FediversePlanner(config, db),
        Reaper(outbox, config.heartbeat_seconds),
        # Partner pushes are few and quick: a long newsletter run does not hold them up.
        webhook_sender,
        ActivityPubSender(config, db, outbox, clock, http_session),
        email_sender,
        HearBack(receiver, mailboxes(receiver, config.inbound)),  # bounces, complaints and unsubscribes that came back
        Rollup(db, config.outbox.keep_days, config.outbox.remove_per_tick),  # counted by the hour; old ones go
    ]
    return app


def node_id() -> str:
    """This process's name among the nodes sharing a database: host, pid and a random tail."""
    import os
    import socket
    import uuid

    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
