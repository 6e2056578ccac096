"""Every page: one layout, a language, labels, feed autodiscovery, safe headers; the parts the pages stand on;
and the server, both in a thread and as ``syndicate serve``."""

from __future__ import annotations

import os
import re
import signal
import string
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from conftest import ROOT, Site
from lxml import html as lxml_html
from web_support import WebSite, make_web
from werkzeug.datastructures import LanguageAccept

from syndicate.app import App
from syndicate.pipeline import build
from syndicate.subscribers import Status
from syndicate.tokens import Secrets, confirm_expiry
from syndicate.web import i18n
from syndicate.web.forms import FormGuard
from syndicate.web.limits import RateLimiter
from syndicate.web.server import WebServer


@pytest.fixture
def web(sqlite_site: Site, make_app: Callable[[Site], App]) -> WebSite:
    sqlite_site.statement("one.md", "One", "2026-11-20T10:00:00Z", categories=["News"])
    app = make_app(sqlite_site)
    build(app)
    return make_web(app)


def nodes(element: Any, query: str) -> list[Any]:
    """The XPath ``query`` on ``element`` (lxml's own typing is too loose to check against)."""
    return list(element.xpath(query))


def every_page(web: WebSite) -> Iterator[tuple[str, str, str]]:
    """(method, path, data) of a page of each kind."""
    reader = web.add("reader@example.org")
    pending = web.add("pending@example.org", Status.PENDING)
    yield "GET", "/subscribe", ""
    yield "POST", "/subscribe", "email=x@example.org"  # refused: no token
    yield "GET", f"/confirm/{web.sign('confirm', pending, confirm_expiry(web.app.clock()))}", ""
    yield "GET", "/confirm/c1.0.forged", ""
    yield "GET", f"/unsubscribe/{web.sign('unsubscribe', reader)}", ""
    yield "GET", f"/preferences/{web.sign('preferences', reader)}", ""
    yield "POST", f"/unsubscribe/{web.sign('unsubscribe', reader)}", "List-Unsubscribe=One-Click"
    yield "GET", "/no/such/page", ""
    yield "DELETE", "/subscribe", ""


def test_every_page_has_the_layout_a_language_feeds_and_safe_headers(web: WebSite) -> None:
    for method, path, data in list(every_page(web)):
        response = web.client.open(path, method=method, data=data, content_type="application/x-www-form-urlencoded")
        where = f"{method} {path}"
        assert response.mimetype == "text/html", where
        page = lxml_html.fromstring(response.data)
        assert page.get("lang") in ("en", "tr"), where
        assert nodes(page, "//meta[@name='viewport']"), where
        assert nodes(page, "//title/text()"), where
        assert len(nodes(page, "//h1")) == 1, where
        feeds = nodes(page, "//head/link[@rel='alternate'][@type='application/atom+xml']/@href")
        assert "https://example.org/feeds/atom.xml" in feeds, where
        assert response.headers["Referrer-Policy"] == "no-referrer", where
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], where


def test_every_field_has_a_label_and_every_group_a_legend(web: WebSite) -> None:
    reader = web.add("reader@example.org")
    for path in ("/subscribe", f"/preferences/{web.sign('preferences', reader)}"):
        page = lxml_html.fromstring(web.client.get(path).data)
        fields = nodes(page, "//input[not(@type='hidden')]")
        assert fields, path
        for field in fields:
            labels = nodes(page, f"//label[@for='{field.get('id')}']")
            assert len(labels) == 1, (path, field.attrib)
            assert labels[0].text_content().strip(), (path, field.attrib)
        for group in nodes(page, "//fieldset"):
            assert nodes(group, "./legend/text()"), path


def test_an_error_is_announced_and_tied_to_its_field(web: WebSite) -> None:
    token = web.form_token("/subscribe")
    response = web.client.post("/subscribe", data={"email": "nope", "form_token": token})
    page = lxml_html.fromstring(response.data)
    [field] = nodes(page, "//input[@name='email']")
    assert field.get("aria-invalid") == "true"
    assert "form-errors" in field.get("aria-describedby").split()
    assert nodes(page, "//*[@id='form-errors'][@role='alert']")
    assert field.get("value") == "nope", "what was typed is kept"


def test_the_language_switch_links_to_every_language_the_pages_speak(web: WebSite) -> None:
    page = lxml_html.fromstring(web.client.get("/subscribe?lang=tr").data)
    assert page.get("lang") == "tr"
    [english] = nodes(page, "//a[@hreflang='en']/@href")
    assert urljoin("http://localhost/subscribe?lang=tr", english) == "http://localhost/subscribe?lang=en"
    assert nodes(page, "//span[@aria-current='page']/text()") == ["Türkçe"]


def resolved_as_a_browser_does(base: str, href: str) -> str:
    """The host ``href`` on the page at ``base`` leads to, as browsers resolve it (the WHATWG URL standard:
    in an http(s) URL a backslash is a slash, and two or more slashes at the start begin a host)."""
    link = href.replace("\\", "/")
    if link.startswith("//"):
        return urlsplit("http://" + link.lstrip("/")).netloc
    return urlsplit(urljoin(base, link)).netloc


@pytest.mark.parametrize(
    ("sent", "path"),
    [
        ("/%5Cevil.example/", "/\\evil.example/"),
        ("/%5C%5Cevil.example/", "/\\\\evil.example/"),
        ("/%5C/evil.example/", "/\\/evil.example/"),
        ("//evil.example/", "//evil.example/"),
        ("//subscribe", "//subscribe"),  # a page that exists, reached with a doubled slash
        ("/subscribe/%5Cevil.example", "/subscribe/\\evil.example"),
    ],
)
def test_no_link_on_a_page_leaves_the_site_whatever_path_was_asked_for(web: WebSite, sent: str, path: str) -> None:
    # PATH_INFO as the server hands it over (decoded), with the Host header a client chose.
    response = web.client.get("/", environ_overrides={"PATH_INFO": path}, headers={"Host": "localhost"})
    page = lxml_html.fromstring(response.data)
    base = f"http://localhost{sent}"
    languages = nodes(page, "//a[@hreflang]/@href")
    assert languages, "the page has its language links"
    for href in nodes(page, "//a/@href | //link/@href"):
        assert resolved_as_a_browser_does(base, href) in ("localhost", "example.org"), (sent, href)


def test_a_page_in_a_language_with_feeds_of_its_own_links_them(web: WebSite) -> None:
    page = lxml_html.fromstring(web.client.get("/subscribe?lang=en").data)
    assert "https://example.org/feeds/lang/en/atom.xml" in nodes(page, "//head/link[@rel='alternate']/@href")


def test_a_body_too_large_is_refused_before_it_is_read(web: WebSite) -> None:
    response = web.client.post("/subscribe", data={"email": "x" * 100_000})
    assert response.status_code == 413


# -- strings --


def test_every_language_has_every_string_with_the_same_placeholders() -> None:
    fields = string.Formatter()
    english = i18n.STRINGS["en"]
    for lang, table in i18n.STRINGS.items():
        assert table.keys() == english.keys(), lang
        for key, text in table.items():
            names = {name for _, name, _, _ in fields.parse(text) if name}
            assert names == {name for _, name, _, _ in fields.parse(english[key]) if name}, (lang, key)


@pytest.mark.parametrize(
    ("explicit", "preferred", "accept", "site", "chosen"),
    [
        ("tr", ("en",), "en", "en", "tr"),  # asked for in the URL
        ("xx", (), "tr", "en", "tr"),  # a language without strings is ignored
        (None, ("tr", "en"), "en", "en", "en"),  # the browser picks among the subscriber's
        (None, ("tr",), "en", "en", "tr"),  # the subscriber's own beats the browser
        (None, ("ru",), "tr-TR,tr;q=0.9", "en", "tr"),  # no strings for theirs: the browser's
        (None, (), "", "tr", "tr"),  # the site's
        (None, (), "", "ru", "en"),  # English at last
    ],
)
def test_how_a_page_picks_its_language(
    explicit: str | None, preferred: tuple[str, ...], accept: str, site: str, chosen: str
) -> None:
    accepted = LanguageAccept([(tag.split(";")[0], 1.0) for tag in accept.split(",") if tag])
    assert i18n.choose(explicit, preferred, accepted, site) == chosen


# -- the parts --


class Seconds:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_rate_limiter_refills_and_forgets_the_oldest_keys() -> None:
    clock = Seconds()
    limiter = RateLimiter(limit=2, window=60, clock=clock, max_keys=100)
    assert [limiter.hit("a") for _ in range(3)] == [0, 0, 30]
    clock.now += 30
    assert limiter.hit("a") == 0
    for i in range(10_000):
        limiter.hit(f"client-{i}")
    assert len(limiter) == 100


def test_form_tokens_are_bound_to_form_binding_and_time_and_survive_a_rotation() -> None:
    clock = Seconds()
    old = FormGuard(Secrets(b"old"), clock, lifetime=600)
    token = old.issue("subscribe", "cookie-1")
    rotated = FormGuard(Secrets(b"new", (b"old",)), clock, lifetime=600)
    assert rotated.valid("subscribe", "cookie-1", token)
    assert not rotated.valid("preferences", "cookie-1", token)
    assert not rotated.valid("subscribe", "cookie-2", token)
    assert not rotated.valid("subscribe", "", token)
    assert not FormGuard(Secrets(b"other"), clock).valid("subscribe", "cookie-1", token)
    clock.now += 601
    assert not rotated.valid("subscribe", "cookie-1", token)


# -- the server --


def test_the_server_answers_over_http_and_stops_cleanly(web: WebSite) -> None:
    server = WebServer(web.flask, "127.0.0.1:0", threads=2)
    server.start()
    try:
        with urllib.request.urlopen(f"{server.url}/subscribe", timeout=10) as response:
            assert response.status == 200
            assert b'<html lang="en">' in response.read()
    finally:
        server.stop()
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        urllib.request.urlopen(f"{server.url}/subscribe", timeout=10)


def test_a_taken_address_is_a_clear_error(web: WebSite) -> None:
    first = WebServer(web.flask, "127.0.0.1:0")
    first.start()
    try:
        taken = first.url.removeprefix("http://")
        with pytest.raises(Exception, match=r"web.bind: cannot listen on 127.0.0.1:\d+"):
            WebServer(web.flask, taken).start()
    finally:
        first.stop()


@pytest.mark.slow
def test_syndicate_serve_serves_until_sigterm(sqlite_site: Site) -> None:
    sqlite_site.config()  # writes config.toml
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "syndicate", "--config", str(sqlite_site.root / "config.toml")]
    with subprocess.Popen(
        [*command, "serve", "--bind", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        try:
            assert process.stderr is not None
            line = process.stderr.readline()
            found = re.search(r"serving on (http://127\.0\.0\.1:\d+)", line)
            assert found, line + process.stderr.read()
            with urllib.request.urlopen(f"{found[1]}/healthz", timeout=10) as response:
                assert response.status == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()


def test_serve_refuses_a_bad_bind(sqlite_site: Site) -> None:
    from click.testing import CliRunner

    from syndicate.cli import main

    sqlite_site.config()
    result = CliRunner().invoke(main, ["--config", str(sqlite_site.root / "config.toml"), "serve", "--bind", "nowhere"])
    assert result.exit_code == 2
    assert "host:port" in result.output


def test_every_web_template_the_pages_need_is_in_the_project() -> None:
    from syndicate.web.pages import REQUIRED_TEMPLATES

    folder = ROOT / "templates" / "web"
    shipped = {f"web/{p.relative_to(folder)}" for p in folder.rglob("*") if p.is_file()}
    assert set(REQUIRED_TEMPLATES) == shipped
