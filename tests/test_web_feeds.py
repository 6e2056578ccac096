"""``/feeds/<path>``: the files as written, their types, validators answering 304, WebSub links, and no way out."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from conftest import Site
from web_support import WebSite, make_web

from syndicate.app import App, build_app
from syndicate.config import load
from syndicate.pipeline import build

HUBS = ("https://hub.example.net/", "https://pubsubhubbub.example.com/")


@pytest.fixture
def web(sqlite_site: Site, make_app: Callable[[Site], App]) -> WebSite:
    """Five statements in feeds of two entries a page (so archive pages exist), served with two hubs."""
    sqlite_site.items = 2
    for i in range(5):
        sqlite_site.statement(f"s{i}.md", f"Statement {i}", f"2026-11-2{i}T10:00:00Z", categories=["News"])
    build(make_app(sqlite_site))
    sqlite_site.hubs = HUBS  # the web app announces them; no ping is owed from this test
    (sqlite_site.feeds / ".atom.xml.abc.tmp").write_bytes(b"half a file")
    (sqlite_site.root / "secret.txt").write_text("not for the web")
    return make_web(make_app(sqlite_site))


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("atom.xml", "application/atom+xml"),
        ("rss.xml", "application/rss+xml"),
        ("feed.json", "application/feed+json"),
        ("lang/en/atom.xml", "application/atom+xml"),
        ("category/news/feed.json", "application/feed+json"),
        ("archive/atom-1.xml", "application/atom+xml"),
        ("archive/rss-2.xml", "application/rss+xml"),
        ("archive/feed-1.json", "application/feed+json"),
    ],
)
def test_each_file_is_served_whole_with_its_type(web: WebSite, path: str, kind: str) -> None:
    response = web.client.get(f"/feeds/{path}")
    assert response.status_code == 200
    assert response.mimetype == kind
    assert response.data == (web.app.config.feeds.dir / path).read_bytes()


def test_validators_are_a_strong_etag_of_the_bytes_and_the_files_time(web: WebSite) -> None:
    response = web.client.get("/feeds/atom.xml")
    path = web.app.config.feeds.dir / "atom.xml"

    assert response.headers["ETag"] == f'"{hashlib.sha256(path.read_bytes()).hexdigest()}"'
    modified = datetime.fromtimestamp(int(path.stat().st_mtime), UTC)
    assert response.last_modified == modified


def test_a_feed_fetched_again_with_the_first_answers_validators_is_304(web: WebSite) -> None:
    first = web.client.get("/feeds/atom.xml")

    again = web.client.get(
        "/feeds/atom.xml",
        headers={"If-None-Match": first.headers["ETag"], "If-Modified-Since": first.headers["Last-Modified"]},
    )

    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == first.headers["ETag"]


def test_either_validator_alone_is_enough(web: WebSite) -> None:
    first = web.client.get("/feeds/rss.xml")
    by_tag = web.client.get("/feeds/rss.xml", headers={"If-None-Match": first.headers["ETag"]})
    by_time = web.client.get("/feeds/rss.xml", headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert (by_tag.status_code, by_time.status_code) == (304, 304)


def test_a_different_etag_wins_over_a_matching_date(web: WebSite) -> None:
    first = web.client.get("/feeds/atom.xml")
    response = web.client.get(
        "/feeds/atom.xml",
        headers={"If-None-Match": '"something-else"', "If-Modified-Since": first.headers["Last-Modified"]},
    )
    assert response.status_code == 200


def test_a_changed_feed_is_sent_again(web: WebSite, sqlite_site: Site) -> None:
    first = web.client.get("/feeds/atom.xml")
    sqlite_site.statement("s9.md", "Statement 9", "2026-11-26T11:00:00Z")
    build(web.app)
    path = web.app.config.feeds.dir / "atom.xml"
    later = path.stat().st_mtime + 5  # a later second, whatever the file system's clock resolution
    os.utime(path, (later, later))

    again = web.client.get(
        "/feeds/atom.xml",
        headers={"If-None-Match": first.headers["ETag"], "If-Modified-Since": first.headers["Last-Modified"]},
    )

    assert again.status_code == 200
    assert b"Statement 9" in again.data
    assert again.headers["ETag"] != first.headers["ETag"]


def test_link_headers_name_each_hub_and_the_files_own_url(web: WebSite) -> None:
    response = web.client.get("/feeds/lang/en/atom.xml")
    links = response.headers.getlist("Link")
    assert links == [
        '<https://hub.example.net/>; rel="hub"',
        '<https://pubsubhubbub.example.com/>; rel="hub"',
        '<https://example.org/feeds/lang/en/atom.xml>; rel="self"',
    ]


def test_head_answers_the_headers_without_the_body(web: WebSite) -> None:
    response = web.client.head("/feeds/feed.json")
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["ETag"]
    assert response.headers["Content-Length"] != "0"


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/../config.toml",
        "/feeds/%2e%2e/config.toml",
        "/feeds/lang/../../secret.txt",
        "/feeds/lang/%2e%2e/%2e%2e/secret.txt",
        "/feeds/..%2fsecret.txt",
        "/feeds//etc/passwd",
        "/feeds/%2fetc/passwd",
        "/feeds/.atom.xml.abc.tmp",
        "/feeds/lang",
        "/feeds/missing.xml",
        "/feeds/atom.xml%00.txt",
    ],
)
def test_nothing_outside_the_feed_files_is_served(web: WebSite, path: str) -> None:
    response = web.client.get(path)
    assert response.status_code == 404
    assert b"not for the web" not in response.data
    assert b"[site]" not in response.data


@pytest.mark.parametrize(
    "path",
    ["/feeds//atom.xml", "/feeds/lang//en/atom.xml", "/feeds/archive//atom-1.xml", "/confirm//c1.0.x", "/subscribe//"],
)
def test_a_doubled_slash_is_not_found_never_redirected_to_the_host_a_client_named(web: WebSite, path: str) -> None:
    response = web.client.get("/", environ_overrides={"PATH_INFO": path}, headers={"Host": "evil.example"})
    assert response.status_code == 404
    assert "Location" not in response.headers


def test_a_link_out_of_the_folder_is_not_followed(web: WebSite, sqlite_site: Site) -> None:
    (sqlite_site.feeds / "escape.txt").symlink_to(sqlite_site.root / "secret.txt")
    assert web.client.get("/feeds/escape.txt").status_code == 404


# -- only what the feed layout writes --


@pytest.fixture
def varied(sqlite_site: Site, make_app: Callable[[Site], App]) -> WebSite:
    """Feeds of every shape: languages with and without a region, categories in three scripts, archive pages."""
    sqlite_site.items = 2
    shapes = [("en", "News"), ("tr", "Açıklamalar"), ("ru", "Заявления"), ("en-GB", "Archive"), ("tr", "Basın_Bülteni")]
    for i, (lang, category) in enumerate(shapes * 2):
        sqlite_site.statement(f"s{i}.md", f"Statement {i}", f"2026-11-1{i}T10:00:00Z", lang=lang, categories=[category])
    build(make_app(sqlite_site))
    return make_web(make_app(sqlite_site))


def test_every_file_a_build_wrote_is_served(varied: WebSite) -> None:
    root = varied.app.config.feeds.dir
    written = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    folders = {path.rpartition("/")[0] for path in written}
    assert {"", "archive", "lang/en-GB", "lang/tr/archive", "category/заявления", "category/basin_bulteni"} <= folders
    assert "category/archive/archive" in folders, "a category called Archive has archive pages of its own"

    for path in written:
        response = varied.client.get(f"/feeds/{quote(path)}")
        assert response.status_code == 200, path
        assert response.data == (root / path).read_bytes(), path


def site_in_its_feeds_folder(site: Site) -> App:
    """The site with ``feeds.dir = "."``: the database, config.toml and the statements sit among the feeds."""
    text = site.config_text().replace("[feeds]\n", '[feeds]\ndir = "."\n', 1)
    (site.root / "config.toml").write_text(text, encoding="utf-8")
    return build_app(load(site.root / "config.toml"), clock=site.clock)


def test_a_feeds_folder_holding_the_site_serves_its_feeds_and_nothing_else(sqlite_site: Site) -> None:
    sqlite_site.statement("one.md", "One", "2026-11-20T10:00:00Z", categories=["News"], lang="tr")
    app = site_in_its_feeds_folder(sqlite_site)
    try:
        report = build(app)
        client = make_web(app).client
        (sqlite_site.root / "category" / "news" / "notes.txt").write_text("beside a feed, not one")
        private = ["syndicate.db", "config.toml", "statements/one.md", "templates/web/layout.html"]
        for path in [*private, "category/news/notes.txt"]:
            assert (sqlite_site.root / path).is_file(), path
            assert client.get(f"/feeds/{path}").status_code == 404, path
        for path in ("lang/tr/../../config.toml", "archive/atom.xml", "lang/x_y/atom.xml", "category/a.b/atom.xml"):
            assert client.get(f"/feeds/{path}").status_code == 404, path
        assert len(report.feeds.written) == 9, "atom, rss and json of the site's, the language's and the category's"
        for path in report.feeds.written:
            assert client.get(f"/feeds/{path}").status_code == 200, path
    finally:
        app.close()
