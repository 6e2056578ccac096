"""``/feeds/<path>``: the files as written, their types, validators answering 304, WebSub links, and no way out."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from conftest import Site
from web_support import WebSite, make_web

from syndicate.app import App
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
    response = web.client.get(path, follow_redirects=True)  # "//" is merged by a redirect first
    assert response.status_code == 404
    assert b"not for the web" not in response.data
    assert b"[site]" not in response.data


def test_a_link_out_of_the_folder_is_not_followed(web: WebSite, sqlite_site: Site) -> None:
    (sqlite_site.feeds / "escape.txt").symlink_to(sqlite_site.root / "secret.txt")
    assert web.client.get("/feeds/escape.txt").status_code == 404
