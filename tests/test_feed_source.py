"""The ``feed`` source against a real HTTP server on loopback.

What the store keeps across fetches is checked on each engine; how one feed
document is read (sanitising, encodings, malformed bodies) on SQLite only.

The CMS's feed is untrusted: its HTML is sanitised, and a feed that is down or
malformed leaves what was last ingested as it was, with a problem reported.
"""

from __future__ import annotations

import functools
import json
import re
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

import pytest
from servers.http import LoopbackHTTPServer, Reply, refused_url
from sqlalchemy import func, select

from syndicate.app import App
from syndicate.errors import SourceError
from syndicate.ingest import IngestReport
from syndicate.ingest import ingest as run_ingest
from syndicate.sources.feed import statement_id
from syndicate.sources.fetch import origin
from syndicate.store.schema import revisions, statements

CMS = "https://cms.example.org/news"
RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}
ATOM_TYPE = {"Content-Type": "application/atom+xml; charset=utf-8"}


# -- feeds as the CMS would write them --


def rss_item(slug: str, title: str, date: str, html: str, *categories: str) -> str:
    tags = "".join(f"<category>{escape(c)}</category>" for c in categories)
    return (
        f"<item><title>{escape(title)}</title><link>{CMS}/{slug}</link><guid>{CMS}/{slug}</guid>"
        f"<pubDate>{date}</pubDate><dc:creator>Basın Bürosu</dc:creator>{tags}"
        f"<description>{escape(html)}</description></item>"
    )


def rss(*items: str, language: str = "tr") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>CMS</title><link>{CMS}</link><description>News</description><language>{language}</language>"
        + "".join(items)
        + "</channel></rss>\n"
    ).encode()


HARVEST = rss_item(
    "harvest", "Hasat açıklaması", "Thu, 26 Nov 2026 10:00:00 +0300", "<p>Hasat <b>iyi</b> geçti.</p>", "Basın"
)
RAIN = rss_item("rain", "Yağmur", "Wed, 25 Nov 2026 09:00:00 +0300", "<p>Yağmur yağdı.</p>")
SNOW = rss_item("snow", "Kar", "Thu, 26 Nov 2026 11:00:00 +0300", "<p>Kar yağdı.</p>")


ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="ru">
  <title>CMS</title><id>urn:cms</id><updated>2026-11-26T09:00:00Z</updated>
  <author><name>Press office</name></author>
  <entry>
    <id>urn:cms:statement:1</id>
    <title type="html">&lt;b&gt;Заявление&lt;/b&gt; 1</title>
    <link href="https://cms.example.org/ru/1"/>
    <published>2026-11-25T10:00:00+03:00</published>
    <updated>2026-11-25T12:00:00+03:00</updated>
    <category term="News"/>
    <content type="text">Plain &lt;text&gt; &amp; more</content>
  </entry>
  <entry xml:lang="en">
    <id>urn:cms:statement:2</id>
    <title>Statement 2</title>
    <link href="https://cms.example.org/en/2"/>
    <updated>2026-11-24T10:00:00Z</updated>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>XHTML <em>body</em></p></div></content>
  </entry>
</feed>"""


# -- fixtures and helpers --


@pytest.fixture
def cms() -> Iterator[LoopbackHTTPServer]:
    """The CMS: a real HTTP server on loopback, serving whatever feed the test gives it."""
    with LoopbackHTTPServer("/feed.xml") as server:
        yield server


def serve(server: LoopbackHTTPServer, body: bytes, headers: dict[str, str] = RSS_TYPE) -> None:
    """From now on, the server answers every request with this feed."""
    server.set_default(Reply.status(200, headers, body))


def feed_app(make_app: Any, site: Any, url: str, **source: Any) -> App:
    """An app reading the feed at ``url``; ``source`` sets more of ``[source]`` (max_feed_bytes=...)."""
    settings = {"type": "feed", "url": url, "timeout_seconds": 2, **source}
    site.extra = "[source]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    app: App = make_app(site)
    return app


def ingest(app: App) -> IngestReport:
    """One ingest at the app's clock, as a build runs it (without rendering feeds)."""
    return run_ingest(app.source, app.db, app.config.site, app.clock())


def sid(slug: str) -> str:
    return statement_id(f"{CMS}/{slug}")


def stored(app: App, slug: str) -> Any:
    with app.db.read() as conn:
        return conn.execute(select(statements).where(statements.c.id == sid(slug))).one()


def stored_by_url(app: App, url: str) -> Any:
    with app.db.read() as conn:
        return conn.execute(select(statements).where(statements.c.canonical_url == url)).one()


def states(app: App) -> dict[str, str]:
    with app.db.read() as conn:
        return {r.id: r.state for r in conn.execute(select(statements.c.id, statements.c.state))}


def revision_count(app: App) -> int:
    with app.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(revisions)).scalar_one())


def only_problem(report: IngestReport) -> str:
    """The one problem a failed fetch reports, as the operator reads it."""
    assert (report.published, report.updated, report.retracted) == ([], [], [])
    [problem] = report.problems
    return str(problem)


# -- reading RSS and Atom --


def test_rss_feed_is_ingested(site, make_app, cms):
    serve(cms, rss(HARVEST, RAIN))
    app = feed_app(make_app, site, cms.url)

    report = ingest(app)
    assert sorted(report.published) == sorted([sid("harvest"), sid("rain")])
    assert report.problems == []
    row = stored(app, "harvest")
    assert row.title == "Hasat açıklaması"
    assert row.canonical_url == f"{CMS}/harvest"
    assert row.published == datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    assert row.lang == "tr"
    assert row.author == "Basın Bürosu"
    assert row.categories == ["Basın"]
    assert row.body_html == "<p>Hasat <b>iyi</b> geçti.</p>"
    assert row.body_text == "Hasat iyi geçti."
    assert [r.path for r in cms.requests] == ["/feed.xml"]


def test_feed_ids_are_readable_and_stable():
    assert sid("harvest").startswith("harvest-")
    assert sid("harvest") == statement_id(f"{CMS}/harvest")
    assert sid("harvest") != sid("rain")


def test_atom_feed_is_ingested(sqlite_site, make_app, cms):
    serve(cms, ATOM.encode(), ATOM_TYPE)
    app = feed_app(make_app, sqlite_site, cms.url)

    assert len(ingest(app).published) == 2
    first = stored_by_url(app, "https://cms.example.org/ru/1")
    assert first.title == "Заявление 1"
    assert first.lang == "ru"
    assert first.published == datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    assert first.updated == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert first.author == "Press office"
    assert first.categories == ["News"]
    assert first.body_html == "<p>Plain &lt;text&gt; &amp; more</p>"
    assert first.body_text == "Plain <text> & more"
    second = stored_by_url(app, "https://cms.example.org/en/2")
    assert second.lang == "en"
    assert second.published == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert second.body_html == "<p>XHTML <em>body</em></p>"


def test_relative_links_are_made_absolute_against_the_feeds_url(sqlite_site, make_app, cms):
    item = (
        "<item><title>Relative</title><link>/news/relative</link><guid>/news/relative</guid>"
        "<pubDate>Thu, 26 Nov 2026 10:00:00 +0300</pubDate>"
        "<description>&lt;a href='/more'&gt;more&lt;/a&gt;</description></item>"
    )
    serve(cms, rss(item))
    app = feed_app(make_app, sqlite_site, cms.url)
    ingest(app)

    row = stored_by_url(app, cms.url_for("/news/relative"))
    assert f'<a href="{cms.url_for("/more")}"' in row.body_html


def test_feed_declared_in_another_encoding_is_read(sqlite_site, make_app, cms):
    body = rss(HARVEST).replace(b'encoding="utf-8"', b'encoding="iso-8859-9"').decode().encode("iso-8859-9")
    serve(cms, body, {"Content-Type": "application/rss+xml"})
    app = feed_app(make_app, sqlite_site, cms.url)
    ingest(app)
    assert stored(app, "harvest").title == "Hasat açıklaması"


def test_script_and_event_handlers_are_stripped(sqlite_site, make_app, cms):
    hostile = (
        '<p onclick="steal()">Read <a href="https://cms.example.org/more" onmouseover="steal()">more</a>.</p>'
        "<script>alert('x')</script><img src=x onerror=steal()>"
        '<p style="x" class="y">Tail</p><iframe src="https://evil.example"></iframe>'
    )
    serve(cms, rss(rss_item("hostile", "Hostile", "Thu, 26 Nov 2026 10:00:00 +0300", hostile)))
    app = feed_app(make_app, sqlite_site, cms.url)
    ingest(app)

    body = stored(app, "hostile").body_html
    for banned in ("<script", "alert", "onclick", "onmouseover", "onerror", "steal", "<iframe", "evil.example"):
        assert banned not in body, banned
    assert '<a href="https://cms.example.org/more"' in body
    assert "Tail" in body
    assert "alert" not in stored(app, "hostile").body_text


def test_entry_missing_from_a_later_fetch_is_not_retracted(site, make_app, cms):
    serve(cms, rss(HARVEST, RAIN))
    app = feed_app(make_app, site, cms.url)
    ingest(app)
    serve(cms, rss(SNOW, HARVEST))

    report = ingest(app)
    assert (report.published, report.retracted) == ([sid("snow")], [])
    assert set(states(app).values()) == {"published"}
    assert len(states(app)) == 3


def test_second_fetch_of_the_same_feed_records_nothing(site, make_app, cms):
    serve(cms, rss(HARVEST, RAIN))
    app = feed_app(make_app, site, cms.url)
    ingest(app)
    count = revision_count(app)

    assert ingest(app) == IngestReport()
    assert revision_count(app) == count
    assert len(cms.requests) == 2


def test_changed_entry_is_an_update(site, make_app, cms):
    serve(cms, rss(HARVEST))
    app = feed_app(make_app, site, cms.url)
    ingest(app)
    changed = HARVEST.replace("geçti", "geçti; teşekkürler")
    serve(cms, rss(changed))

    assert ingest(app).updated == [sid("harvest")]
    assert "teşekkürler" in stored(app, "harvest").body_html


def test_entry_without_a_date_is_reported_and_the_rest_ingested(sqlite_site, make_app, cms):
    undated = f"<item><title>Undated</title><link>{CMS}/undated</link><guid>{CMS}/undated</guid></item>"
    serve(cms, rss(undated, RAIN))
    app = feed_app(make_app, sqlite_site, cms.url)

    report = ingest(app)
    assert report.published == [sid("rain")]
    [problem] = report.problems
    assert problem.path == f"{cms.url} (entry 1)"
    assert problem.message == f"entry '{CMS}/undated' has no date; skipped"


def test_future_entry_is_scheduled(site, make_app, cms):
    serve(cms, rss(rss_item("soon", "Soon", "Fri, 27 Nov 2026 10:00:00 +0300", "<p>Soon.</p>")))
    app = feed_app(make_app, site, cms.url)
    assert ingest(app).scheduled == [sid("soon")]
    site.clock.advance(days=1)
    assert ingest(app).published == [sid("soon")]


# -- a feed that is down or malformed --


def test_server_error_keeps_the_last_good_state_then_recovers(site, make_app, cms):
    serve(cms, rss(HARVEST, RAIN))
    app = feed_app(make_app, site, cms.url)
    ingest(app)
    before, count = states(app), revision_count(app)
    cms.queue(Reply.status(500, body=b"Internal Server Error"))

    message = only_problem(ingest(app))
    assert cms.url in message
    assert "500" in message
    assert "keeping the last good state" in message
    assert (states(app), revision_count(app)) == (before, count)

    serve(cms, rss(SNOW, HARVEST, RAIN))
    report = ingest(app)
    assert (report.published, report.problems) == ([sid("snow")], [])


def test_refused_connection_keeps_the_last_good_state_then_recovers(site, make_app, cms):
    serve(cms, rss(HARVEST, RAIN))
    ingest(feed_app(make_app, site, cms.url))
    dead = refused_url("/feed.xml")
    app = feed_app(make_app, site, dead)
    before, count = states(app), revision_count(app)

    message = only_problem(ingest(app))
    assert dead in message
    assert "could not be fetched" in message
    assert (states(app), revision_count(app)) == (before, count)

    serve(cms, rss(SNOW, HARVEST, RAIN))
    assert ingest(feed_app(make_app, site, cms.url)).published == [sid("snow")]


def test_server_that_never_answers_keeps_the_last_good_state(site, make_app, cms):
    serve(cms, rss(HARVEST))
    site.extra = f'[source]\ntype = "feed"\nurl = "{cms.url}"\ntimeout_seconds = 0.2\n'
    app = make_app(site)
    ingest(app)
    cms.queue(Reply.hang())

    assert "could not be fetched" in only_problem(ingest(app))
    assert states(app) == {sid("harvest"): "published"}
    cms.release()


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body><h1>Maintenance</h1><p>Back soon.</p></body></html>",
        b"Service temporarily unavailable",
        b"",
        rss(SNOW, HARVEST, RAIN)[:-120],
        rss(SNOW, HARVEST).replace(b"<title>Kar</title>", b"<title>Kar & buz</title>"),
    ],
    ids=["html-page", "plain-text", "empty", "truncated", "not-well-formed"],
)
def test_malformed_body_keeps_the_last_good_state_then_recovers(sqlite_site, make_app, cms, body):
    serve(cms, rss(HARVEST, RAIN))
    app = feed_app(make_app, sqlite_site, cms.url)
    ingest(app)
    before, count = states(app), revision_count(app)
    serve(cms, body)

    message = only_problem(ingest(app))
    assert cms.url in message
    assert "keeping the last good state" in message
    assert (states(app), revision_count(app)) == (before, count)
    assert stored(app, "harvest").body_html == "<p>Hasat <b>iyi</b> geçti.</p>"

    serve(cms, rss(SNOW, HARVEST, RAIN))
    report = ingest(app)
    assert (report.published, report.updated, report.problems) == ([sid("snow")], [], [])


# -- a feed that is too big, too slow, or somewhere else --

CAP = 2_000_000
LIMITS = {"max_feed_bytes": CAP, "deadline_seconds": 1.5}
OFFERED = 32 * CAP


@pytest.fixture
def elsewhere() -> Iterator[LoopbackHTTPServer]:
    """Another origin (a port of its own) that the CMS's feed may redirect to."""
    with LoopbackHTTPServer("/feed.xml") as server:
        yield server


@functools.cache
def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes gzip-compressed: about a thousandth of that goes over the wire."""
    compressor = zlib.compressobj(9, wbits=31)
    block = bytes(1 << 20)
    return b"".join([*(compressor.compress(block) for _ in range(size >> 20)), compressor.flush()])


def endless_body(cms: LoopbackHTTPServer, elsewhere: LoopbackHTTPServer) -> str:
    cms.queue(Reply.stream(b"x" * 65536, OFFERED, RSS_TYPE))
    return f"feed {cms.url} is larger than source.max_feed_bytes ({CAP} bytes); stopped reading there"


def declared_length(cms: LoopbackHTTPServer, elsewhere: LoopbackHTTPServer) -> str:
    cms.queue(Reply.stream(b"x" * 65536, OFFERED, {**RSS_TYPE, "Content-Length": str(OFFERED)}))
    return f"feed {cms.url} declares {OFFERED} bytes, more than source.max_feed_bytes ({CAP})"


def bomb(cms: LoopbackHTTPServer, elsewhere: LoopbackHTTPServer) -> str:
    cms.queue(Reply.status(200, {**RSS_TYPE, "Content-Encoding": "gzip"}, gzip_bomb(OFFERED)))
    return f"feed {cms.url} is larger than source.max_feed_bytes ({CAP} bytes); stopped reading there"


def trickled_body(cms: LoopbackHTTPServer, elsewhere: LoopbackHTTPServer) -> str:
    # Each byte comes well within timeout_seconds; the whole feed would take minutes.
    cms.queue(Reply.trickle(rss(SNOW, HARVEST, RAIN), interval=0.3))
    return f"feed {cms.url} did not arrive within source.deadline_seconds (1.5 s)"


def trickled_head(cms: LoopbackHTTPServer, elsewhere: LoopbackHTTPServer) -> str:
    cms.queue(Reply.trickle_head(interval=0.3))
    return f"feed {cms.url} did not arrive within source.deadline_seconds (1.5 s)"


def cross_origin_redirect(cms: LoopbackHTTPServer, elsewhere: LoopbackHTTPServer) -> str:
    cms.queue(Reply.redirect(302, elsewhere.url))
    return f"feed {cms.url}: redirect from {cms.url} to {elsewhere.url} refused: another origin"


def redirect_loop(cms: LoopbackHTTPServer, elsewhere: LoopbackHTTPServer) -> str:
    cms.queue(*[Reply.redirect(302, "/again")] * 10)
    return f"feed {cms.url} redirected more than 5 times (last to {cms.url_for('/again')})"


HOSTILE = {
    "endless-body": endless_body,
    "declared-length": declared_length,
    "gzip-bomb": bomb,
    "trickled-body": trickled_body,
    "trickled-head": trickled_head,
    "cross-origin-redirect": cross_origin_redirect,
    "redirect-loop": redirect_loop,
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("hostile", HOSTILE.values(), ids=HOSTILE.keys())
def test_answer_past_a_limit_fails_the_fetch_and_keeps_the_last_good_state(site, make_app, cms, elsewhere, hostile):
    serve(cms, rss(HARVEST, RAIN))
    app = feed_app(make_app, site, cms.url, **LIMITS)
    ingest(app)
    before, count = states(app), revision_count(app)
    expected = hostile(cms, elsewhere)

    message = only_problem(ingest(app))
    assert expected in message
    assert "keeping the last good state" in message
    assert (states(app), revision_count(app)) == (before, count)
    assert before == {sid("harvest"): "published", sid("rain"): "published"}
    assert elsewhere.requests == []


def test_endless_body_is_read_to_the_cap_and_no_further(sqlite_site, make_app, cms, elsewhere):
    app = feed_app(make_app, sqlite_site, cms.url, **LIMITS)
    expected = endless_body(cms, elsewhere)
    with pytest.raises(SourceError, match=re.escape(expected)):
        app.source.scan({})
    [request] = cms.requests
    cms.wait_until(lambda: request.ended)  # the server's next write failed: syndicate hung up
    # What left beyond the cap sat in the two sockets' buffers when the connection closed.
    assert CAP < request.sent < OFFERED / 4


@pytest.mark.parametrize("hostile", [endless_body, bomb], ids=["endless-body", "gzip-bomb"])
def test_memory_of_a_capped_fetch_stays_near_the_cap(sqlite_site, make_app, cms, elsewhere, hostile):
    app = feed_app(make_app, sqlite_site, cms.url, **LIMITS)
    expected = hostile(cms, elsewhere)  # offers 32 times the cap, as decoded
    tracemalloc.start()
    try:
        with pytest.raises(SourceError, match=re.escape(expected)):
            app.source.scan({})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert CAP < peak < 1.5 * CAP


def test_same_origin_redirects_are_followed(sqlite_site, make_app, cms):
    relative = (
        "<item><title>Relative</title><link>relative</link><guid>relative</guid>"
        "<pubDate>Thu, 26 Nov 2026 10:00:00 +0300</pubDate><description>Moved.</description></item>"
    )
    cms.queue(Reply.redirect(301, "/moved/feed.xml"), Reply.redirect(307, "/moved/again/feed.xml"))
    serve(cms, rss(relative))
    app = feed_app(make_app, sqlite_site, cms.url, **LIMITS)

    assert len(ingest(app).published) == 1
    assert [r.path for r in cms.requests] == ["/feed.xml", "/moved/feed.xml", "/moved/again/feed.xml"]
    # Relative links resolve against where the feed was finally found.
    stored_by_url(app, cms.url_for("/moved/again/relative"))


def test_redirect_to_another_origin_is_followed_once_allowed(sqlite_site, make_app, cms, elsewhere):
    cms.set_default(Reply.redirect(302, elsewhere.url))
    serve(elsewhere, rss(HARVEST))
    refused = feed_app(make_app, sqlite_site, cms.url, **LIMITS)
    assert f"redirect from {cms.url} to {elsewhere.url} refused" in only_problem(ingest(refused))
    assert elsewhere.requests == []

    allowed = feed_app(make_app, sqlite_site, cms.url, redirect_origins=[elsewhere.base_url], **LIMITS)
    assert ingest(allowed).published == [sid("harvest")]
    assert len(elsewhere.requests) == 1


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("http://Example.org/feed", "http://example.org:80/other", True),
        ("https://example.org/", "https://example.org:443", True),
        ("http://example.org/", "https://example.org/", False),
        ("https://example.org/", "https://example.org:8443/", False),
        ("https://example.org/", "https://cdn.example.org/", False),
    ],
)
def test_origins_compare_scheme_host_and_port(one, other, same):
    assert (origin(one) == origin(other)) is same
