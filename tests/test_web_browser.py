"""End to end in a real browser: subscribe through the form, confirm from the mail, unsubscribe from a newsletter.

Debian's chromium (``/usr/bin/chromium``) is driven by Playwright's Python
package against the web app under waitress on a loopback port; mail goes to
the file outbox, where the test reads the links as a reader's mail program
would. The database is checked after each step, and every page is saved as a
screenshot in ``tests/artifacts/`` (phone-sized, full page).

Skipped with the reason when chromium or playwright is missing, unless
``SYNDICATE_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import email
import importlib.util
import os
import re
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, Site

from syndicate.app import App
from syndicate.pipeline import build, tick
from syndicate.store import subscribers as store
from syndicate.store.subscribers import Subscriber
from syndicate.subscribers import Status
from syndicate.web import create_app
from syndicate.web.server import WebServer, listening_socket

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "tests" / "artifacts"
PHONE = {"width": 390, "height": 844}
READER = "reader@example.org"

# WCAG 2.1 contrast of every element's own text against the background it is drawn on (1.4.3).
CONTRAST_JS = """
() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  }).reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const failures = [];
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!own || box.width === 0 || box.right < 0) continue;
    const style = getComputedStyle(el);
    const [a, b] = [lum(rgb(style.color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.66 && style.fontWeight >= 700);
    const text = el.textContent.trim().slice(0, 40);
    if (ratio < (large ? 3 : 4.5)) failures.push(`${el.tagName} "${text}": ${ratio.toFixed(2)}`);
  }
  return failures;
}
"""


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright Python package is not installed (.venv/bin/pip install playwright)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium under Playwright (never a downloaded browser)."""
    missing = _missing()
    if missing:
        if os.environ.get("SYNDICATE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"SYNDICATE_REQUIRE_BROWSER=1, but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def served(sqlite_site: Site, make_app: Callable[[Site], App]) -> Iterator[tuple[App, str]]:
    """The site's web app under waitress on a free loopback port, with mail links pointing at it."""
    sock = listening_socket("127.0.0.1:0")
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sqlite_site.extra = f'[web]\nbase_url = "{url}"\n[email]\ntransport = "file"\n'
    sqlite_site.statement("welcome.md", "Welcome", "2026-11-20T10:00:00Z", categories=["News"])
    app = make_app(sqlite_site)
    build(app)
    server = WebServer(create_app(app), sock=sock, threads=4)
    server.start()
    yield app, url
    server.stop()


def stored(app: App) -> Subscriber:
    with app.db.read() as conn:
        found = store.by_email(conn, READER)
    assert found is not None
    return found


def mails(app: App) -> list[EmailMessage]:
    """The outbox's messages, oldest first (files are named by delivery id)."""
    files = sorted(app.config.email.outbox.glob("*.eml"), key=lambda p: int(p.stem))
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in files]


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def snap(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=True)


def check_page(page: Any) -> None:
    """What every page owes its reader: a language, feed autodiscovery, readable contrast."""
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator('head link[rel="alternate"][type="application/atom+xml"]').count() >= 1
    assert page.evaluate(CONTRAST_JS) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "it scrolls sideways on a phone"


def test_subscribe_confirm_and_unsubscribe_in_a_browser(
    browser: Any, served: tuple[App, str], sqlite_site: Site
) -> None:
    app, url = served
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()

    # 1. The form: labelled fields, a visible focus, then subscribe.
    page.goto(f"{url}/subscribe")
    check_page(page)
    snap(page, "1-subscribe")
    field = page.get_by_label("E-mail address")
    field.focus()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    field.fill(READER)
    assert page.get_by_label("English").is_checked()
    page.get_by_label("A daily digest").check()
    page.get_by_label("Each statement as it is published").check()
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "Check your mail"
    check_page(page)
    snap(page, "2-check-your-mail")

    # 2. The tick makes the request a pending subscriber and sends the confirmation mail to the file
    # outbox; its link confirms.
    tick(app)
    pending = stored(app)
    assert (pending.status, pending.consent_method) == (Status.PENDING, "web form (client 127.0.0.1)")
    [confirmation] = mails(app)
    assert confirmation["To"] == READER
    [confirm_url] = set(re.findall(rf"{re.escape(url)}/confirm/\S+", text_part(confirmation)))
    page.goto(confirm_url)
    assert page.get_by_role("heading", level=1).inner_text() == "Subscription confirmed"
    check_page(page)
    snap(page, "3-confirmed")
    assert stored(app).status == Status.ACTIVE

    # 3. A statement is published; the newsletter's unsubscribe link shows one button and changes nothing yet.
    sqlite_site.statement("news.md", "Big news", "2026-11-26T11:30:00Z", body="Something happened.")
    tick(app)
    newsletter = mails(app)[-1]
    assert newsletter["Subject"] == "Big news"
    header_link = re.search(r"<(http[^>]+)>", newsletter["List-Unsubscribe"])
    assert header_link
    assert header_link[1] in text_part(newsletter)
    page.goto(header_link[1])
    check_page(page)
    snap(page, "4-unsubscribe")
    assert page.get_by_role("button").count() == 1
    assert stored(app).status == Status.ACTIVE

    # 4. Pressing the button unsubscribes at once.
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "You are unsubscribed"
    check_page(page)
    snap(page, "5-unsubscribed")
    left = stored(app)
    assert (left.status, left.unsubscribed_at) == (Status.UNSUBSCRIBED, app.clock())
    context.close()
