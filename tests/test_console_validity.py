"""The console's pages are valid HTML (the Nu Html Checker) and have no axe-core violations at WCAG 2.1 AA.

vnu-jar and axe-core come from the npm registry (``.ci/run`` installs them into
``.ci/node``; ``SYNDICATE_NODE_MODULES`` names another folder); the checker runs
on Java, axe in Debian's chromium through Playwright, on the pages a logged-in
admin sees: the dashboard in English and Turkish, a delivery list, the audit
log, a confirmation, a result, and the login page.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from test_email_delivery import add_subscribers
from test_web_browser import browser  # noqa: F401 - the browser fixture

from syndicate.console.accounts import Accounts
from syndicate.pipeline import tick
from syndicate.web import create_app
from syndicate.web.server import WebServer, listening_socket

pytestmark = pytest.mark.slow

MODULES = Path(os.environ.get("SYNDICATE_NODE_MODULES", ROOT / ".ci" / "node" / "node_modules"))
VNU = MODULES / "vnu-jar" / "build" / "dist" / "vnu.jar"
AXE = MODULES / "axe-core" / "axe.min.js"
PASSWORD = "a long enough admin password"
PAGES = [
    "/admin",
    "/admin?lang=tr",
    "/admin/deliveries?state=failed",
    "/admin/deliveries?state=unknown",
    "/admin/audit",
    "/admin/preview",
    "/admin/preview?statement=news",
    "/admin/preview?statement=news&digest=weekly&lang=tr",
]
AXE_RUN = """async () => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}});
  return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}"""


def nu_html_check(files: Iterable[Path | str]) -> subprocess.CompletedProcess[str]:
    """The Nu Html Checker run on ``files`` (errors only): returncode 0 when every one is valid."""
    return subprocess.run(["java", "-jar", str(VNU), "--errors-only", *map(str, files)], capture_output=True,
                          text=True, timeout=300)  # fmt: skip


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """``app``'s web pages on a loopback port, for the browser; the base URL."""
    sock = listening_socket("127.0.0.1:0")
    server = WebServer(create_app(app), sock=sock, threads=2)
    server.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.stop()


def axe_violations(page: Any) -> list[str]:
    """axe-core's WCAG 2.1 AA violations on the page the browser shows."""
    page.add_script_tag(content=AXE.read_text())
    return list(page.evaluate(AXE_RUN))


def _tools() -> None:
    missing = [str(p) for p in (VNU, AXE) if not p.exists()] + ([] if shutil.which("java") else ["java"])
    if missing:
        if os.environ.get("SYNDICATE_REQUIRE_VALIDATORS") == "1":
            pytest.fail(f"SYNDICATE_REQUIRE_VALIDATORS=1, but missing: {', '.join(missing)}")
        pytest.skip(f"missing: {', '.join(missing)} (npm install vnu-jar axe-core; a Java runtime)")


@pytest.fixture
def logged_in(sqlite_site: Any, make_app: Any, tmp_path: Path) -> Any:
    _tools()
    sqlite_site.statement("news.md", "News", "2026-11-26T10:00:00+03:00")
    sqlite_site.statement("later.md", "Embargoed", "2026-11-27T10:00:00+03:00")
    app = make_app(sqlite_site)
    tick(app)
    add_subscribers(app, ["a@example.org", "b@example.org"])
    tick(app)
    Accounts(app.db, app.config.admin, app.clock).add_user("ada", "admin", PASSWORD)
    return app


def test_every_console_page_is_valid_html(logged_in: Any, tmp_path: Path) -> None:
    client = create_app(logged_in).test_client()
    login = client.get("/admin/login").get_data(as_text=True)
    (tmp_path / "login.html").write_text(login)
    token = re.search(r'name="form_token" value="([^"]+)"', login).group(1)  # type: ignore[union-attr]
    client.post("/admin/login", data={"name": "ada", "password": PASSWORD, "form_token": token})
    for n, path in enumerate(PAGES):
        (tmp_path / f"page{n}.html").write_text(client.get(path).get_data(as_text=True))
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin").get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    confirm = client.post("/admin/actions/resend-unknown", data={"csrf_token": csrf}).get_data(as_text=True)
    done = client.post("/admin/actions/retry-failed", data={"csrf_token": csrf, "confirmed": "yes"}).get_data(
        as_text=True
    )
    (tmp_path / "confirm.html").write_text(confirm)
    (tmp_path / "done.html").write_text(done)
    checked = nu_html_check(sorted(tmp_path.glob("*.html")))
    assert checked.returncode == 0, checked.stderr


def test_every_console_page_has_no_axe_violations(logged_in: Any, browser: Any) -> None:  # noqa: F811
    with served(logged_in) as url:
        context = browser.new_context(bypass_csp=True)  # axe is injected as a script of the test's own
        page = context.new_page()
        found: dict[str, list[str]] = {}
        page.goto(f"{url}/admin/login")
        found["/admin/login"] = axe_violations(page)
        page.get_by_label("Name").fill("ada")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{url}/admin")
        for path in PAGES:
            page.goto(f"{url}{path}")
            page.wait_for_load_state("networkidle")
            found[path] = axe_violations(page)
        context.close()
    assert found == {path: [] for path in found}
