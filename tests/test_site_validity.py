"""Every page of the site is valid HTML (the Nu Html Checker) and has no axe-core violations at WCAG 2.1 AA.

The site has what a real one has: statements in two languages that translate
each other, categories, an archive page behind each front page (three
statements a page), a retracted statement's notice, and a mailed edition in
the newsletter archive. Every HTML file the build wrote is checked, as
written; axe runs on each in Chromium, served by ``syndicate serve``'s server.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_console_validity import _tools, axe_violations, nu_html_check, served
from test_email_delivery import add_subscribers
from test_web_browser import browser  # noqa: F401 - the browser fixture

from syndicate.app import build_app
from syndicate.config import load
from syndicate.pipeline import tick

pytestmark = pytest.mark.slow


@pytest.fixture
def built(sqlite_site: Any) -> Any:
    _tools()
    site = sqlite_site
    for n in range(7):
        site.statement(f"s{n}.md", f"Statement {n}", f"2026-11-{10 + n}T10:00:00+03:00",
                       f"Body of *statement* {n}.\n\n> A quote.", categories=["News"] if n % 2 else ["Speeches"])  # fmt: skip
    site.statement("tr.md", "Açıklama", "2026-11-18T10:00:00+03:00", "Türkçe metin.", lang="tr", translation_of="s6")
    site.statement("gone.md", "To be withdrawn", "2026-11-19T10:00:00+03:00", "Soon gone.")
    text = site.config_text().replace('rights = "All rights', 'per_page = 3\nrights = "All rights')
    (site.root / "config.toml").write_text(text)
    app = build_app(load(site.root / "config.toml"), clock=site.clock)
    tick(app)
    add_subscribers(app, ["reader@example.org"])
    site.statement("mailed.md", "Mailed news", (site.clock.now - timedelta(minutes=5)).isoformat(), "**Mailed**.")
    tick(app)
    site.statement("gone.md", "To be withdrawn", "2026-11-19T10:00:00+03:00", "Soon gone.", retracted=True)
    tick(app)
    yield app
    app.close()


def html_pages(app: Any) -> dict[str, Path]:
    root = app.config.site.dir
    return {"/" + str(p.relative_to(root)).removesuffix("index.html"): p for p in sorted(root.rglob("*.html"))}


def test_every_page_of_the_site_is_valid_html(built: Any) -> None:
    pages = html_pages(built)
    assert {"/", "/page/1/", "/lang/tr/", "/category/news/", "/statements/gone/", "/newsletters/"} <= set(pages)
    assert any(path.startswith("/newsletters/") and path[13:-1].isdigit() for path in pages), "an edition"
    checked = nu_html_check(pages.values())
    assert checked.returncode == 0, checked.stderr


def test_every_page_of_the_site_has_no_axe_violations(built: Any, browser: Any) -> None:  # noqa: F811
    found: dict[str, list[str]] = {}
    with served(built) as url:
        context = browser.new_context(bypass_csp=True)  # axe is injected as a script of the test's own
        page = context.new_page()
        for path in html_pages(built):
            answer = page.goto(f"{url}{path}")
            assert answer is not None and answer.status in (200, 410), path
            found[path] = axe_violations(page)
        context.close()
    assert found == {path: [] for path in found}
