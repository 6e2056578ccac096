"""Feeds as readers get them: which files, what every entry says, validity, and writing only what changed.

Every document is read back with feedparser (a real feed reader) and the
strict validators in ``tests/validators``; lxml reads what feedparser hides
(``xml:lang``, ``at:deleted-entry``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import feedparser
import pytest
from conftest import Clock, Site
from lxml import etree
from lxml import html as lxml_html
from validators import validate_atom, validate_json_feed, validate_rss

from syndicate.app import App, build_app
from syndicate.config import load
from syndicate.pipeline import build
from syndicate.render.partner import probe_revision

ROOT = Path(__file__).resolve().parent.parent
ATOM = "http://www.w3.org/2005/Atom"
AT = "http://purl.org/atompub/tombstones/1.0"
FH = "http://purl.org/syndication/history/1.0"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
BASE = "https://example.org/feeds/"
ISTANBUL = ZoneInfo("Europe/Istanbul")  # the test site's time zone: feeds show times in it
RU_PAGE = "https://example.org/ru/zayavleniya/o-pravakh-bezhentsev"  # a canonical_url set in front matter
RIGHTS = "All rights reserved; quote only with an active link."


def fmt_of(path: Path) -> str:
    """The format of a feed file, by its name (``atom.xml``, ``archive/rss-2.xml``...)."""
    name = path.name.split("-")[0].removesuffix(".xml").removesuffix(".json")
    return {"atom": "atom", "rss": "rss", "feed": "json"}[name]


def problems(path: Path) -> list[str]:
    """What the strict validator, and feedparser for XML, find wrong with one feed file."""
    data = path.read_bytes()
    fmt = fmt_of(path)
    found = {"atom": validate_atom, "rss": validate_rss, "json": validate_json_feed}[fmt](data)
    if fmt != "json":
        parsed = feedparser.parse(data)
        if parsed.bozo:
            found.append(f"feedparser: {parsed.bozo_exception}")
    return [f"{path}: {problem}" for problem in found]


def feed_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under ``folder``: its bytes, mtime_ns and inode."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
        for p in feed_files(folder)
    }


def links_to(html: str, href: str) -> bool:
    """Whether an HTML fragment holds an active link (``<a href>``) to ``href``."""
    return href in lxml_html.fragment_fromstring(html, create_parent="div").xpath("//a/@href")


def tag(day: str, name: str) -> str:
    return f"tag:example.org,{day}:statements/{name}"


@pytest.fixture
def configured() -> Iterator[Callable[..., App]]:
    """Build an app for a site with ``[feeds]`` settings changed (``formats=["atom"]``...)."""
    apps: list[App] = []

    def make(site: Site, **feeds: Any) -> App:
        path = site.root / "config.toml"
        path.write_text(site.config_text(), encoding="utf-8")
        config = load(path, {f"feeds.{key}": value for key, value in feeds.items()})
        app = build_app(config, clock=site.clock)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


# -- content sets ---------------------------------------------------------------

ENTITIES_HTML = """\
---
title: "Fish & Chips <Ltd> vs. “Quotes” — a test"
published: 2026-11-04T09:15:00+03:00
categories: [News]
summary: "Entities & markup: <b> is text here."
---
<p>Caf&eacute; &amp; bar &lt;tag&gt; &nbsp;&#8212; &#x41F;&#x440;&#x438;&#x432;&#x435;&#x442; &copy; 2026</p>
<p>A <a href="https://example.org/a?x=1&amp;y=2">link with &amp;</a> and <em>emphasis</em>.</p>
"""


def international(site: Site) -> None:
    """Turkish, Russian and English statements, one in HTML with entities."""
    site.statement(
        "un.md", "UN rejects the application", "2026-11-01T10:00:00+03:00",
        "The **Security Council** rejected it.\n\nSee [the decision](https://example.org/decision).",
        author="Murat Özer", categories=["News", "United Nations"],
        summary="The Council rejected the application.",
    )  # fmt: skip
    site.statement(
        "bm.md", "BM başvuruyu reddetti: İstanbul’da açıklama", "2026-11-02T11:30:00+03:00",
        "Güvenlik Konseyi başvuruyu reddetti. Çalışmalarımıza devam ediyoruz.",
        lang="tr", author="Murat Özer, IMKANDER Başkanı", categories=["Açıklamalar", "Birleşmiş Milletler"],
    )  # fmt: skip
    site.statement(
        "oon.md", "Заявление о правах беженцев", "2026-11-03T12:00:00+03:00",
        "Совет Безопасности отклонил заявку. «Мы продолжим работу».",
        lang="ru", author="Иван Петров", categories=["Заявления"], canonical_url=RU_PAGE,
    )  # fmt: skip
    site.write("entities.html", ENTITIES_HTML)


EXPECTED = {
    "un": {
        "published": "2026-11-01T10:00:00+03:00",
        "lang": "en",
        "author": "Murat Özer",
        "categories": ["News", "United Nations"],
        "title": "UN rejects the application",
    },
    "bm": {
        "published": "2026-11-02T11:30:00+03:00",
        "lang": "tr",
        "author": "Murat Özer, IMKANDER Başkanı",
        "categories": ["Açıklamalar", "Birleşmiş Milletler"],
        "title": "BM başvuruyu reddetti: İstanbul’da açıklama",
    },
    "oon": {
        "published": "2026-11-03T12:00:00+03:00",
        "lang": "ru",
        "author": "Иван Петров",
        "categories": ["Заявления"],
        "title": "Заявление о правах беженцев",
    },
    "entities": {
        "published": "2026-11-04T09:15:00+03:00",
        "lang": "en",
        "author": "Example Org",
        "categories": ["News"],
        "title": "Fish & Chips <Ltd> vs. “Quotes” — a test",
    },
}


def expected_id(name: str) -> str:
    return tag(EXPECTED[name]["published"][:10], name)


def canonical(name: str) -> str:
    return RU_PAGE if name == "oon" else f"https://example.org/statements/{name}"


# -- which feeds exist ----------------------------------------------------------

ALL_FEEDS = ["", "lang/en", "lang/tr", "lang/ru"] + [
    f"category/{slug}" for slug in ("news", "united-nations", "aciklamalar", "birlesmis-milletler", "заявления")
]


@pytest.mark.parametrize(
    ("settings", "folders", "names"),
    [
        ({}, ALL_FEEDS, ["atom.xml", "rss.xml", "feed.json"]),
        ({"formats": ["atom"]}, ALL_FEEDS, ["atom.xml"]),
        ({"formats": ["json", "rss"], "by_language": False}, [f for f in ALL_FEEDS if "lang/" not in f],
         ["rss.xml", "feed.json"]),
        ({"by_language": False, "by_category": False}, [""], ["atom.xml", "rss.xml", "feed.json"]),
    ],
)  # fmt: skip
def test_feeds_written_per_language_category_and_format(sqlite_site, configured, settings, folders, names):
    international(sqlite_site)
    report = build(configured(sqlite_site, **settings))
    expected = sorted(f"{folder}/{name}".lstrip("/") for folder in folders for name in names)
    assert sorted(report.feeds.written) == expected
    assert sorted(p.relative_to(sqlite_site.feeds).as_posix() for p in feed_files(sqlite_site.feeds)) == expected


def test_each_feed_holds_only_its_language_or_category(sqlite_site, make_app):
    international(sqlite_site)
    build(make_app(sqlite_site))
    feeds = sqlite_site.feeds
    ids = {
        folder: {e.id for e in feedparser.parse((feeds / folder / "atom.xml").read_bytes()).entries}
        for folder in ALL_FEEDS
    }
    assert ids[""] == {expected_id(n) for n in EXPECTED}
    assert ids["lang/en"] == {expected_id("un"), expected_id("entities")}
    assert ids["lang/tr"] == {expected_id("bm")}
    assert ids["lang/ru"] == {expected_id("oon")}
    assert ids["category/news"] == {expected_id("un"), expected_id("entities")}
    assert ids["category/united-nations"] == {expected_id("un")}
    assert ids["category/aciklamalar"] == ids["category/birlesmis-milletler"] == {expected_id("bm")}
    assert ids["category/заявления"] == {expected_id("oon")}
    ru = feedparser.parse((feeds / "lang/ru/rss.xml").read_bytes())
    assert ru.feed.language == "ru"
    assert ru.feed.link == "https://example.org"
    assert ru.feed.title == "Example Org (ru)"
    category = json.loads((feeds / "category/заявления/feed.json").read_bytes())
    assert category["feed_url"] == BASE + "category/%D0%B7%D0%B0%D1%8F%D0%B2%D0%BB%D0%B5%D0%BD%D0%B8%D1%8F/feed.json"
    assert category["title"] == "Example Org: Заявления"


# -- what every entry says ------------------------------------------------------


def test_atom_entries_say_what_the_statements_say(site, make_app):
    international(site)
    build(make_app(site))
    data = (site.feeds / "atom.xml").read_bytes()
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0
    raw = {e.findtext(f"{{{ATOM}}}id"): e for e in etree.fromstring(data).iter(f"{{{ATOM}}}entry")}
    assert [e.id for e in parsed.entries] == [expected_id(n) for n in ("entities", "oon", "bm", "un")]
    for entry in parsed.entries:
        name = entry.id.rsplit("/", 1)[1]
        want = EXPECTED[name]
        assert entry.title == want["title"]
        assert entry.link == canonical(name)
        # feedgen 1.0.0 drops these (its issue #135): check what is written, not what was asked for.
        assert entry.links == [
            {"href": canonical(name), "rel": "alternate", "type": "text/html", "hreflang": want["lang"]}
        ]
        assert entry.published == want["published"]
        assert entry.updated == want["published"]
        assert entry.author == want["author"]
        assert [t.term for t in entry.tags] == want["categories"]
        assert raw[entry.id].get(XML_LANG) == want["lang"]
        assert entry.title_detail.language == want["lang"]
        assert entry.rights == RIGHTS
        assert links_to(entry.content[0].value, canonical(name))
    assert parsed.feed.rights == RIGHTS
    assert parsed.feed.updated == EXPECTED["entities"]["published"]


def test_rss_items_say_what_the_statements_say(site, make_app):
    international(site)
    build(make_app(site))
    parsed = feedparser.parse((site.feeds / "rss.xml").read_bytes())
    assert parsed.bozo == 0
    assert [e.id for e in parsed.entries] == [expected_id(n) for n in ("entities", "oon", "bm", "un")]
    for entry in parsed.entries:
        name = entry.id.rsplit("/", 1)[1]
        want = EXPECTED[name]
        assert entry.guidislink is False
        assert entry.title == want["title"]
        assert entry.link == canonical(name)
        assert parsedate_to_datetime(entry.published) == datetime.fromisoformat(want["published"])
        assert entry.updated == want["published"]
        assert entry.author == want["author"]
        assert entry.language == want["lang"]
        assert [t.term for t in entry.tags] == want["categories"]
        assert entry.rights == RIGHTS
        assert links_to(entry.summary, canonical(name))
        assert links_to(entry.content[0].value, canonical(name))
    assert parsed.feed.rights == RIGHTS
    assert parsed.feed.link == "https://example.org"
    assert parsedate_to_datetime(parsed.feed.updated) == datetime.fromisoformat(EXPECTED["entities"]["published"])


def test_json_items_say_what_the_statements_say(site, make_app):
    international(site)
    build(make_app(site))
    feed = json.loads((site.feeds / "feed.json").read_bytes())
    assert [item["id"] for item in feed["items"]] == [expected_id(n) for n in ("entities", "oon", "bm", "un")]
    for item in feed["items"]:
        name = item["id"].rsplit("/", 1)[1]
        want = EXPECTED[name]
        assert item["title"] == want["title"]
        assert item["url"] == canonical(name)
        assert item["date_published"] == want["published"]
        assert item["date_modified"] == want["published"]
        assert item["authors"] == [{"name": want["author"]}]
        assert item["language"] == want["lang"]
        assert item["tags"] == want["categories"]
        assert item["_syndicate"]["rights"] == RIGHTS
        assert canonical(name) in item["_syndicate"]["attribution"]
        assert links_to(item["content_html"], canonical(name))
    assert feed["feed_url"] == BASE + "feed.json"
    assert feed["_syndicate"]["updated"] == EXPECTED["entities"]["published"]


def test_html_with_entities_survives_every_format(sqlite_site, make_app):
    international(sqlite_site)
    build(make_app(sqlite_site))
    feeds = sqlite_site.feeds
    atom = feedparser.parse((feeds / "atom.xml").read_bytes()).entries[0]
    rss = feedparser.parse((feeds / "rss.xml").read_bytes()).entries[0]
    item = json.loads((feeds / "feed.json").read_bytes())["items"][0]
    for content in (atom.content[0].value, rss.content[0].value, item["content_html"]):
        text = lxml_html.fragment_fromstring(content, create_parent="div").text_content()
        assert "Café & bar <tag> \xa0— Привет © 2026" in text
        assert links_to(content, "https://example.org/a?x=1&y=2")
    assert atom.title == rss.title == item["title"] == EXPECTED["entities"]["title"]
    assert atom.summary == item["summary"] == "Entities & markup: <b> is text here."


def test_tag_id_never_changes_when_edited_or_redated(site, make_app):
    site.statement("note.md", "Note", "2026-11-02T10:00:00+03:00", "First text.", categories=["News"])
    build(make_app(site))
    first = feedparser.parse((site.feeds / "atom.xml").read_bytes()).entries[0]
    assert first.id == tag("2026-11-02", "note")
    site.clock.advance(days=2)
    site.statement("note.md", "Note (corrected)", "2026-11-03T09:00:00+03:00", "Second text.", categories=["News"])
    build(make_app(site))
    edited_at = site.clock().astimezone(ISTANBUL)
    for path in ("atom.xml", "rss.xml", "category/news/atom.xml", "lang/en/rss.xml"):
        (entry,) = feedparser.parse((site.feeds / path).read_bytes()).entries
        assert entry.id == first.id
        assert entry.title == "Note (corrected)"
        assert datetime.fromisoformat(entry.updated) == edited_at
    (item,) = json.loads((site.feeds / "feed.json").read_bytes())["items"]
    assert item["id"] == first.id
    assert item["date_published"] == "2026-11-03T09:00:00+03:00"
    assert item["date_modified"] == edited_at.isoformat()


def test_declared_update_time_is_the_entry_updated(site, make_app):
    site.statement("note.md", "Note", "2026-11-02T10:00:00+03:00", "First text.")
    build(make_app(site))
    site.clock.advance(days=3)
    site.statement("note.md", "Note", "2026-11-02T10:00:00+03:00", "Fixed text.", updated="2026-11-04T08:00:00+03:00")
    build(make_app(site))
    parsed = feedparser.parse((site.feeds / "atom.xml").read_bytes())
    assert parsed.entries[0].updated == "2026-11-04T08:00:00+03:00"
    assert parsed.entries[0].published == "2026-11-02T10:00:00+03:00"
    assert parsed.feed.updated == "2026-11-04T08:00:00+03:00"


def test_retracted_statement_leaves_a_tombstone(site, make_app):
    international(site)
    build(make_app(site))
    site.clock.advance(hours=5)
    site.statement(
        "oon.md", "Заявление о правах беженцев", "2026-11-03T12:00:00+03:00", "Текст.",
        lang="ru", categories=["Заявления"], retracted=True,
    )  # fmt: skip
    report = build(make_app(site))
    assert report.ingest.retracted == ["oon"]
    when = site.clock().astimezone(ISTANBUL).isoformat()
    for folder in ("", "lang/ru", "category/заявления"):
        root = etree.fromstring((site.feeds / folder / "atom.xml").read_bytes())
        (tomb,) = root.findall(f"{{{AT}}}deleted-entry")
        assert tomb.get("ref") == expected_id("oon")
        assert tomb.get("when") == when
        assert root.findtext(f"{{{ATOM}}}updated") == when
        assert expected_id("oon") not in [e.findtext(f"{{{ATOM}}}id") for e in root.iter(f"{{{ATOM}}}entry")]
        assert expected_id("oon") not in [
            e.id for e in feedparser.parse((site.feeds / folder / "rss.xml").read_bytes()).entries
        ]
        items = json.loads((site.feeds / folder / "feed.json").read_bytes())["items"]
        assert expected_id("oon") not in [i["id"] for i in items]


def namespaces_in(root: Any) -> set[str]:
    """Every namespace an element or attribute of the document is in (``xml:`` is never declared)."""
    names = [n for node in root.iter() if isinstance(node.tag, str) for n in (node.tag, *node.attrib)]
    return {etree.QName(n).namespace for n in names} - {None, "http://www.w3.org/XML/1998/namespace"}


def assert_declares_what_it_uses(path: Path) -> dict[str | None, str]:
    """The root declares exactly the namespaces the document uses, and nothing below it declares any."""
    data = path.read_bytes()
    root = etree.fromstring(data)
    assert set(root.nsmap.values()) == namespaces_in(root), path
    assert data.count(b"xmlns") == len(root.nsmap), path  # no entry redeclares one
    return dict(root.nsmap)


def test_the_tombstone_namespace_is_declared_only_where_a_tombstone_is(site, make_app):
    # The W3C Feed Validation Service warns "Use of unknown namespace" for each RFC 6721 declaration.
    site.items = 2
    international(site)
    build(make_app(site))
    xml_files = [p for p in feed_files(site.feeds) if p.suffix == ".xml"]
    for path in xml_files:
        assert AT not in assert_declares_what_it_uses(path).values(), path
    assert assert_declares_what_it_uses(site.feeds / "atom.xml") == {None: ATOM}
    site.clock.advance(hours=1)
    site.statement(
        "oon.md", "Заявление о правах беженцев", "2026-11-03T12:00:00+03:00", "Текст.",
        lang="ru", categories=["Заявления"], retracted=True,
    )  # fmt: skip
    build(make_app(site))
    for path in [p for p in feed_files(site.feeds) if p.suffix == ".xml"]:
        declared = assert_declares_what_it_uses(path)
        holds_tombstone = etree.fromstring(path.read_bytes()).find(f"{{{AT}}}deleted-entry") is not None
        assert (declared.get("at") == AT) == holds_tombstone, path
        assert FH not in declared.values() or "/archive/" in path.as_posix(), path  # only sealed pages use fh
        assert problems(path) == []
    assert assert_declares_what_it_uses(site.feeds / "atom.xml") == {None: ATOM, "at": AT}


def test_summary_only_when_full_content_is_off(sqlite_site, configured):
    sqlite_site.statement(
        "long.md", "Long statement", "2026-11-02T10:00:00+03:00", "The whole SECRETBODY text.",
        summary="A short summary.", categories=["News"],
    )  # fmt: skip
    build(configured(sqlite_site, full_content=False))
    link = canonical("long")
    atom = feedparser.parse((sqlite_site.feeds / "atom.xml").read_bytes()).entries[0]
    rss = feedparser.parse((sqlite_site.feeds / "rss.xml").read_bytes()).entries[0]
    item = json.loads((sqlite_site.feeds / "feed.json").read_bytes())["items"][0]
    for html in (atom.content[0].value, rss.summary, item["content_html"]):
        assert "A short summary." in html
        assert links_to(html, link)
    assert "content" not in rss
    for path in feed_files(sqlite_site.feeds):
        assert b"SECRETBODY" not in path.read_bytes(), path


# -- feed level -----------------------------------------------------------------


def test_feed_level_self_link_language_and_updated(sqlite_site, make_app):
    international(sqlite_site)
    build(make_app(sqlite_site))
    for path, updated in [("atom.xml", "entities"), ("lang/tr/atom.xml", "bm"), ("category/заявления/atom.xml", "oon")]:
        parsed = feedparser.parse((sqlite_site.feeds / path).read_bytes())
        rels = {link.rel: link.href for link in parsed.feed.links}
        assert rels["self"] == BASE + quote(path)
        assert rels["alternate"] == "https://example.org"
        assert parsed.feed.updated == EXPECTED[updated]["published"]
    for path in ("rss.xml", "lang/ru/rss.xml"):
        channel = etree.fromstring((sqlite_site.feeds / path).read_bytes()).find("channel")
        self_links = [link.get("href") for link in channel.findall(f"{{{ATOM}}}link") if link.get("rel") == "self"]
        assert self_links == [BASE + path]
    assert feedparser.parse((sqlite_site.feeds / "lang/tr/atom.xml").read_bytes()).feed.language == "tr"


def test_build_time_never_shows(site, make_app, tmp_path):
    """Same input, same bytes: at another time, and from a fresh database on another day."""
    international(site)
    build(make_app(site))
    first = snapshot(site.feeds)
    site.clock.advance(hours=7)
    assert build(make_app(site)).feeds.written == []
    assert snapshot(site.feeds) == first
    other = tmp_path / "other"
    shutil.copytree(site.root / "templates", other / "templates")
    shutil.copytree(site.statements, other / "statements")
    later = Site(other, f"sqlite:///{other / 'fresh.db'}", Clock(datetime(2027, 3, 1, tzinfo=UTC)))
    build(make_app(later))
    assert {p: v[0] for p, v in snapshot(later.feeds).items()} == {p: v[0] for p, v in first.items()}


# -- validity -------------------------------------------------------------------


def example_site(tmp_path: Path) -> Path:
    """The repository's own statements and config, in a folder of their own."""
    root = tmp_path / "example"
    root.mkdir()
    shutil.copytree(ROOT / "statements", root / "statements")
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copy(ROOT / "config.toml", root / "config.toml")
    return root


@pytest.mark.parametrize("items", [50, 2])
def test_example_content_is_valid_everywhere(tmp_path, items):
    root = example_site(tmp_path)
    config = load(root / "config.toml", {"feeds.items": items})
    app = build_app(config, clock=lambda: datetime(2026, 11, 26, 12, tzinfo=UTC))
    try:
        report = build(app)
    finally:
        app.close()
    assert report.ingest.problems == []
    assert sorted(report.ingest.published) == [
        "russia-diplomatic-note-to-turkey", "speech-mikael-storsjo", "statement-of-russian-foreign-minister",
        "un-overturned-campaign", "un-overturned-campaign-tr",
    ]  # fmt: skip
    written = feed_files(root / "feeds")
    assert len(written) == len(report.feeds.written)
    assert [p for path in written for p in problems(path)] == []
    if items == 2:
        assert (root / "feeds/archive/atom-2.xml").exists()
        assert (root / "feeds/archive/feed-3.json").exists()
    everything = b"".join(path.read_bytes() for path in written)
    assert b"annual-report-2026" not in everything  # under embargo at this time


EXAMPLE = {  # id: (published, lang, author), as statements/ says (the speech's time is in the site's zone)
    "un-overturned-campaign-tr": ("2013-09-12T10:30:00+03:00", "tr", "Murat Özer, IMKANDER Başkanı"),
    "un-overturned-campaign": ("2013-09-12T10:00:00+03:00", "en", "Murat Özer, President of IMKANDER"),
    "speech-mikael-storsjo": ("2013-09-05T14:00:00+03:00", "en", "IMKANDER"),
    "russia-diplomatic-note-to-turkey": ("2013-08-28T11:00:00+03:00", "en", "IMKANDER"),
    "statement-of-russian-foreign-minister": ("2013-08-20T09:00:00+03:00", "en", "IMKANDER"),
}


def test_example_entries_say_what_the_statements_say(tmp_path):
    root = example_site(tmp_path)
    app = build_app(load(root / "config.toml"), clock=Clock(datetime(2026, 11, 26, 12, tzinfo=UTC)))
    try:
        build(app)
    finally:
        app.close()
    atom = feedparser.parse((root / "feeds/atom.xml").read_bytes())
    rss = feedparser.parse((root / "feeds/rss.xml").read_bytes())
    items = json.loads((root / "feeds/feed.json").read_bytes())["items"]
    assert atom.bozo == rss.bozo == 0
    for a, r, j, (name, (published, lang, author)) in zip(
        atom.entries, rss.entries, items, EXAMPLE.items(), strict=True
    ):
        page = f"https://www.imkander.org/statements/{name}"
        assert a.id == r.id == j["id"] == f"tag:www.imkander.org,{published[:10]}:statements/{name}"
        assert a.links == [{"href": page, "rel": "alternate", "type": "text/html", "hreflang": lang}]
        assert r.link == j["url"] == page
        assert a.published == a.updated == r.updated == j["date_published"] == j["date_modified"] == published
        assert parsedate_to_datetime(r.published) == datetime.fromisoformat(published)
        assert a.author == r.author == j["authors"][0]["name"] == author
        assert a.title_detail.language == r.language == j["language"] == lang
        for html in (a.content[0].value, r.content[0].value, r.summary, j["content_html"]):
            assert links_to(html, page)
        assert a.rights.startswith("IMKANDER reserves all rights")


def test_example_embargo_enters_the_feeds_at_its_minute(tmp_path):
    root = example_site(tmp_path)
    clock = Clock(datetime(2027, 1, 15, 6, 59, tzinfo=UTC))  # 09:59 in Istanbul
    app = build_app(load(root / "config.toml"), clock=clock)
    try:
        build(app)
        assert b"annual-report-2026" not in (root / "feeds/atom.xml").read_bytes()
        clock.advance(minutes=1)
        report = build(app)
    finally:
        app.close()
    assert report.ingest.published == ["annual-report-2026"]
    newest = feedparser.parse((root / "feeds/atom.xml").read_bytes()).entries[0]
    assert newest.id == "tag:www.imkander.org,2027-01-15:statements/annual-report-2026"
    assert newest.published == newest.updated == "2027-01-15T10:00:00+03:00"
    assert (root / "feeds/category/statements/feed.json").read_bytes().count(b"annual-report-2026") >= 1
    assert [p for path in feed_files(root / "feeds") for p in problems(path)] == []


def test_international_content_with_archives_and_tombstone_is_valid(site, configured):
    site.items = 2
    international(site)
    site.statement("extra.md", "Extra", "2026-11-05T10:00:00+03:00", "More.", categories=["News"])
    build(configured(site))
    site.clock.advance(hours=1)
    site.statement(
        "bm.md", "BM başvuruyu reddetti", "2026-11-02T11:30:00+03:00", "Geri çekildi.",
        lang="tr", categories=["Açıklamalar", "Birleşmiş Milletler"], retracted=True,
    )  # fmt: skip
    (site.statements / "entities.html").write_text(ENTITIES_HTML.replace("Caf&eacute;", "Th&eacute;"), "utf-8")
    build(configured(site))
    written = feed_files(site.feeds)
    kinds = {fmt_of(p) for p in written}
    assert kinds == {"atom", "rss", "json"}
    assert any(etree.fromstring(p.read_bytes()).find(f"{{{FH}}}archive") is not None for p in written if
               p.suffix == ".xml" and fmt_of(p) == "atom")  # fmt: skip
    assert any(b"deleted-entry" in p.read_bytes() for p in written)
    assert [problem for path in written for problem in problems(path)] == []


# -- writing only what changed --------------------------------------------------


def test_second_build_writes_nothing(site, make_app):
    site.items = 3
    international(site)
    site.statement("extra.md", "Extra", "2026-11-05T10:00:00+03:00", "More.", categories=["News"])
    build(make_app(site))
    before = snapshot(site.feeds)
    site.clock.advance(days=1)
    report = build(make_app(site))
    assert report.feeds.written == []
    assert report.feeds.changed_topics == []
    assert snapshot(site.feeds) == before


def test_a_build_keeps_its_entries_and_the_next_build_starts_afresh(sqlite_site, make_app):
    app = make_app(sqlite_site)
    entries = app.feeds.renderer.entries
    revision = probe_revision(app.config.site, app.clock())
    this_build, next_build = entries.for_build(), entries.for_build()
    made = this_build.fragment(revision, "atom")
    assert this_build.fragment(revision, "atom") is made  # serialised once for every document of the build
    assert next_build.fragment(revision, "atom") is not made
    assert next_build.fragment(revision, "atom") == made
    assert entries.fragment(revision, "atom") is not entries.fragment(revision, "atom")  # the app's keeps nothing


def test_deleted_file_is_restored_byte_identical(sqlite_site, make_app):
    international(sqlite_site)
    build(make_app(sqlite_site))
    before = snapshot(sqlite_site.feeds)
    (sqlite_site.feeds / "category/заявления/rss.xml").unlink()
    (sqlite_site.feeds / "atom.xml").unlink()
    report = build(make_app(sqlite_site))
    assert sorted(report.feeds.written) == ["atom.xml", "category/заявления/rss.xml"]
    after = snapshot(sqlite_site.feeds)
    assert {p: v[0] for p, v in after.items()} == {p: v[0] for p, v in before.items()}
    assert {p: v for p, v in after.items() if p not in report.feeds.written} == {
        p: v for p, v in before.items() if p not in report.feeds.written
    }


def test_new_statement_rewrites_only_the_documents_that_show_it(site, make_app):
    site.items = 3
    international(site)
    site.statement("extra.md", "Extra", "2026-11-05T10:00:00+03:00", "More.", categories=["News"])
    build(make_app(site))
    before = snapshot(site.feeds)
    site.clock.advance(hours=2)
    site.statement("new.md", "New", "2026-11-26T14:00:00+03:00", "Newest.", categories=["United Nations"])
    report = build(make_app(site))
    after = snapshot(site.feeds)
    new_id = tag("2026-11-26", "new").encode()
    showing = sorted(p for p, (data, _, _) in after.items() if new_id in data)
    # Rewritten: exactly the documents that show it. New: those, and the empty open page
    # that follows the page it sealed (that page's next-archive points there).
    assert sorted(p for p in report.feeds.written if p in before) == [p for p in showing if p in before]
    assert sorted(p for p in report.feeds.written if p not in before) == sorted(
        [p for p in showing if p not in before] + ["archive/atom-3.xml", "archive/feed-3.json", "archive/rss-3.xml"]
    )
    assert "archive/atom-2.xml" in showing  # the open page it landed on
    assert "lang/en/atom.xml" in showing
    assert "category/united-nations/feed.json" in showing
    for path, state in before.items():
        if path in showing:
            assert after[path][2] != state[2], f"{path} was not replaced by a rename"
        else:
            assert after[path] == state, f"{path} was written though it does not show the new statement"
    assert not list(site.feeds.rglob("*.tmp"))
