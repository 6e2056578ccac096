"""The statements' own pages: what a build writes, what the server answers, and how a page lives and dies.

Links are followed as a reader would: every ``href`` and ``src`` on every page
(and every ``alternate`` link of every feed, read by feedparser) must land on
a page that was built, on a feed file, or outside the site. The JSON-LD and
OpenGraph are read back by extruct, an independent extractor of structured
data.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import extruct
import feedparser
import pytest
from lxml import html as lxml_html
from test_email_delivery import add_subscribers

from syndicate.pipeline import build, tick
from syndicate.text import slugify
from syndicate.web import create_app
from syndicate.web.site import file_of

SITE_URL = "https://example.org"


def pages_of(root: Path) -> dict[str, Path]:
    """Every HTML page under ``root``, by its path there."""
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*.html"))}


def links_of(page: Path, base: str) -> list[str]:
    """Every link and source on a page, made absolute against the page's own URL."""
    tree = lxml_html.fromstring(page.read_bytes())
    found = [str(v) for el in tree.iter() if isinstance(el.tag, str) for k, v in el.attrib.items()
             if k in ("href", "src")]  # fmt: skip
    return [urljoin(base, link) for link in found]


def lands(url: str, app: Any) -> bool:
    """Whether ``url`` is a built page, a feed file, one of the web's own pages, or outside the site."""
    config = app.config
    if url.startswith(config.feeds_base_url):
        return (config.feeds.dir / url.removeprefix(config.feeds_base_url)).is_file()
    if url.startswith(config.web_base_url + "/"):
        return url.removeprefix(config.web_base_url) == "/subscribe"
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != SITE_URL:
        return parts.scheme in ("http", "https", "mailto")
    found = file_of(unquote(parts.path).lstrip("/") or "index.html")
    return found is not None and (config.site.dir / found[0]).is_file()


def url_of(path: str) -> str:
    return f"{SITE_URL}/{path.removesuffix('index.html')}"


@pytest.fixture
def statements(site: Any) -> Any:
    site.statement("council.md", "The council met", "2026-11-20T10:00:00+03:00", "The council **met**.",
                   categories=["News", "United Nations"], author="Murat Özer")  # fmt: skip
    site.statement("konsey.md", "Konsey toplandı", "2026-11-20T11:00:00+03:00", "Konsey toplandı.", lang="tr",
                   translation_of="council", categories=["Haberler", "Новости"])  # fmt: skip
    site.statement("speech.md", "A speech", "2026-11-22T10:00:00+03:00",
                   f"See [the council]({SITE_URL}/statements/council) and [elsewhere](https://other.example/x).",
                   categories=["Speeches"])  # fmt: skip
    site.statement("note.md", "A note", "2026-11-24T10:00:00+03:00", "A short note.")
    return site


def test_a_build_writes_every_page_and_every_link_lands_on_one(statements, make_app):
    app = make_app(statements)
    report = build(app)
    root = app.config.site.dir
    assert not report.failed and not report.site.problems
    assert {"index.html", "lang/en/index.html", "lang/tr/index.html", "category/news/index.html",
            "category/haberler/index.html", "statements/council/index.html", "statements/konsey/index.html",
            "statements/speech/index.html", "statements/note/index.html", "newsletters/index.html",
            } <= set(pages_of(root))  # fmt: skip
    assert (root / "sitemap.xml").is_file() and (root / "robots.txt").is_file()
    for path, page in pages_of(root).items():
        for link in links_of(page, url_of(path)):
            assert lands(link, app), f"{path}: {link} leads nowhere"
    for feed in app.config.feeds.dir.rglob("*.xml"):
        parsed = feedparser.parse(feed.read_bytes())
        assert not parsed.bozo, feed
        for entry in parsed.entries:
            alternates = [x["href"] for x in entry.get("links", []) if x.get("rel") == "alternate"]
            assert alternates and all(lands(a, app) for a in alternates), (feed, alternates)
    front = (root / "index.html").read_text()
    assert front.index("A note") < front.index("A speech") < front.index("The council met"), "newest first"
    assert "Our Activities" in front and "All rights reserved; quote only with an active link." in front


def test_a_statement_page_carries_its_news_article_open_graph_dates_and_quote_block(statements, make_app):
    app = make_app(statements)
    build(app)
    page = (app.config.site.dir / "statements/council/index.html").read_text()
    data = extruct.extract(page, base_url=f"{SITE_URL}/statements/council", syntaxes=["json-ld", "opengraph"])
    (article,) = data["json-ld"]
    assert article["@type"] == "NewsArticle" and article["@context"] == "https://schema.org"
    assert article["headline"] == "The council met" and article["inLanguage"] == "en"
    assert article["url"] == f"{SITE_URL}/statements/council"
    assert article["datePublished"] == "2026-11-20T07:00:00+00:00"
    assert article["author"] == {"@type": "Person", "name": "Murat Özer"}
    assert article["publisher"]["name"] == "Example Org" and article["keywords"] == ["News", "United Nations"]
    (graph,) = data["opengraph"]
    properties = graph["properties"]
    assert ("og:type", "article") in properties and ("og:title", "The council met") in properties
    assert ("og:url", f"{SITE_URL}/statements/council") in properties
    assert [v for k, v in properties if k == "article:tag"] == ["News", "United Nations"]
    assert '<link rel="canonical" href="https://example.org/statements/council">' in page
    assert '<link rel="alternate" type="application/atom+xml" href="https://example.org/feeds/atom.xml"' in page
    assert '<time datetime="2026-11-20T07:00:00+00:00">20 November 2026</time>' in page
    assert "Murat Özer" in page and "Updated" not in page
    assert "&lt;blockquote cite=&#34;https://example.org/statements/council&#34;&gt;" in page, "the quote block"
    assert 'rel="next"' in page and 'href="/statements/speech"' in page, "the next statement in its language"


def test_translations_link_each_other_with_hreflang_in_the_pages_and_the_sitemap(statements, make_app):
    app = make_app(statements)
    build(app)
    root = app.config.site.dir
    for own, other, lang in (("council", "konsey", "tr"), ("konsey", "council", "en")):
        page = (root / f"statements/{own}/index.html").read_text()
        assert f'<link rel="alternate" hreflang="{lang}" href="{SITE_URL}/statements/{other}">' in page
        assert f'href="/statements/{other}" lang="{lang}" hreflang="{lang}"' in page
    konsey = (root / "statements/konsey/index.html").read_text()
    assert '<html lang="tr">' in konsey and "Yayımlanma" in konsey, "a Turkish page speaks Turkish"
    sitemap = (root / "sitemap.xml").read_bytes()
    from lxml import etree

    tree = etree.fromstring(sitemap)
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9", "x": "http://www.w3.org/1999/xhtml"}
    council = tree.xpath("//s:url[s:loc='https://example.org/statements/council']", namespaces=ns)[0]
    assert sorted(council.xpath("x:link/@hreflang", namespaces=ns)) == ["en", "tr"]
    locs = tree.xpath("//s:loc/text()", namespaces=ns)
    assert f"{SITE_URL}/statements/note" in locs and f"{SITE_URL}/" in locs
    assert (root / "robots.txt").read_text().endswith(f"Sitemap: {SITE_URL}/sitemap.xml\n")


def test_an_embargoed_statement_has_no_page_until_its_minute(site, make_app):
    due = site.clock.now + timedelta(minutes=30)
    site.statement("later.md", "Embargoed", due.isoformat())
    app = make_app(site)
    client = create_app(app).test_client()
    tick(app)
    assert not (app.config.site.dir / "statements/later/index.html").exists()
    assert client.get("/statements/later").status_code == 404
    assert "Embargoed" not in client.get("/").get_data(as_text=True)
    site.clock.now = due
    tick(app)
    assert client.get("/statements/later").status_code == 200
    assert "Embargoed" in client.get("/").get_data(as_text=True)


def test_a_retracted_statement_answers_410_and_leaves_the_indexes_and_its_neighbours(statements, make_app):
    app = make_app(statements)
    client = create_app(app).test_client()
    tick(app)
    statements.write("speech.md", (statements.statements / "speech.md").read_text().replace(
        "+++\n\n", "retracted = true\n+++\n\n", 1))  # fmt: skip
    tick(app)
    gone = client.get("/statements/speech")
    assert gone.status_code == 410 and "Withdrawn" in gone.get_data(as_text=True)
    assert gone.data == (app.config.site.dir / "statements/speech/index.html").read_bytes()
    assert "A speech" not in client.get("/").get_data(as_text=True)
    assert f"{SITE_URL}/statements/speech" not in client.get("/sitemap.xml").get_data(as_text=True)
    council = client.get("/statements/council").get_data(as_text=True)
    assert 'href="/statements/note" rel="next"' in council, "its neighbours now link past it"


def test_an_updated_statement_shows_both_dates(statements, make_app):
    app = make_app(statements)
    tick(app)
    statements.clock.advance(days=2)
    statements.statement("note.md", "A note", "2026-11-24T10:00:00+03:00", "A short note, corrected.")
    tick(app)
    page = (app.config.site.dir / "statements/note/index.html").read_text()
    assert 'Published</span> <time datetime="2026-11-24T07:00:00+00:00">24 November 2026</time>' in page
    assert 'Updated</span> <time datetime="2026-11-28T12:00:00+00:00">28 November 2026</time>' in page
    assert "A short note, corrected." in page


def test_the_server_answers_with_the_files_bytes_and_their_validators(statements, make_app):
    app = make_app(statements)
    build(app)
    client = create_app(app).test_client()
    root = app.config.site.dir
    for path, name in (("/", "index.html"), ("/statements/council", "statements/council/index.html"),
                       ("/statements/council/", "statements/council/index.html"), ("/lang/tr/", "lang/tr/index.html"),
                       ("/newsletters/", "newsletters/index.html"), ("/sitemap.xml", "sitemap.xml"),
                       ("/robots.txt", "robots.txt")):  # fmt: skip
        answer = client.get(path)
        assert answer.status_code == 200 and answer.data == (root / name).read_bytes(), path
        assert answer.headers["ETag"] and answer.headers["Last-Modified"]
        again = client.get(path, headers={"If-None-Match": answer.headers["ETag"]})
        assert again.status_code == 304 and again.data == b""
        since = client.get(path, headers={"If-Modified-Since": answer.headers["Last-Modified"]})
        assert since.status_code == 304
    page = client.get("/statements/council")
    assert (
        page.content_type == "text/html; charset=utf-8" and "script-src" not in page.headers["Content-Security-Policy"]
    )
    assert client.get("/sitemap.xml").content_type == "application/xml"
    (root / "secret.txt").write_text("not a page")
    for path in ("/statements/nope", "/secret.txt", "/statements/../../config.toml", "/lang/../syndicate.db",
                 "/page/0/", "/statements/council/x.html", "/category/a.b/"):  # fmt: skip
        assert client.get(path).status_code == 404, path
    assert client.get("/newsletters").status_code == 200, "a folder without its slash is no redirect"
    cyrillic = client.get("/category/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8/")
    assert cyrillic.status_code == 200 and "Новости" in cyrillic.get_data(as_text=True)


def test_missing_site_templates_fail_the_site_stage_alone_and_check_names_them(statements, make_app):
    import shutil

    from click.testing import CliRunner

    from syndicate.cli import main

    shutil.rmtree(statements.root / "templates" / "site")
    app = make_app(statements)
    report = build(app)
    assert "render-site" in report.failed and "site/statement.html" in report.failed["render-site"]
    assert (app.config.feeds.dir / "atom.xml").is_file(), "the feeds are written all the same"
    checked = CliRunner().invoke(main, ["--config", str(statements.root / "config.toml"), "check"])
    assert checked.exit_code == 1 and "site/layout.html: error: required template is missing" in checked.output


def test_pages_false_writes_and_serves_no_page_and_leaves_the_front_page_to_the_subscribe_form(site, make_app):
    site.statement("news.md", "News", "2026-11-20T10:00:00+03:00")
    text = site.config_text().replace('rights = "All rights', 'pages = false\nrights = "All rights')
    (site.root / "config.toml").write_text(text)
    from syndicate.app import build_app
    from syndicate.config import load

    app = build_app(load(site.root / "config.toml"), clock=site.clock)
    try:
        report = tick(app)
        assert report.site.written == [] and not app.config.site.dir.exists()
        client = create_app(app).test_client()
        assert client.get("/statements/news").status_code == 404
        assert 'action="/subscribe"' in client.get("/").get_data(as_text=True)
    finally:
        app.close()


def test_one_new_statement_rewrites_its_page_its_neighbour_and_the_indexes_it_is_in(site, make_app):
    for n in range(30):
        site.statement(f"s{n:02}.md", f"Statement {n}", f"2026-11-{1 + n // 2:02}T{10 + n % 2}:00:00+03:00",
                       categories=["News"] if n % 2 else ["Speeches"])  # fmt: skip
    text = site.config_text().replace('rights = "All rights', 'per_page = 10\nrights = "All rights')
    (site.root / "config.toml").write_text(text)
    from syndicate.app import build_app
    from syndicate.config import load

    app = build_app(load(site.root / "config.toml"), clock=site.clock)
    try:
        first = build(app)
        assert len(first.site.written) > 30 and "page/3/index.html" in first.site.written
        assert build(app).site.written == [], "nothing changed, nothing written"
        site.statement("s30.md", "Statement 30", "2026-11-25T10:00:00+03:00", categories=["News"])
        after = build(app)
        assert sorted(after.site.written) == sorted([
            "statements/s30/index.html", "statements/s29/index.html",  # the new page and its older neighbour
            "index.html", "lang/en/index.html", "category/news/index.html",  # the front pages it is on
            "sitemap.xml",
        ]), "the archive pages behind the front pages are sealed: they never change"  # fmt: skip
    finally:
        app.close()


def test_the_newsletter_archive_shows_each_edition_as_mailed_without_anyone_in_it(statements, make_app):
    app = make_app(statements)
    tick(app)
    add_subscribers(app, ["ada@example.org", "bob@example.org"])
    statements.statement("fresh.md", "Fresh news", (statements.clock.now - timedelta(minutes=5)).isoformat(),
                         "Fresh **news** body.")  # fmt: skip
    tick(app)
    tick(app)
    root = app.config.site.dir
    archive = (root / "newsletters/index.html").read_text()
    (edition,) = re.findall(r'href="/newsletters/(\d+)/"', archive)
    mailed = (root / f"newsletters/{edition}/index.html").read_text()
    assert "Fresh <strong>news</strong> body." in mailed and "From the newsletter archive of Example Org" in mailed
    for personal in ("ada@example.org", "bob@example.org", "/unsubscribe/", "/preferences/", "syndicate.invalid",
                     "SYNDICATEUNSUBSCRIBEX", "syndicatemessageidx"):  # fmt: skip
        assert personal not in mailed, personal
    assert 'href="/newsletters/"' in mailed
    letters = sorted((app.config.email.outbox).rglob("*.eml"))
    assert letters, "the edition was mailed"
    letter = message_from_bytes(letters[-1].read_bytes(), policy=default_policy)
    html = letter.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = letter.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert re.search(r'<a href="https://example.org/statements/fresh"[^>]*>Read it on the web</a>', html)
    assert "Read it on the web: https://example.org/statements/fresh" in text
    assert (root / "statements/fresh/index.html").is_file(), "and the link leads to its page"
    statements.statement("fresh.md", "Fresh news", (statements.clock.now - timedelta(minutes=5)).isoformat(),
                         "Fresh **news** body.", retracted=True)  # fmt: skip
    tick(app)
    client = create_app(app).test_client()
    assert client.get(f"/newsletters/{edition}/").status_code == 410, "a retracted statement's edition is gone too"
    assert f'href="/newsletters/{edition}/"' not in client.get("/newsletters/").get_data(as_text=True)


def test_hostile_titles_and_categories_stay_text_and_the_json_ld_stays_data(site, make_app):
    title = 'Hi </script><script>alert(1)</script> & "q"'
    site.statement("bad.md", title, "2026-11-20T10:00:00+03:00", "Body.", categories=["<b>x</b> & y"])
    app = make_app(site)
    build(app)
    page = (app.config.site.dir / "statements/bad/index.html").read_text()
    assert "<script>alert" not in page and page.count("<script") == 1
    (blob,) = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    assert json.loads(blob)["headline"] == title
    tree = lxml_html.fromstring(page)
    assert tree.findtext(".//h1") == title
    category = (app.config.site.dir / f"category/{slugify('<b>x</b> & y')}/index.html").read_text()
    assert "<h1>Statements on &lt;b&gt;x&lt;/b&gt; &amp; y</h1>" in category


def test_an_index_with_no_statement_left_and_an_archive_page_no_longer_full_are_taken_away(site, make_app):
    for n in range(4):
        site.statement(f"s{n}.md", f"Statement {n}", f"2026-11-{10 + n}T10:00:00+03:00", categories=["News"])
    site.statement("lone.md", "Lonely", "2026-11-15T10:00:00+03:00", categories=["Rare"], lang="de")
    text = site.config_text().replace('rights = "All rights', 'per_page = 2\nrights = "All rights')
    (site.root / "config.toml").write_text(text)
    from syndicate.app import build_app
    from syndicate.config import load

    app = build_app(load(site.root / "config.toml"), clock=site.clock)
    try:
        build(app)
        root = app.config.site.dir
        client = create_app(app).test_client()
        assert (root / "category/rare/index.html").is_file() and (root / "lang/de/index.html").is_file()
        assert (root / "category/news/page/2/index.html").is_file()
        site.statement("lone.md", "Lonely", "2026-11-15T10:00:00+03:00", categories=["Rare"], lang="de",
                       retracted=True)  # fmt: skip
        site.statement("s3.md", "Statement 3", "2026-11-13T10:00:00+03:00", categories=["Other"])
        report = build(app)
        assert not report.site.problems
        for gone in ("category/rare/index.html", "lang/de/index.html", "category/news/page/2/index.html"):
            assert not (root / gone).exists(), gone
            assert client.get("/" + gone.removesuffix("index.html")).status_code == 404, gone
        assert sorted(report.site.removed) == ["category/news/page/2/index.html", "category/rare/index.html",
                                               "lang/de/index.html"]  # fmt: skip
        assert client.get("/statements/lone").status_code == 410, "a statement's own page stays, as a notice"
        assert (root / "category/other/index.html").is_file()
    finally:
        app.close()


def test_a_digest_holding_a_retracted_statement_leaves_the_archive(site, make_app):
    from test_editions import add, installed

    app = installed(site, make_app, '[email.digest]\ndaily = "09:00"\n')
    add(app, "daily@example.org", frequency="daily")
    site.statement("plan.md", "Leaked plan", "2026-11-26T14:00:00+03:00", "CONFIDENTIAL-TEXT")
    site.statement("fine.md", "Fine news", "2026-11-26T14:30:00+03:00", "Public text.")
    tick(app)
    site.clock.advance(days=1)  # past the next daily digest
    tick(app)
    client = create_app(app).test_client()
    archive = client.get("/newsletters/").get_data(as_text=True)
    (digest,) = re.findall(r'href="/newsletters/(\d+)/"', archive)
    assert "CONFIDENTIAL-TEXT" in client.get(f"/newsletters/{digest}/").get_data(as_text=True)
    site.statement("plan.md", "Leaked plan", "2026-11-26T14:00:00+03:00", "CONFIDENTIAL-TEXT", retracted=True)
    tick(app)
    withdrawn = client.get(f"/newsletters/{digest}/")
    assert withdrawn.status_code == 410 and "CONFIDENTIAL-TEXT" not in withdrawn.get_data(as_text=True)
    assert f"/newsletters/{digest}/" not in client.get("/newsletters/").get_data(as_text=True)


ODD_BASE = """<!DOCTYPE html>
<html lang="{{ lang }}" data-for="{{ recipient.email }}">
<head>
<meta charset="utf-8">
<title>{{ subject }} for {{ recipient.email }}</title>
<meta name="x-unsubscribe" content="{{ recipient.unsubscribe_url }}">
</head>
<body data-reader="{{ recipient.email }}">
<!-- sent to {{ recipient.email }} -->
Dear {{ recipient.email }},
<table><tr><td>
{% block content %}{% endblock %}
<span>Sent to {{ recipient.email }}</span> <a href="{{ recipient.preferences_url }}">your settings</a>
{% block attribution %}{% endblock %}
</td></tr></table>
<div>{% block reason %}{% endblock %}</div>
</body>
</html>
"""


def test_the_archive_takes_out_what_is_personal_wherever_a_template_put_it_and_no_more(statements, make_app):
    (statements.root / "templates/email/base.html").write_text(ODD_BASE)
    app = make_app(statements)
    tick(app)
    add_subscribers(app, ["ada@example.org"])
    statements.statement("fresh.md", "Fresh news", (statements.clock.now - timedelta(minutes=5)).isoformat(),
                         "Fresh **news** body.")  # fmt: skip
    tick(app)
    root = app.config.site.dir
    (edition,) = re.findall(r'href="/newsletters/(\d+)/"', (root / "newsletters/index.html").read_text())
    mailed = (root / f"newsletters/{edition}/index.html").read_text()
    assert "Fresh <strong>news</strong> body." in mailed, "the table cell holding the mail stays"
    assert "First published by" in mailed and "<title>" in mailed
    for personal in ("ada@example.org", "Dear", "Sent to", "your settings", "/preferences/", "/unsubscribe/",
                     "syndicate.invalid", "SYNDICATE", "sent to"):  # fmt: skip
        assert personal not in mailed, personal


def test_an_edition_that_would_be_all_personal_is_withheld_and_says_so(statements, make_app):
    (statements.root / "templates/email/statement.html").write_text(
        '{% extends "email/base.html" %}{% block content %}<p>{{ recipient.email }}: {{ entry.title }}</p>'
        "{% endblock %}{% block attribution %}{% endblock %}"
    )
    base = (statements.root / "templates/email/base.html").read_text()
    (statements.root / "templates/email/base.html").write_text(base.replace("{{ site.title }}</div>", "</div>")
                                                               .replace("{% if site.rights %}", "{% if false %}"))  # fmt: skip
    app = make_app(statements)
    tick(app)
    add_subscribers(app, ["ada@example.org"])
    statements.statement("fresh.md", "Fresh news", (statements.clock.now - timedelta(minutes=5)).isoformat())
    tick(app)
    client = create_app(app).test_client()
    (edition,) = re.findall(r'href="/newsletters/(\d+)/"', client.get("/newsletters/").get_data(as_text=True))
    page = client.get(f"/newsletters/{edition}/").get_data(as_text=True)
    assert "Not in the archive" in page and "ada@example.org" not in page


def test_only_pages_the_build_wrote_are_served_and_a_site_dir_may_not_share_the_statements(site, make_app):
    from syndicate.config import load
    from syndicate.errors import ConfigError

    site.statement("news.md", "News", "2026-11-20T10:00:00+03:00")
    app = make_app(site)
    build(app)
    client = create_app(app).test_client()
    planted = app.config.site.dir / "statements/planted/index.html"
    planted.parent.mkdir(parents=True)
    planted.write_text("<p>not a page the build wrote</p>")
    assert client.get("/statements/planted").status_code == 404
    for folder in (".", "statements", "statements/pages", "templates"):
        text = site.config_text().replace('rights = "All rights', f'dir = "{folder}"\nrights = "All rights')
        (site.root / "config.toml").write_text(text)
        with pytest.raises(ConfigError, match=r"site\.dir"):
            load(site.root / "config.toml")


@pytest.mark.parametrize("statement_id", ["report.txt", "v2.xml", "index.html"])
def test_a_statement_id_ending_like_a_file_name_is_served_at_its_canonical_path(sqlite_site, make_app, statement_id):
    sqlite_site.statement("x.md", "Odd id", "2026-11-20T10:00:00+03:00", id=statement_id)
    app = make_app(sqlite_site)
    build(app)
    client = create_app(app).test_client()
    for path in (f"/statements/{statement_id}", f"/statements/{statement_id}/"):
        answer = client.get(path)
        assert answer.status_code == 200 and "Odd id" in answer.get_data(as_text=True), path
    assert client.get("/statements/" + "a" * 300).status_code == 404, "too long for the file system: 404, not 500"


def test_an_incremental_build_leaves_the_same_site_as_a_build_from_scratch(tmp_path, clock):
    """After adds, a retraction, a change of category and of language, and an index emptied, every page but
    those of the statements that changed (their "Updated" date) is as a first build of the end state makes it."""
    from conftest import ROOT, Site

    from syndicate.app import build_app
    from syndicate.config import load

    def site_at(name: str) -> Site:
        root = tmp_path / name
        (root / "statements").mkdir(parents=True)
        shutil.copytree(ROOT / "templates", root / "templates")
        return Site(root, f"sqlite:///{root / 'syndicate.db'}", clock)

    def configured(site: Site) -> Any:
        text = site.config_text().replace('rights = "All rights', 'per_page = 2\nrights = "All rights')
        (site.root / "config.toml").write_text(text)
        return build_app(load(site.root / "config.toml"), clock=site.clock)

    def files(app: Any) -> dict[str, bytes]:
        root = app.config.site.dir
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    def first_state(site: Site) -> None:
        for n in range(6):
            site.statement(f"s{n}.md", f"Statement {n}", f"2026-11-{10 + n}T10:00:00+03:00",
                           categories=["News"] if n % 2 else ["Speeches"])  # fmt: skip
        site.statement("rare.md", "Rare", "2026-11-17T10:00:00+03:00", categories=["Rare"], lang="de")

    def end_state(site: Site) -> None:
        site.statement("s1.md", "Statement 1", "2026-11-11T10:00:00+03:00", categories=["Speeches"])
        site.statement("s2.md", "Statement 2", "2026-11-12T10:00:00+03:00", categories=["Speeches"], lang="tr")
        site.statement("s6.md", "Statement 6", "2026-11-18T10:00:00+03:00", categories=["News"])
        site.statement("old.md", "Backdated", "2026-11-01T10:00:00+03:00", categories=["News"])

    steps = site_at("steps")
    first_state(steps)
    app = configured(steps)
    try:
        build(app)
        end_state(steps)
        (steps.statements / "rare.md").unlink()
        (steps.statements / "s4.md").unlink()
        build(app)
        stepped = files(app)
    finally:
        app.close()
    fresh = site_at("fresh")
    first_state(fresh)
    end_state(fresh)
    (fresh.statements / "rare.md").unlink()
    (fresh.statements / "s4.md").unlink()
    app = configured(fresh)
    try:
        build(app)
        scratch = files(app)
    finally:
        app.close()
    changed = {"statements/s1/index.html", "statements/s2/index.html", "sitemap.xml"}
    withdrawn = {"statements/rare/index.html", "statements/s4/index.html"}  # 410 notices, never in a fresh site
    assert set(stepped) - withdrawn == set(scratch)
    assert {name for name in scratch if stepped[name] != scratch[name]} <= changed
