"""WebSub: every feed names its hubs, and each hub hears of every changed feed (retried until it listens).

The hubs are real HTTP servers on loopback (``servers.http.HubServer``); the
pings they record are the ones syndicate sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from servers.http import HubServer, Reply
from validators import validate_atom, validate_json_feed, validate_rss

from syndicate.pipeline import build
from syndicate.render.websub import BACKOFF

pytestmark = pytest.mark.timeout(60)

ATOM = "http://www.w3.org/2005/Atom"
BASE = "https://example.org/feeds/"
SUBSCRIPTIONS = ("atom.xml", "rss.xml", "feed.json")


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        yield server
    assert server.errors == []


@pytest.fixture
def second_hub() -> Iterator[HubServer]:
    with HubServer("/publish") as server:
        yield server
    assert server.errors == []


def self_link(path: Path) -> str:
    """The ``rel=self`` URL a feed file gives for itself."""
    if path.suffix == ".json":
        return str(json.loads(path.read_bytes())["feed_url"])
    root = etree.fromstring(path.read_bytes())
    head = root if root.tag == f"{{{ATOM}}}feed" else root.find("channel")
    (href,) = [link.get("href") for link in head.findall(f"{{{ATOM}}}link") if link.get("rel") == "self"]
    return str(href)


def hub_links(path: Path) -> list[str]:
    """The hubs a feed file names: Atom and RSS ``link rel=hub``, JSON Feed ``hubs``."""
    data = path.read_bytes()
    if path.suffix == ".json":
        assert validate_json_feed(data) == []
        feed = json.loads(data)
        assert {hub["type"] for hub in feed["hubs"]} == {"WebSub"}
        return [hub["url"] for hub in feed["hubs"]]
    root = etree.fromstring(data)
    if root.tag == f"{{{ATOM}}}feed":
        assert validate_atom(data) == []
        head = root
    else:
        assert validate_rss(data) == []
        head = root.find("channel")
    return [link.get("href") for link in head.findall(f"{{{ATOM}}}link") if link.get("rel") == "hub"]


def subscriptions(feeds: Path) -> list[Path]:
    return sorted(p for p in feeds.rglob("*") if p.name in SUBSCRIPTIONS)


def test_every_document_names_every_hub(sqlite_site, make_app, hub, second_hub):
    sqlite_site.hubs = (hub.url, second_hub.url)
    sqlite_site.items = 2
    for day in range(1, 6):
        sqlite_site.statement(f"s{day}.md", f"S{day}", f"2026-11-0{day}T10:00:00+03:00", categories=["News"])
    build(make_app(sqlite_site))
    files = sorted(p for p in sqlite_site.feeds.rglob("*") if p.is_file())
    assert any("archive/" in p.as_posix() for p in files)
    for path in files:
        assert hub_links(path) == [hub.url, second_hub.url], path


def test_each_hub_is_pinged_for_each_changed_feed(site, make_app, hub, second_hub):
    site.hubs = (hub.url, second_hub.url)
    site.statement("a.md", "A", "2026-11-01T10:00:00+03:00", categories=["News"])
    site.statement("b.md", "B", "2026-11-02T10:00:00+03:00", lang="tr", categories=["Haberler"])
    report = build(make_app(site))
    topics = sorted(self_link(p) for p in subscriptions(site.feeds))
    assert len(topics) == 3 * 5  # site, lang/en, lang/tr, category/news, category/haberler
    assert sorted(report.feeds.changed_topics) == topics
    assert report.pings == (2 * len(topics), 0)
    for server in (hub, second_hub):
        assert sorted(server.pings) == topics
        for request in server.requests:
            assert request.method == "POST"
            form = request.form()
            assert sorted(form) == ["hub.mode", "hub.topic", "hub.url"]
            assert form["hub.mode"] == ["publish"]
            assert form["hub.url"][0] in topics
            assert form["hub.topic"] == form["hub.url"]
            assert request.status == 204

    site.clock.advance(minutes=5)
    site.statement("c.md", "C", "2026-11-26T14:00:00+03:00", categories=["News"])
    report = build(make_app(site))
    changed = sorted(
        BASE + f"{folder}{name}" for folder in ("", "lang/en/", "category/news/") for name in SUBSCRIPTIONS
    )
    assert sorted(report.feeds.changed_topics) == changed
    for server in (hub, second_hub):
        assert sorted(server.pings[len(topics) :]) == changed

    site.clock.advance(hours=1)
    report = build(make_app(site))
    assert report.pings == (0, 0)
    assert len(hub.requests) == len(second_hub.requests) == len(topics) + len(changed)


def test_failing_hub_is_retried_after_backoff(site, make_app, hub):
    site.hubs = (hub.url,)
    site.statement("a.md", "A", "2026-11-01T10:00:00+03:00")
    hub.fail_first(6, status=503)  # site and lang/en feeds, three formats each
    report = build(make_app(site))
    assert report.pings == (0, 6)
    assert hub.pings == []
    assert [r.status for r in hub.requests] == [503] * 6

    site.clock.advance(seconds=BACKOFF[0] - 1)
    assert build(make_app(site)).pings == (0, 0)  # not due yet, and nothing changed
    assert len(hub.requests) == 6

    site.clock.advance(seconds=1)
    report = build(make_app(site))  # a new process: the owed pings were kept in the store
    assert report.feeds.written == []
    assert report.pings == (6, 0)
    assert sorted(hub.pings) == sorted(self_link(p) for p in subscriptions(site.feeds))

    site.clock.advance(days=1)
    assert build(make_app(site)).pings == (0, 0)
    assert len(hub.requests) == 12


def test_hub_that_keeps_failing_backs_off_further(sqlite_site, make_app, hub):
    sqlite_site.hubs = (hub.url,)
    sqlite_site.statement("a.md", "A", "2026-11-01T10:00:00+03:00")
    hub.fail_first(12, drop=True)
    build(make_app(sqlite_site))
    sqlite_site.clock.advance(seconds=BACKOFF[0])
    assert build(make_app(sqlite_site)).pings == (0, 6)
    sqlite_site.clock.advance(seconds=BACKOFF[1] - 1)
    assert build(make_app(sqlite_site)).pings == (0, 0)
    sqlite_site.clock.advance(seconds=1)
    assert build(make_app(sqlite_site)).pings == (6, 0)
    assert len(hub.pings) == 6


def test_feed_changing_while_hub_is_down_costs_one_ping(site, make_app, hub):
    site.hubs = (hub.url,)
    site.statement("a.md", "A", "2026-11-01T10:00:00+03:00")
    hub.fail_first(6)
    build(make_app(site))
    site.clock.advance(seconds=5)
    site.statement("b.md", "B", "2026-11-02T10:00:00+03:00")
    report = build(make_app(site))  # the feeds changed again: they are owed a ping now, once each
    assert report.pings == (6, 0)
    assert sorted(hub.pings) == sorted(self_link(p) for p in subscriptions(site.feeds))
    site.clock.advance(seconds=BACKOFF[0])
    assert build(make_app(site)).pings == (0, 0)


def test_restored_file_is_no_news_for_hubs(sqlite_site, make_app, hub):
    sqlite_site.hubs = (hub.url,)
    sqlite_site.statement("a.md", "A", "2026-11-01T10:00:00+03:00")
    build(make_app(sqlite_site))
    pinged = len(hub.requests)
    (sqlite_site.feeds / "atom.xml").unlink()
    report = build(make_app(sqlite_site))
    assert report.feeds.written == ["atom.xml"]
    assert report.feeds.changed_topics == []
    assert len(hub.requests) == pinged


def test_feed_changing_while_its_ping_is_in_flight_is_pinged_again(site, make_app, hub):
    """Two nodes: one pings while the other changes the feed; the newer change is still owed a ping."""
    site.hubs = (hub.url,)
    site.statement("a.md", "A", "2026-11-01T10:00:00+03:00")
    build(make_app(site), stop=lambda: True)  # feeds written, pings owed, none sent yet
    hub.queue(Reply.hang())
    pinger = make_app(site)
    results: list[tuple[int, int]] = []
    sender = threading.Thread(target=lambda: results.append(pinger.pinger.send_due(site.clock())))
    sender.start()
    try:
        hub.wait_until(lambda: hub.hanging == 1)
        site.clock.advance(seconds=1)
        site.statement("b.md", "B", "2026-11-02T10:00:00+03:00")
        assert len(build(make_app(site), stop=lambda: True).feeds.changed_topics) == 6
    finally:
        hub.release()
        sender.join(timeout=10)
    assert results == [(6, 0)]
    report = build(make_app(site))
    assert report.pings == (6, 0)  # owed again since the feeds changed after they were read
    assert sorted(hub.pings[6:]) == sorted(self_link(p) for p in subscriptions(site.feeds))
    assert build(make_app(site)).pings == (0, 0)
