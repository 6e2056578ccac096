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
from syndicate.render import templates
from syndicate.render.documents import DocumentRenderer
from syndicate.render.entries import EntryRenderer
from syndicate.render.feeds import FeedBuilder
from syndicate.render.websub import Pinger
from syndicate.sources import Source, make_source
from syndicate.store import Database, migrate

Clock = Callable[[], datetime]
USER_AGENT = f"syndicate/{__version__}"


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


class Stage(Protocol):
    """A step of the tick after ingest and feeds: planning or delivering (newsletters, partners)."""

    name: str

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
    pinger: Pinger
    session: requests.Session
    clock: Clock = utc_now
    stages: list[Stage] = field(default_factory=list)

    def close(self) -> None:
        """Release connections."""
        self.session.close()
        self.db.dispose()


def http_session() -> requests.Session:
    """An HTTP session that says who it is."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def build_app(config: Config, clock: Clock = utc_now, session: requests.Session | None = None) -> App:
    """Wire the pipeline for ``config``, upgrading the database schema if needed."""
    db = Database(config.database_url())
    migrate(db)
    session = session or http_session()
    env = templates.environment(config.templates.dir)
    entries = EntryRenderer(
        config.site,
        config.feeds.full_content,
        templates.load(env, "feeds/attribution.html"),
        templates.load(env, "feeds/attribution.txt"),
    )
    feeds = FeedBuilder(config, db, DocumentRenderer(config, entries))
    app = App(config, db, make_source(config, session), feeds, Pinger(db, session), session, clock)
    return app
