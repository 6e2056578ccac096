"""Shared fixtures: a site folder, a database on each engine, a fixed clock.

Every test that takes ``db_url`` runs twice: on SQLite and on PostgreSQL
(127.0.0.1:5432, database ``test``, a fresh schema per test). PostgreSQL tests
are skipped when no server answers, unless ``SYNDICATE_REQUIRE_PG=1`` (set by
``.ci/run``) makes them required.
"""

from __future__ import annotations

import os
import shutil
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from syndicate.app import App, build_app
from syndicate.config import Config, load

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("SYNDICATE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("SYNDICATE_REQUIRE_PG") == "1"
SAVED_BEFORE_NS = 500_000_000  # see Site.write

BASE_CONFIG = """
[site]
title = "Example Org"
url = "https://example.org"
language = "en"
timezone = "Europe/Istanbul"
rights = "All rights reserved; quote only with an active link."

[feeds]
base_url = "https://example.org/feeds/"
items = {items}
hubs = {hubs}
"""


def _pg_available() -> bool:
    try:
        engine = sqlalchemy.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_available() -> bool:
    """Whether PostgreSQL answers; CI makes its absence a failure."""
    available = _pg_available()
    if not available and REQUIRE_PG:
        pytest.fail(f"PostgreSQL is required (SYNDICATE_REQUIRE_PG=1) but {PG_URL} does not answer")
    return available


@pytest.fixture
def pg_url(pg_available: bool) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    if not pg_available:
        pytest.skip(f"no PostgreSQL server answers at {PG_URL}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL on each engine in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'syndicate.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move forward by ``timedelta(**delta)``; return the new time."""
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    """A clock standing at 2026-11-26 12:00 UTC."""
    return Clock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))


@dataclass
class Site:
    """A syndicate site in a temporary folder: config, statements, templates, database."""

    root: Path
    db_url: str
    clock: Clock
    items: int = 50
    hubs: tuple[str, ...] = ()
    extra: str = ""

    @property
    def statements(self) -> Path:
        return self.root / "statements"

    @property
    def feeds(self) -> Path:
        return self.root / "feeds"

    def write(self, name: str, text: str) -> Path:
        """Write a statement file (dedented) and return its path.

        The file is dated half a second back, as if saved a moment before the build: past the time
        the files source lets a file being written settle (tests of that write files of their own),
        and still recent enough to be read again next time.
        """
        path = self.statements / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        saved = time.time_ns() - SAVED_BEFORE_NS
        os.utime(path, ns=(saved, saved))
        return path

    def statement(self, name: str, title: str, published: str, body: str = "Body text.", **meta: Any) -> Path:
        """Write a TOML-front-matter statement from keyword fields."""
        lines = [f"title = {_toml(title)}", f"published = {published}"]
        lines += [f"{key} = {_toml(value)}" for key, value in meta.items()]
        return self.write(name, "+++\n" + "\n".join(lines) + "\n+++\n\n" + body + "\n")

    def config_text(self) -> str:
        hubs = "[" + ", ".join(_toml(h) for h in self.hubs) + "]"
        text = BASE_CONFIG.format(items=self.items, hubs=hubs)
        return text + f'\n[database]\nurl = "{self.db_url}"\n' + textwrap.dedent(self.extra)

    def config(self) -> Config:
        (self.root / "config.toml").write_text(self.config_text(), encoding="utf-8")
        return load(self.root / "config.toml")

    def app(self, **options: Any) -> App:
        """A freshly wired app for this site (as a new process would build it)."""
        return build_app(self.config(), clock=self.clock, **options)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


@pytest.fixture
def site(tmp_path: Path, db_url: str, clock: Clock) -> Site:
    """An empty site on each database engine, with the project's templates."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "statements").mkdir()
    shutil.copytree(ROOT / "templates", root / "templates")
    return Site(root, db_url, clock)


@pytest.fixture
def sqlite_site(tmp_path: Path, clock: Clock) -> Site:
    """An empty site on SQLite only (for tests about files, not databases)."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "statements").mkdir()
    shutil.copytree(ROOT / "templates", root / "templates")
    return Site(root, f"sqlite:///{root / 'syndicate.db'}", clock)


@pytest.fixture
def make_app() -> Iterator[Callable[[Site], App]]:
    """Build apps for a site and close them all at the end of the test."""
    apps: list[App] = []

    def make(site: Site, **options: Any) -> App:
        app = site.app(**options)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()
