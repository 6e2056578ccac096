"""RFC 5005 archives: sealed pages that never change, an open page, and a history a client can rebuild.

Each feed's log is cut into pages of ``feeds.items`` records. These tests read
the files the way a feed client does: start at the subscription document,
follow ``prev-archive`` until there is none (RFC 5005 §4), and keep the newest
version of every entry (Atom tombstones, RFC 6721, remove one).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

import feedparser
import pytest
from conftest import Site
from lxml import etree
from servers.http import refused_url
from validators import validate_atom, validate_json_feed, validate_rss

from syndicate.app import App
from syndicate.pipeline import build

ATOM = "http://www.w3.org/2005/Atom"
FH = "http://purl.org/syndication/history/1.0"
AT = "http://purl.org/atompub/tombstones/1.0"
BASE = "https://example.org/feeds/"
SUBSCRIPTIONS = {"atom": "atom.xml", "rss": "rss.xml", "json": "feed.json"}
PAGES = {"atom": "archive/atom-{}.xml", "rss": "archive/rss-{}.xml", "json": "archive/feed-{}.json"}
FORMATS = ("atom", "rss", "json")
VALIDATORS = {"atom": validate_atom, "rss": validate_rss, "json": validate_json_feed}


@dataclass(frozen=True)
class Page:
    """What a client sees in one feed document, whatever its format."""

    links: dict[str, str]
    archive: bool
    entries: list[tuple[str, datetime]]  # (id, updated), document order
    deleted: list[tuple[str, datetime]]  # (ref, when) of Atom tombstones
    updated: str


def read_page(data: bytes, fmt: str) -> Page:
    """A feed document as a client reads it: its paging links, archive flag and entries."""
    assert VALIDATORS[fmt](data) == []
    if fmt == "json":
        doc = json.loads(data)
        links = dict(doc["_syndicate"]["archive"])
        entries = [(item["id"], datetime.fromisoformat(item["date_modified"])) for item in doc["items"]]
        if "next_url" in doc:
            assert doc["next_url"] == links["prev-archive"]  # JSON Feed pages towards older items
        return Page(links, False, entries, [], doc["_syndicate"]["updated"])
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    root = etree.fromstring(data)
    head = root if fmt == "atom" else root.find("channel")
    links = {link.get("rel"): link.get("href") for link in head.findall(f"{{{ATOM}}}link")}
    archive = head.find(f"{{{FH}}}archive") is not None
    entries = [(e.id, datetime.fromisoformat(e.updated)) for e in parsed.entries]
    deleted = [(d.get("ref"), datetime.fromisoformat(d.get("when"))) for d in root.iter(f"{{{AT}}}deleted-entry")]
    updated = parsed.feed.get("updated", "")
    return Page(links, archive, entries, deleted, updated)


def local(feeds: Path, url: str) -> Path:
    """The file behind a feed URL."""
    assert url.startswith(BASE), url
    return feeds / unquote(url.removeprefix(BASE))


def history(feeds: Path, fmt: str, start: str | None = None) -> tuple[dict[str, datetime], list[str]]:
    """Rebuild a feed's full history as RFC 5005 §4 says a client does; also return the URLs visited.

    Follow prev-archive from the subscription document until there is none;
    of an id seen more than once keep the newest ``updated``; an Atom
    tombstone (RFC 6721) removes an entry it is not older than.
    """
    url = start or BASE + SUBSCRIPTIONS[fmt]
    entries: dict[str, datetime] = {}
    deleted: dict[str, datetime] = {}
    visited: list[str] = []
    while url and url not in visited:
        visited.append(url)
        page = read_page(local(feeds, url).read_bytes(), fmt)
        for ref, when in page.deleted:
            deleted[ref] = max(when, deleted.get(ref, when))
        for entry_id, updated in page.entries:
            entries[entry_id] = max(updated, entries.get(entry_id, updated))
        url = page.links.get("prev-archive", "")
    live = {i: updated for i, updated in entries.items() if i not in deleted or updated > deleted[i]}
    return live, visited


def tag(day: str, name: str) -> str:
    return f"tag:example.org,{day}:statements/{name}"


def publish(site: Site, count: int, start: int = 1) -> None:
    """Statements s01, s02, ... one a day from 1 October 2026."""
    for i in range(start, start + count):
        site.statement(f"s{i:02}.md", f"Statement {i}", f"2026-10-{i:02}T10:00:00+03:00", f"Text of statement {i}.")


def snapshot(feeds: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under ``feeds``: its bytes, mtime_ns and inode."""
    found = {}
    for path in sorted(feeds.rglob("*")):
        if path.is_file():
            stat = path.stat()
            found[path.relative_to(feeds).as_posix()] = (path.read_bytes(), stat.st_mtime_ns, stat.st_ino)
    return found


def ten_statements(site: Site, app: Callable[[Site], App]) -> Site:
    """``site`` with items = 3 and ten statements, built once."""
    site.items = 3
    publish(site, 10)
    build(app(site))
    return site


@pytest.fixture
def ten(site, make_app):
    """Ten statements on each database engine: for what the store decides (what to render again)."""
    return ten_statements(site, make_app)


@pytest.fixture
def ten_files(sqlite_site, make_app):
    """Ten statements on SQLite only: for reading the files of one build."""
    return ten_statements(sqlite_site, make_app)


def test_ten_statements_make_three_sealed_pages_and_an_open_one(ten_files):
    for fmt in FORMATS:
        pages = {n: read_page((ten_files.feeds / PAGES[fmt].format(n)).read_bytes(), fmt) for n in (1, 2, 3, 4)}
        assert not (ten_files.feeds / PAGES[fmt].format(5)).exists()
        for n, page in pages.items():
            ids = [entry_id for entry_id, _ in page.entries]
            assert ids == [tag(f"2026-10-{i:02}", f"s{i:02}") for i in range(min(3 * n, 10), 3 * n - 3, -1)]
            assert page.links["self"] == BASE + PAGES[fmt].format(n)
            assert page.links["current"] == BASE + SUBSCRIPTIONS[fmt]
            assert page.links.get("prev-archive") == (BASE + PAGES[fmt].format(n - 1) if n > 1 else None)
            assert page.links.get("next-archive") == (BASE + PAGES[fmt].format(n + 1) if n < 4 else None)
            if fmt != "json":
                assert page.archive == (n < 4), f"{fmt} page {n}"
        subscription = read_page((ten_files.feeds / SUBSCRIPTIONS[fmt]).read_bytes(), fmt)
        newest = [tag(f"2026-10-{i:02}", f"s{i:02}") for i in (10, 9, 8)]
        assert [entry_id for entry_id, _ in subscription.entries] == newest
        assert subscription.links["prev-archive"] == BASE + PAGES[fmt].format(3)
        assert "next-archive" not in subscription.links
        assert "current" not in subscription.links
        assert not subscription.archive


def test_following_prev_archive_reaches_every_statement(ten_files):
    for fmt in FORMATS:
        ids, visited = history(ten_files.feeds, fmt)
        assert set(ids) == {tag(f"2026-10-{i:02}", f"s{i:02}") for i in range(1, 11)}
        assert visited == [BASE + SUBSCRIPTIONS[fmt]] + [BASE + PAGES[fmt].format(n) for n in (3, 2, 1)]


def test_per_language_feed_is_archived_too(ten_files):
    en = ten_files.feeds / "lang" / "en"
    assert sorted(p.name for p in (en / "archive").iterdir()) == sorted(
        PAGES[fmt].format(n).split("/")[1] for fmt in PAGES for n in (1, 2, 3, 4)
    )
    for fmt in FORMATS:
        ids, _ = history(ten_files.feeds, fmt, BASE + "lang/en/" + SUBSCRIPTIONS[fmt])
        assert len(ids) == 10


def test_sealed_pages_never_change(ten, make_app):
    sealed = {p: v for p, v in snapshot(ten.feeds).items() if "archive/" in p and p.split("-")[-1][0] in "123"}
    assert len(sealed) == 3 * 3 * 2  # pages 1-3, three formats, site and lang/en feeds
    publish(ten, 4, start=11)
    ten.statement("s02.md", "Statement 2, corrected", "2026-10-02T10:00:00+03:00", "Text, corrected.")
    (ten.statements / "s05.md").unlink()
    ten.hubs = (refused_url("/hub"),)  # a setting that changes every document still open
    ten.clock.advance(days=1)
    report = build(make_app(ten))
    assert report.ingest.updated == ["s02"]
    assert report.ingest.retracted == ["s05"]
    assert "atom.xml" in report.feeds.written
    after = snapshot(ten.feeds)
    assert {p: after[p] for p in sealed} == sealed
    assert not set(sealed) & set(report.feeds.written)


def test_history_after_update_and_retraction(ten, make_app):
    ten.clock.advance(days=30)
    edited_at = ten.clock()
    ten.statement("s02.md", "Statement 2, corrected", "2026-10-02T10:00:00+03:00", "Text, corrected.")
    (ten.statements / "s05.md").unlink()
    build(make_app(ten))
    for fmt in FORMATS:
        newest = read_page((ten.feeds / SUBSCRIPTIONS[fmt]).read_bytes(), fmt)
        assert newest.entries[0] == (tag("2026-10-02", "s02"), edited_at)
        ids, _ = history(ten.feeds, fmt)
        assert ids[tag("2026-10-02", "s02")] == edited_at
    atom = read_page((ten.feeds / "atom.xml").read_bytes(), "atom")
    assert atom.deleted == [(tag("2026-10-05", "s05"), edited_at)]
    ids, _ = history(ten.feeds, "atom")
    assert tag("2026-10-05", "s05") not in ids
    assert len(ids) == 9


def test_updated_statement_reappears_in_newest_document_with_new_updated(ten, make_app):
    ten.statement(
        "s01.md", "Statement 1", "2026-10-01T10:00:00+03:00", "Text of statement 1, amended.",
        updated="2026-11-20T09:30:00+03:00",
    )  # fmt: skip
    build(make_app(ten))
    amended = datetime.fromisoformat("2026-11-20T09:30:00+03:00")
    for fmt in FORMATS:
        newest = read_page((ten.feeds / SUBSCRIPTIONS[fmt]).read_bytes(), fmt)
        assert newest.entries[0] == (tag("2026-10-01", "s01"), amended)
    parsed = feedparser.parse((ten.feeds / "atom.xml").read_bytes())
    first = parsed.entries[0]
    assert first.id == tag("2026-10-01", "s01")
    assert first.updated == "2026-11-20T09:30:00+03:00"
    assert first.published == "2026-10-01T10:00:00+03:00"
    assert "amended" in first.content[0].value
    assert parsed.feed.updated == "2026-11-20T09:30:00+03:00"


def test_page_that_fills_up_is_sealed_and_a_new_open_page_follows(site, make_app):
    site.items = 3
    publish(site, 8)
    build(make_app(site))
    assert not read_page((site.feeds / "archive/atom-3.xml").read_bytes(), "atom").archive
    publish(site, 2, start=9)
    build(make_app(site))
    page3 = read_page((site.feeds / "archive/atom-3.xml").read_bytes(), "atom")
    assert page3.archive
    assert [entry_id for entry_id, _ in page3.entries] == [tag(f"2026-10-0{i}", f"s0{i}") for i in (9, 8, 7)]
    assert page3.links["next-archive"] == BASE + "archive/atom-4.xml"
    page4 = read_page((site.feeds / "archive/atom-4.xml").read_bytes(), "atom")
    assert [entry_id for entry_id, _ in page4.entries] == [tag("2026-10-10", "s10")]
    for fmt in FORMATS:
        ids, _ = history(site.feeds, fmt)
        assert len(ids) == 10, fmt


def test_empty_open_page_carries_the_newest_real_change(sqlite_site, make_app):
    """With a multiple of ``items`` the open page is empty; its ``updated`` is still a real time."""
    sqlite_site.items = 3
    publish(sqlite_site, 9)
    build(make_app(sqlite_site))
    for fmt in FORMATS:
        page = read_page((sqlite_site.feeds / PAGES[fmt].format(4)).read_bytes(), fmt)
        assert page.entries == []
        assert page.links["prev-archive"] == BASE + PAGES[fmt].format(3)
    atom = etree.fromstring((sqlite_site.feeds / "archive/atom-4.xml").read_bytes())
    assert atom.findtext(f"{{{ATOM}}}updated") == "2026-10-09T10:00:00+03:00"
    data = json.loads((sqlite_site.feeds / "archive/feed-4.json").read_bytes())
    assert data["_syndicate"]["updated"] == "2026-10-09T10:00:00+03:00"
