"""Hostile statements never stop the pipeline, and what a statement holds cannot reach past its body.

- Characters XML cannot carry, however they are written (a TOML or YAML escape,
  a character reference in HTML), are removed where they enter, reported with
  the file and line, and every feed stays XML.
- A revision stored before that rule (or any document that still cannot be
  written) is reported and skipped; every other feed document is written and
  the stages after the feeds still run. The upgrade to schema 5 cleans what
  older versions stored.
- Statement HTML goes through the same allow-list as a feed source's: no
  script, handler, ``javascript:`` link, frame, form, ``<base>``, ``<meta>`` or
  style reaches a feed, a mail or a partner.
"""

from __future__ import annotations

import email
import os
import time
from datetime import UTC, datetime
from email import policy
from pathlib import Path
from typing import Any

import feedparser
import pytest
from click.testing import CliRunner
from conftest import Site
from lxml import etree
from lxml import html as lxml_html
from partner_site import AtomPartner, partner_toml, secret_for, start
from sqlalchemy import select
from validators import validate_atom, validate_json_feed, validate_rss

from syndicate.cli import main
from syndicate.config import SiteConfig
from syndicate.ingest import decide
from syndicate.model import Problem, Severity, Statement
from syndicate.pipeline import build, tick
from syndicate.sources.feed import FeedSource
from syndicate.store import statements as statement_store
from syndicate.store import subscribers as subscriber_store
from syndicate.store.db import Database
from syndicate.store.schema import deliveries, editions, feed_documents, meta, migrate, revisions, statements, tables_at
from syndicate.subscribers import Frequency, NewSubscriber
from syndicate.text import XML_ILLEGAL

WARNING = Severity.WARNING


def written_feeds(site: Site) -> list[Path]:
    return sorted(p for p in site.feeds.rglob("*") if p.is_file() and not p.name.startswith("."))


def assert_every_feed_is_valid(site: Site) -> None:
    """Every file under feeds/ parses strictly and passes its format's validator."""
    files = written_feeds(site)
    assert files
    for path in files:
        data = path.read_bytes()
        if path.suffix == ".json":
            assert validate_json_feed(data) == [], path
            continue
        etree.fromstring(data)  # strict: any character XML cannot carry raises here
        validate = validate_rss if path.name.startswith("rss") else validate_atom
        assert validate(data) == [], path
        assert feedparser.parse(data).bozo == 0, path


def problems_of(report: Any) -> list[Problem]:
    return [*report.ingest.problems, *report.feeds.problems]


# -- characters XML cannot carry --

ESCAPED_TOML = r"""+++
title = "Cat\u0000 and dog"
published = 2026-11-20T10:00:00+03:00
categories = ["X\u0002Y", "News"]
author = "A\uFFFEuthor"
+++

The body is fine.
"""

SURROGATE_YAML = r"""---
title: "Lone \ud800 surrogate"
published: 2026-11-20T10:00:00+03:00
categories: ["Bell\x07s"]
---

Fine too.
"""

ENTITY_HTML = """+++
title = "Entities"
published = 2026-11-20T10:00:00+03:00
+++

<p>First paragraph.</p>
<p>Start of heading &#1; and &#xFFFE; end.</p>
"""

ENTITY_MARKDOWN = """+++
title = "Raw HTML in Markdown"
published = 2026-11-20T10:00:00+03:00
+++

Plain paragraph.

<div>Raw &#x2; block</div>
"""


def test_escapes_and_references_are_removed_where_they_enter_and_reported_with_their_line(site, make_app):
    app = make_app(site)
    site.write("toml.md", ESCAPED_TOML)
    site.write("yaml.md", SURROGATE_YAML)
    site.write("entity-html.html", ENTITY_HTML)
    site.write("entity-md.md", ENTITY_MARKDOWN)
    report = build(app)
    found = {(Path(p.path).name, p.line, p.message.split(":")[0]) for p in problems_of(report)}
    assert found == {
        ("toml.md", 2, "title"),
        ("toml.md", 4, "categories"),
        ("toml.md", 5, "author"),
        ("yaml.md", 2, "title"),
        ("yaml.md", 4, "categories"),
        ("entity-html.html", 7, "body"),
        ("entity-md.md", 8, "body"),
    }
    assert all(p.severity == WARNING and "XML cannot carry" in p.message for p in problems_of(report))
    assert sorted(report.ingest.published) == ["entity-html", "entity-md", "toml", "yaml"]
    with app.db.read() as conn:
        rows = conn.execute(select(revisions)).all()
    assert {r.title for r in rows} >= {"Cat and dog", "Lone surrogate"}
    assert {c for r in rows for c in r.categories} == {"XY", "News", "Bells"}
    for row in rows:
        for value in (row.title, row.author, row.summary, row.body_html, row.body_text, *row.categories):
            assert not XML_ILLEGAL.search(value), row.statement_id
    assert_every_feed_is_valid(site)
    assert (site.feeds / "category" / "xy" / "atom.xml").is_file()


def test_check_names_each_file_and_line_and_fails(site):
    site.write("toml.md", ESCAPED_TOML)
    site.write("entity.html", ENTITY_HTML)
    site.config()
    result = CliRunner().invoke(main, ["--config", str(site.root / "config.toml"), "check"])
    assert result.exit_code == 1
    assert "toml.md:2: warning: title: removed 1 control or non-character(s)" in result.output
    assert "toml.md:4: warning: categories:" in result.output
    assert "entity.html:7: warning: body: removed 2" in result.output


def test_a_feed_entry_with_references_xml_cannot_carry_is_cleaned_and_reported():
    site = SiteConfig(title="Org", url="https://example.org", language="en", timezone="UTC", author="", rights="")
    feed = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>CMS</title><link>https://cms.example.org/</link><description>d</description>
<item><title>Bad &amp;#1; title</title><link>https://cms.example.org/1</link><guid>urn:one</guid>
<pubDate>Thu, 12 Sep 2013 10:00:00 +0300</pubDate><category>Cat&amp;#2;s</category>
<description>&lt;p&gt;Body &amp;#1; with &amp;#xFFFE; inside&lt;/p&gt;</description></item>
</channel></rss>"""
    source = FeedSource("https://cms.example.org/feed", site, None, None)  # type: ignore[arg-type]
    scan = source.parse(feed, {"content-type": "application/xml"}, {})
    (statement,) = scan.statements
    for value in (statement.title, statement.body_html, statement.body_text, statement.summary, *statement.categories):
        assert not XML_ILLEGAL.search(value)
    assert statement.body_html == "<p>Body  with  inside</p>"
    (problem,) = scan.problems
    assert problem.severity == WARNING and "XML cannot carry" in problem.message and "urn:one" in problem.message


def dirty(statement_id: str = "dirty", **fields: Any) -> Statement:
    """A statement as versions before 0.2 could store it: text XML cannot carry in its fields."""
    values: dict[str, Any] = {
        "id": statement_id,
        "title": "Cat\x01",
        "published": datetime(2026, 11, 20, 7, tzinfo=UTC),
        "lang": "en",
        "author": "Org",
        "canonical_url": f"https://example.org/statements/{statement_id}",
        "body_html": "<p>Hidden \x01 control</p><script>alert(1)</script>",
        "body_text": "Hidden \x01 control",
        "summary": "Hidden \x01 control",
        "categories": ("X\x02Y",),
        "source_ref": f"{statement_id}.md",
        "fingerprint": "1:1",
    }
    return Statement(**(values | fields))


def store_as_before(conn: Any, site_config: SiteConfig, statement: Statement, now: datetime) -> None:
    """Write ``statement`` and its first revision as ingest did before text was cleaned."""
    plan = decide(site_config, {}, [statement], [], [], now)
    statement_store.insert(conn, plan.inserts)
    statement_store.add_revisions(conn, plan.revisions)


def unchanged_file(site: Site, statement_id: str) -> str:
    """A file for the statement, saved long ago: its fingerprint, so ingest takes it as read already."""
    path = site.statement(f"{statement_id}.md", "Cat", "2026-11-20T10:00:00+03:00")
    long_ago = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(long_ago, long_ago))
    info = path.stat()
    return f"{info.st_size}:{info.st_mtime_ns}"


def test_the_upgrade_to_schema_5_cleans_what_older_versions_stored(tmp_path, db_url, clock):
    db = Database(db_url)
    site_config = SiteConfig(
        title="Org", url="https://example.org", language="en", timezone="UTC", author="", rights=""
    )
    try:
        with db.write() as conn:
            for table in tables_at(4):
                table.create(conn)
            conn.execute(meta.insert().values(key="schema_version", value="4"))
            store_as_before(conn, site_config, dirty(), clock())
            conn.execute(
                feed_documents.insert().values(path="atom.xml", inputs="x", digest="y", size=1, written_at=clock())
            )
        assert migrate(db) == 4
        with db.read() as conn:
            (revision,) = conn.execute(select(revisions)).all()
            (stored,) = conn.execute(select(statements)).all()
            assert conn.execute(select(feed_documents)).all() == []  # every document is made again once
        for row in (revision, stored):
            assert row.title == "Cat"
            assert row.categories == ["XY"]
            assert row.body_html == "<p>Hidden  control</p>"
            assert row.body_text == row.summary == "Hidden  control"
        # A file read again as it was stored makes no update: the hash is that of the clean reading.
        clean = dirty(title="Cat", body_html="<p>Hidden  control</p>", body_text="Hidden  control",
                      summary="Hidden  control", categories=("XY",))  # fmt: skip
        assert stored.content_hash == clean.content_hash
        assert stored.fingerprint == "1:1"
    finally:
        db.dispose()


def test_a_revision_that_cannot_be_rendered_skips_its_documents_and_nothing_else(site, make_app, monkeypatch):
    partner = AtomPartner(secret_for(monkeypatch, "PARTNER_A_SECRET"))
    with partner:
        app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_A_SECRET"))
        report = tick_with_a_bad_revision(site, app)
    # The partner got the good statement; the push it could not render failed alone, saying why.
    assert [feedparser.parse(d.payload).entries[0].title for d in partner.accepted] == ["Good news"]
    with app.db.read() as conn:
        rows = conn.execute(select(deliveries).where(deliveries.c.channel == "webhook")).all()
    assert sorted(r.state for r in rows) == ["failed", "sent"]
    assert "statement dirty cannot be rendered" in next(r.last_error for r in rows if r.state == "failed")
    assert report.failed == {}
    failed = {Path(p.path).relative_to(site.feeds).as_posix(): p for p in report.feeds.problems}
    assert "atom.xml" in failed and "category/broken/atom.xml" in failed
    assert "statement(s) dirty cannot be rendered" in failed["atom.xml"].message
    assert "category/other/atom.xml" not in failed
    other = feedparser.parse((site.feeds / "category" / "other" / "atom.xml").read_bytes())
    assert [e.title for e in other.entries] == ["Good news"]
    # The stages after the feeds ran: the good statement's mail was planned and sent.
    with app.db.read() as conn:
        assert {row.statement_id for row in conn.execute(select(editions.c.statement_id))} >= {"good"}
    assert report.stages["send-email"]["sent"] >= 1
    # Not recorded as written: the documents are tried again at the next build, and still fail alone.
    again = build(app)
    assert {Path(p.path).name for p in again.feeds.problems} >= {"atom.xml"}


def tick_with_a_bad_revision(site: Site, app: Any) -> Any:
    """A tick after a revision no source can make any more (as if a bug let one through), and a good statement."""
    with app.db.write() as conn:
        reader = NewSubscriber("reader@example.org", ("en",), (), Frequency.IMMEDIATE, True, "t")
        subscriber_store.add(conn, reader, app.clock())
        fingerprint = unchanged_file(site, "dirty")
        store_as_before(conn, app.config.site, dirty(categories=("Broken",), fingerprint=fingerprint), app.clock())
    site.statement("good.md", "Good news", "2026-11-26T14:00:00+03:00", "Fine.", categories=["Other"])
    return tick(app)


def test_once_exits_0_and_says_what_was_skipped(site, make_app):
    app = make_app(site)
    tick(app)
    with app.db.write() as conn:
        store_as_before(conn, app.config.site, dirty(fingerprint=unchanged_file(site, "dirty")), app.clock())
    app.close()
    result = CliRunner().invoke(main, ["--config", str(site.root / "config.toml"), "once"])
    assert result.exit_code == 0, result.output
    assert "not written: statement(s) dirty cannot be rendered" in result.output
    assert "problem(s) reported above" in result.output


# -- statement HTML through the one allow-list --

HOSTILE = """+++
title = "Hostile"
published = 2026-11-26T14:30:00+03:00
+++

<style>body{display:none} .footer{display:none}</style>

Read [this](javascript:alert(1)), <a href="javascript:alert(2)">this too</a> and <a href="https://example.org/ok" onclick="steal()">that</a>.

<script>alert("feeds")</script>
<iframe src="https://evil.example/"></iframe>
<form action="https://evil.example/"><input name="q"></form>
<base href="https://evil.example/">
<meta http-equiv="refresh" content="0; url=https://evil.example/">
<img src="https://example.org/a.png" onerror="steal()" style="position:fixed;top:0">

<p style="position:fixed;inset:0;background:white" class="footer">Covered</p>
"""
FORBIDDEN = ("<script", "<style", "<iframe", "<form", "<input", "<base", "<meta", "onclick", "onerror",
             'href="javascript:', "display:none", "position:fixed", "evil.example")  # fmt: skip


def assert_clean(html: str, where: str) -> None:
    for needle in FORBIDDEN:
        assert needle not in html, f"{needle!r} reached {where}"


def test_statement_html_is_sanitised_before_it_reaches_feeds_mail_and_partners(site, make_app, monkeypatch):
    with AtomPartner(secret_for(monkeypatch, "PARTNER_A_SECRET")) as partner:
        app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_A_SECRET", license="full"))
        with app.db.write() as conn:
            new = NewSubscriber("reader@example.org", ("en",), (), Frequency.IMMEDIATE, True, "test")
            subscriber_store.add(conn, new, app.clock())
        site.write("hostile.md", HOSTILE)
        tick(app)
        (push,) = partner.accepted
    assert_every_feed_is_valid(site)
    atom = feedparser.parse((site.feeds / "atom.xml").read_bytes(), sanitize_html=False)
    (entry,) = atom.entries
    assert_clean(entry.content[0].value, "the Atom feed")
    assert '<a href="https://example.org/ok">that</a>' in entry.content[0].value
    assert "<p>Covered</p>" in entry.content[0].value  # its text stays; its style and class do not
    assert 'src="https://example.org/a.png"' in entry.content[0].value
    assert_clean((site.feeds / "feed.json").read_text(encoding="utf-8"), "the JSON feed")
    assert_clean((site.feeds / "rss.xml").read_text(encoding="utf-8"), "the RSS feed")
    payload = feedparser.parse(push.payload, sanitize_html=False).entries[0]
    assert_clean(payload.content[0].value, "the partner")
    (path,) = (site.root / "outbox").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    html = str(message.get_body(("html",)).get_content())  # type: ignore[union-attr]
    body = lxml_html.fromstring(html).find("body")
    assert body is not None
    assert_clean(lxml_html.tostring(body, encoding="unicode"), "the mail's body")
    # The footer is there, the layout's own and only one, visible, with its unsubscribe link.
    (footer,) = body.find_class("footer")
    assert "display" not in footer.get("style", "") and "Unsubscribe" in footer.text_content()
    assert "this" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


@pytest.mark.parametrize("suffix", [".md", ".html"])
def test_one_allow_list_for_both_kinds_of_statement(sqlite_site, make_app, suffix):
    app = make_app(sqlite_site)
    body = HOSTILE.split("+++", 2)[2]
    sqlite_site.write(f"hostile{suffix}", HOSTILE.split("+++\n\n", 1)[0] + "+++\n\n" + body)
    build(app)
    with app.db.read() as conn:
        (row,) = conn.execute(select(revisions.c.body_html)).all()
    assert_clean(row.body_html, f"the stored {suffix} body")
