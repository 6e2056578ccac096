"""The console in a real browser: log in, see each chart drawn with data, retry a failed delivery, see it sent.

Debian's chromium under Playwright, against the web app under waitress on a
loopback port; mail goes through a real SMTP server on loopback that refuses
one reader once (550), so a delivery fails for real. Screenshots of the
dashboard at a desktop and a phone width are saved in ``tests/artifacts/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import Site
from servers.smtp import SMTPServer
from servers.smtp_faults import Fault
from test_email_delivery import add_subscribers, states
from test_web_browser import ARTIFACTS, PHONE, browser  # noqa: F401 - the browser fixture

from syndicate.app import App
from syndicate.console.accounts import Accounts
from syndicate.pipeline import tick
from syndicate.web import create_app
from syndicate.web.server import WebServer, listening_socket

pytestmark = pytest.mark.slow

DESKTOP = {"width": 1280, "height": 900}
PASSWORD = "a long enough admin password"
UNLUCKY = "unlucky@example.org"
READERS = ["reader1@example.org", "reader2@example.org", UNLUCKY]

# How many pixels of a chart's canvas are drawn on (not transparent): an empty canvas has none.
INKED = """(id) => {
  const canvas = document.querySelector(`#${id} canvas`);
  if (!canvas) return 0;
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked++;
  return inked;
}"""


@pytest.fixture
def console(sqlite_site: Site, make_app: Callable[[Site], App]) -> Iterator[tuple[App, str]]:
    """A site that mailed an edition (one delivery refused by the server) and serves its console."""
    refused = Fault.rcpt(550, "5.7.1 Message refused by local policy", recipients=UNLUCKY, times=1)  # not the address
    with SMTPServer([refused]) as server:
        sock = listening_socket("127.0.0.1:0")
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        sqlite_site.extra = (
            f'[web]\nbase_url = "{url}"\n[email]\ntransport = "smtp"\nfrom_address = "news@example.org"\n'
            f'[email.smtp]\nhost = "127.0.0.1"\nport = {server.port}\nconnections = 1\n'
        )
        app = make_app(sqlite_site)
        tick(app)
        add_subscribers(app, READERS)
        sqlite_site.statement("news.md", "News of the day", "2026-11-26T14:00:00+03:00")
        tick(app)
        assert states(app)[UNLUCKY][0] == "failed"
        Accounts(app.db, app.config.admin, app.clock).add_user("ada", "admin", PASSWORD)
        web = WebServer(create_app(app), sock=sock, threads=4)
        web.start()
        app.smtp = server
        yield app, url
        web.stop()


def test_log_in_see_the_charts_retry_a_failed_delivery_and_see_it_sent(browser: Any, console: Any) -> None:  # noqa: F811
    app, url = console
    context = browser.new_context(viewport=DESKTOP, locale="en-GB")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    page.goto(f"{url}/admin")
    assert page.url.startswith(f"{url}/admin/login"), "no session: the login page"
    page.get_by_label("Name").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/admin")

    for chart in ("chart-subscribers", "chart-deliveries", "chart-editions"):
        page.wait_for_selector(f"#{chart}[data-points]", timeout=10_000)
        assert int(page.get_attribute(f"#{chart}", "data-points") or 0) > 0, chart
        assert page.evaluate(INKED, chart) > 500, f"{chart} is drawn, not an empty canvas"
    assert errors == [], errors
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-dashboard-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.reload()
    page.wait_for_selector("#chart-subscribers[data-points]", timeout=10_000)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1, "no sideways scroll"
    page.screenshot(path=str(ARTIFACTS / "console-dashboard-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)

    page.goto(f"{url}/admin/deliveries?state=failed")
    assert UNLUCKY in page.content()
    page.get_by_role("button", name="Retry failed deliveries").click()
    assert "Please confirm" in page.content()
    page.get_by_role("button", name="Yes, do it").click()
    assert "requeued: 1" in page.content()
    page.goto(f"{url}/admin")
    page.get_by_role("button", name="Run a tick now").click()
    page.get_by_role("button", name="Yes, do it").click()
    assert "Done" in page.content()
    assert states(app)[UNLUCKY][0] == "sent"
    assert any(UNLUCKY in m.recipients for m in app.smtp.messages), "the server has it now"
    page.goto(f"{url}/admin/deliveries?state=failed")
    assert UNLUCKY not in page.content()
    page.goto(f"{url}/admin/audit")
    audit = page.content()
    assert "retry failed" in audit and "run a tick" in audit and "login" in audit
    context.close()
