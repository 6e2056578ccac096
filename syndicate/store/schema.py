"""The tables, their version, and how an older database is upgraded in place.

A new database is created at the newest version in one step. An older one is
walked forward one numbered upgrade at a time, each in the same transaction
as its version bump, under an exclusive lock so two nodes starting together
upgrade once. A test checks that an upgraded database equals a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
)
from sqlalchemy.engine import Connection

from syndicate.errors import StoreError
from syndicate.store.db import Database, UTCDateTime

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
)


def content_columns(updated: Column[Any], after_updated: Sequence[Column[Any]] = ()) -> list[Column[Any]]:
    """The columns of what a reader sees (model.Content), in the order both tables have always had them.

    A statement's ``updated`` is what its file declares (nullable), a revision's
    when the change happened; each table passes its own, and what follows it.
    """
    return [
        Column("title", Text, nullable=False),
        Column("published", UTCDateTime, nullable=False),
        updated,
        *after_updated,
        Column("lang", String(35), nullable=False),
        Column("author", Text, nullable=False),
        Column("canonical_url", Text, nullable=False),
        Column("summary", Text, nullable=False),
        Column("body_html", Text, nullable=False),
        Column("body_text", Text, nullable=False),
        Column("categories", JSON, nullable=False),
    ]


# A column per stored field of model.Statement (a revision's, of model.Revision), of the same name,
# beside the store's own; tests/test_statement_fields.py fails when a field and its column part.
statements = Table(
    "statements",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("tag_id", String(600), nullable=False),
    Column("source_ref", String(1000), nullable=False, index=True),
    Column("fingerprint", String(200), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    *content_columns(updated=Column("updated", UTCDateTime), after_updated=[Column("entry_updated", UTCDateTime)]),
    Column("translation_of", String(200)),
    Column("revision", Integer, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
)

# One row per change to the public record, frozen as it was: feeds (and their
# never-changing archive pages) and partner events are rendered from these.
revisions = Table(
    "revisions",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("statement_id", String(200), nullable=False, index=True),
    Column("revision", Integer, nullable=False),
    Column("change", String(16), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("tag_id", String(600), nullable=False),
    *content_columns(updated=Column("updated", UTCDateTime, nullable=False)),
    UniqueConstraint("statement_id", "revision", name="uq_revisions_statement_revision"),
)

# What each written feed document was made from, so an unchanged one is not rendered again.
feed_documents = Table(
    "feed_documents",
    metadata,
    Column("path", String(500), primary_key=True),
    Column("inputs", String(64), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("written_at", UTCDateTime, nullable=False),
)

# What each written page of the site was made from; ``gone`` pages are notices served as 410.
site_pages = Table(
    "site_pages",
    metadata,
    Column("path", String(500), primary_key=True),
    Column("inputs", String(64), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("gone", Boolean, nullable=False),
    Column("written_at", UTCDateTime, nullable=False),
)

# The fediverse actor's key pairs: the newest unretired one signs and is published; a rotation retires the last.
actor_keys = Table(
    "actor_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("private_pem", Text, nullable=False),
    Column("public_pem", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime),
)

# Other servers' actors, as fetched: their inboxes and the key their signatures are checked with.
remote_actors = Table(
    "remote_actors",
    metadata,
    Column("id", String(500), primary_key=True),
    Column("inbox", String(500), nullable=False),
    Column("shared_inbox", String(500)),
    Column("key_id", String(500), nullable=False, index=True),
    Column("public_pem", Text, nullable=False),
    Column("fetched_at", UTCDateTime, nullable=False),
)

# Who follows the actor, and where their server takes deliveries; ``accepted_at`` once our Accept went out.
followers = Table(
    "followers",
    metadata,
    Column("actor_id", String(500), primary_key=True),
    Column("inbox", String(500), nullable=False),
    Column("shared_inbox", String(500)),
    Column("follow_id", String(500), nullable=False),
    Column("followed_at", UTCDateTime, nullable=False),
    Column("accepted_at", UTCDateTime),
)

# What the actor sends (an Accept, a Create ...): the bytes every inbox gets, planned in the outbox as "activity".
activities = Table(
    "activities",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Likes, boosts and replies the statements drew: one row per activity (so a repeat counts once), nothing more.
reactions = Table(
    "reactions",
    metadata,
    Column("activity_id", String(500), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("object", String(500), nullable=False),
    Column("actor_id", String(500), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

# WebSub publish pings still owed to a hub; one row per (hub, topic) coalesces repeats.
pings = Table(
    "pings",
    metadata,
    Column("hub", String(500), primary_key=True),
    Column("topic", String(500), primary_key=True),
    Column("due_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
)

# -- version 2: the mailing list and the outbox --

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("status", String(16), nullable=False, index=True),
    # Delimited and sorted (",en,tr,"), so planning can match them in SQL on either engine.
    Column("languages", String(400), nullable=False),
    Column("categories", Text, nullable=False),
    Column("frequency", String(16), nullable=False),
    Column("consent_at", UTCDateTime, nullable=False),
    Column("consent_method", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime),
    Column("unsubscribed_at", UTCDateTime),
    Column("changed_at", UTCDateTime, nullable=False),
    # Ids are never reused, even after a removal: deliveries name their subscriber by id.
    sqlite_autoincrement=True,
)

# Addresses that must never be mailed again (hard bounces, complaints).
suppressions = Table(
    "suppressions",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# A message rendered once (a statement, a digest, a confirmation) and its planned recipients.
editions = Table(
    "editions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(400), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("lang", String(35), nullable=False),
    Column("statement_id", String(200)),
    Column("subject", Text, nullable=False),
    Column("message", LargeBinary, nullable=False),
    Column("recipients", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # The statements a digest holds (the newsletter archive withdraws it with any of them); null before 10.
    Column("holds", JSON),
)

# The outbox: one row per (edition or event) x channel x target, never planned twice.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("channel", String(16), nullable=False),
    Column("source_kind", String(16), nullable=False),
    Column("source_id", Integer, nullable=False),
    Column("target", String(320), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("lease_token", String(36)),
    Column("lease_until", UTCDateTime),
    Column("leased_by", String(200)),
    Column("handoff_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("last_error", Text),
    UniqueConstraint("source_kind", "source_id", "channel", "target", name="uq_deliveries_source_target"),
    # Claims and the reaper both look rows up by (channel, state): one index serves both.
    Index("ix_deliveries_claim", "channel", "state", "due_at"),
)

# -- version 3: partner events and partner state --

# One row per revision pushed to partners (key "revision:<seq>"), or per replay an operator asked for.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(400), nullable=False, unique=True),
    Column("seq", Integer, nullable=False, index=True),
    Column("statement_id", String(200), nullable=False, index=True),
    Column("change", String(16), nullable=False),
    Column("replay_of", Integer),
    Column("created_at", UTCDateTime, nullable=False),
)

# What the deliveries alone cannot say about a partner: disabled (410 Gone), and its recent health.
partner_state = Table(
    "partner_state",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("disabled_at", UTCDateTime),
    Column("disabled_reason", Text),
    Column("last_success_at", UTCDateTime),
    Column("failing_since", UTCDateTime),
    Column("last_error", Text),
)

# -- version 4: several nodes on one database --

# Every process running the daemon, with its last heartbeat: `status` lists the live ones.
nodes = Table(
    "nodes",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    Column("stopped_at", UTCDateTime),
)

# -- version 5: subscribe requests wait here for the tick --

# A subscribe request from the web form, as it came: the request only inserts (the same work for
# every address, so its answer and its time tell nothing); the tick's planning stage acts on it.
subscribe_requests = Table(
    "subscribe_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False),
    Column("languages", String(400), nullable=False),
    Column("categories", Text, nullable=False),
    Column("frequency", String(16), nullable=False),
    Column("mail_lang", String(35), nullable=False),
    Column("consent_method", Text, nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
)

# -- version 6: several mail relays, each with its quota --

# Messages handed to each relay, per hour: a relay's daily limit is the sum over the last 24 hours,
# counted here so that it holds across restarts and nodes.
relay_usage = Table(
    "relay_usage",
    metadata,
    Column("relay", String(100), primary_key=True),
    Column("hour", UTCDateTime, primary_key=True),
    Column("sent", Integer, nullable=False),
)

# How each node last saw each relay: up, down, throttled or out of quota, and its recent rate.
relay_state = Table(
    "relay_state",
    metadata,
    Column("relay", String(100), primary_key=True),
    Column("node", String(200), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    Column("until", UTCDateTime),
    Column("rate", Float, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# -- version 7: hearing back --

# Every report that came back (a DSN, a feedback report, an auto-reply, a mailto unsubscribe, a
# provider's event), stored raw before anything is made of it; ``kind`` is null until it is processed.
inbound = Table(
    "inbound",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("digest", String(64), nullable=False, unique=True),  # the same report twice is stored once
    Column("source", String(40), nullable=False),  # smtp, lmtp, maildir, imap, or a provider's name
    Column("received_at", UTCDateTime, nullable=False),
    Column("envelope_from", Text, nullable=False),
    Column("envelope_to", Text, nullable=False),
    Column("kind", String(16), index=True),
    Column("delivery_id", BigInteger),
    Column("subscriber_id", Integer),
    Column("address", String(320)),
    Column("status", String(16)),
    Column("detail", Text),
    Column("action", Text),  # what it changed, or why nothing
    Column("processed_at", UTCDateTime),
    Index("ix_inbound_subscriber", "subscriber_id", "kind", "received_at"),
    Index("ix_inbound_delivery", "delivery_id"),
)

# Each report's bytes as they came, apart from what is made of them: recording a report's kind and
# action then rewrites a small row, not its whole message.
inbound_raw = Table(
    "inbound_raw",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),  # the report's id in inbound
    Column("raw", LargeBinary, nullable=False),
)

# What changed a subscriber's standing, and why: the report behind a bounce, complaint or unsubscribe.
subscriber_changes = Table(
    "subscriber_changes",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("subscriber_id", Integer, nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("cause", Text, nullable=False),
    Column("report_id", BigInteger),
    Column("delivery_id", BigInteger),  # the mail the change followed (the newest to them then): its edition
    Column("at", UTCDateTime, nullable=False),
)

# A subscriber's deliveries, found without a scan (a soft bounce asks for its last success).
deliveries_by_target = Index("ix_deliveries_target", deliveries.c.target)

# -- version 9: the operator's console --

# Who may use the console: an Argon2id hash of the password, an optional TOTP secret, the lockout.
admin_users = Table(
    "admin_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # admin (acts) or viewer (sees)
    Column("password_hash", Text, nullable=False),
    Column("totp_secret", String(64)),  # base32; none: no second factor
    Column("totp_last_step", BigInteger),  # the last time step a code was taken for: a code works once
    Column("failed_logins", Integer, nullable=False),
    Column("locked_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("password_changed_at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)

# A logged-in browser: only the SHA-256 of the cookie's value is kept, so a copy of the database logs no one in.
admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("user_id", Integer, nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("client", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

# Bearer tokens for the JSON API; like sessions, kept as their SHA-256.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("key", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    sqlite_autoincrement=True,
)

# Failed logins by client address, for the per-client lockout (shared by every process on the database).
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("client", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_login_failures_client", "client", "at"),
)

# Settled deliveries counted per hour they settled in (UTC, "YYYY-MM-DD HH"), channel, source and state:
# kept by the tick from the deliveries that settled since it last looked, so the console counts
# hours and editions from a few rows, not from the outbox (and, once old deliveries are folded
# away, still does).
delivery_rollups = Table(
    "delivery_rollups",
    metadata,
    Column("hour", String(13), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("source_kind", String(16), primary_key=True),
    Column("source_id", Integer, primary_key=True),
    Column("state", String(16), primary_key=True),
    Column("count", BigInteger, nullable=False),
)
deliveries_by_finish = Index("ix_deliveries_finished", deliveries.c.finished_at)
subscribers_by_created = Index("ix_subscribers_created", subscribers.c.created_at)
subscribers_by_confirmed = Index("ix_subscribers_confirmed", subscribers.c.confirmed_at)
subscribers_by_unsubscribed = Index("ix_subscribers_unsubscribed", subscribers.c.unsubscribed_at)
changes_by_time = Index("ix_subscriber_changes_at", subscriber_changes.c.at)

# Who did what, when, from where: every login and every action of the console, the API and `admin` commands.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", String(80), nullable=False),
    Column("action", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("client", String(64), nullable=False),
)

Upgrade = Callable[[Connection], None]


class _Create:
    """An upgrade that adds tables (kept as data, so a test can rebuild any older version)."""

    def __init__(self, *tables: Table) -> None:
        self.tables = tables

    def __call__(self, conn: Connection) -> None:
        for table in self.tables:
            table.create(conn)


def _create(*tables: Table) -> _Create:
    return _Create(*tables)


class _Steps:
    """An upgrade made of several steps, run in order in the same transaction."""

    def __init__(self, *steps: Upgrade) -> None:
        self.steps = steps
        self.tables = tuple(t for step in steps for t in getattr(step, "tables", ()))

    def __call__(self, conn: Connection) -> None:
        for step in self.steps:
            step(conn)


def _clean_stored_text(conn: Connection) -> None:
    # The statements' owner does it; imported here, as the store's modules import this one.
    from syndicate.store.statements import clean_stored_text

    clean_stored_text(conn)


def _index_deliveries_by_target(conn: Connection) -> None:
    # IF NOT EXISTS: a database built for an upgrade test has it from its deliveries table already.
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_deliveries_target ON deliveries (target)")


def _changes_name_their_delivery(conn: Connection) -> None:
    # A database built for an upgrade test from today's tables has the column already.
    if "delivery_id" not in {c["name"] for c in inspect(conn).get_columns("subscriber_changes")}:
        conn.exec_driver_sql("ALTER TABLE subscriber_changes ADD COLUMN delivery_id BIGINT")


def _console_indexes(conn: Connection) -> None:
    # IF NOT EXISTS: a database built for an upgrade test from today's tables has them already.
    for index in (deliveries_by_finish, subscribers_by_created, subscribers_by_confirmed, subscribers_by_unsubscribed,
                  changes_by_time):  # fmt: skip
        index.create(conn, checkfirst=True)


def _editions_say_what_they_hold(conn: Connection) -> None:
    # A database built for an upgrade test from today's tables has the column already.
    if "holds" not in {c["name"] for c in inspect(conn).get_columns("editions")}:
        conn.exec_driver_sql("ALTER TABLE editions ADD COLUMN holds JSON")


def tables_at(version: int) -> list[Table]:
    """The tables a database at ``version`` has (for upgrade tests)."""
    later = {t for v, upgrade in UPGRADES.items() if v >= version for t in getattr(upgrade, "tables", ())}
    return [t for t in metadata.sorted_tables if t not in later]


# UPGRADES[n] takes a database from version n to n + 1.
UPGRADES: dict[int, Upgrade] = {
    1: _create(subscribers, suppressions, editions, deliveries),
    2: _create(events, partner_state),
    3: _create(nodes),
    4: _Steps(_create(subscribe_requests), _clean_stored_text),
    5: _create(relay_usage, relay_state),
    6: _Steps(_create(inbound, inbound_raw, subscriber_changes), _index_deliveries_by_target),
    7: _changes_name_their_delivery,
    8: _Steps(
        _create(admin_users, admin_sessions, api_tokens, login_failures, audit_log, delivery_rollups), _console_indexes
    ),
    9: _Steps(_create(site_pages), _editions_say_what_they_hold),
    10: _create(actor_keys, remote_actors, followers, reactions, activities),
}
VERSION = 11


def migrate(db: Database) -> int:
    """Bring the database to :data:`VERSION`; return the version it was at."""
    with db.exclusive("syndicate-schema") as conn:
        found = current_version(conn)
        if found > VERSION:
            raise StoreError(
                f"database {db.shown} is at schema version "
                f"{found}, newer than this syndicate understands ({VERSION}); upgrade syndicate"
            )
        if found == 0:
            metadata.create_all(conn)
        else:
            for version in range(found, VERSION):
                UPGRADES[version](conn)
        _set_version(conn, VERSION)
    return found


def require_current(db: Database) -> None:
    """For commands that only look: the database must be at :data:`VERSION` already (nothing is upgraded)."""
    if db.dialect == "sqlite" and not db.exists():
        raise StoreError(f"database {db.shown} does not exist yet: run `syndicate once` first")
    with db.read() as conn:
        found = current_version(conn)
    if found == VERSION:
        return
    if found == 0:
        raise StoreError(f"database {db.shown} holds nothing yet: run `syndicate once` first")
    advice = "upgrade syndicate" if found > VERSION else "run `syndicate once` (or start the daemon) to upgrade it"
    raise StoreError(f"database {db.shown} is at schema version {found}, this syndicate uses {VERSION}: {advice}")


def current_version(conn: Connection) -> int:
    """The schema version recorded in the database; 0 for an empty one."""
    if not inspect(conn).has_table("meta"):
        return 0
    value = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    return int(value) if value is not None else 0


def _set_version(conn: Connection, version: int) -> None:
    conn.execute(meta.delete().where(meta.c.key == "schema_version"))
    conn.execute(meta.insert().values(key="schema_version", value=str(version)))
