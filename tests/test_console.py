"""The operator's console and its API: accounts, logins, sessions, roles, CSRF, TOTP, lockouts, the audit log.

Every route is asked without a session (to the login page, or 401), as a
viewer (sees, cannot act) and as an admin (acts, recorded). Passwords are
hashed with the real argon2-cffi, codes made with pyotp as an authenticator
app makes them.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner
from web_support import make_web

from syndicate.cli import main
from syndicate.console.accounts import Accounts, BadAccount
from syndicate.outbox import DeliveryState
from syndicate.pipeline import tick
from syndicate.store import admin as admin_store
from syndicate.store.schema import admin_sessions, deliveries
from syndicate.web.admin.console import ACTIONS

ADMIN_PASSWORD = "correct horse battery staple"
VIEWER_PASSWORD = "a viewer's long password"
FORM = re.compile(r'name="form_token" value="([^"]+)"')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGES = ["/admin", "/admin/deliveries?state=failed", "/admin/deliveries?state=unknown", "/admin/audit",
         "/admin/preview", "/admin/preview/body?statement=news"]  # fmt: skip
READS = ["/api/v1/overview", "/api/v1/subscribers/daily", "/api/v1/deliveries/hourly", "/api/v1/deliveries",
         "/api/v1/deliveries/unknown/preview", "/api/v1/editions", "/api/v1/partners", "/api/v1/machinery",
         "/api/v1/audit", "/api/v1/statements", "/api/v1/preview?statement=news"]  # fmt: skip


@pytest.fixture
def console(site, make_app):
    site.statement("news.md", "News", "2026-11-26T10:00:00+03:00")
    app = make_app(site)
    tick(app)
    return console_of(app)


def console_of(app: Any) -> Any:
    """The web app over ``app`` with two accounts: ada the admin and vera the viewer."""
    accounts = Accounts(app.db, app.config.admin, app.clock)
    accounts.add_user("ada", "admin", ADMIN_PASSWORD)
    accounts.add_user("vera", "viewer", VIEWER_PASSWORD)
    web = make_web(app)
    web.accounts = accounts
    return web


def client(web: Any) -> Any:
    return web.flask.test_client()


def log_in(web: Any, browser: Any, name: str, password: str, code: str = "", next: str = "/admin") -> Any:
    page = browser.get("/admin/login")
    token = FORM.search(page.get_data(as_text=True))
    assert token, page.get_data(as_text=True)
    return browser.post("/admin/login", data={"name": name, "password": password, "code": code,
                                              "form_token": token.group(1), "next": next})  # fmt: skip


def csrf_of(browser: Any) -> str:
    found = CSRF.search(browser.get("/admin").get_data(as_text=True))
    assert found
    return found.group(1)


def audit_actions(web: Any) -> list[tuple[str, str]]:
    with web.app.db.read() as conn:
        return [(line.actor, line.action) for line in admin_store.audit_lines(conn, 100)]


def test_every_page_and_api_route_asks_who_is_there(console):
    browser = client(console)
    for path in PAGES:
        answer = browser.get(path)
        assert answer.status_code == 303 and answer.headers["Location"].startswith("/admin/login?next=/admin")
    for name in ACTIONS:
        assert browser.post(f"/admin/actions/{name}").status_code == 303
    for path in READS:
        answer = browser.get(path)
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert browser.post("/api/v1/actions/retry-failed", json={}).status_code == 401
    assert browser.get("/api/v1/openapi.json").get_json()["openapi"] == "3.1.0", "the description is public"


def test_a_viewer_sees_every_page_and_cannot_act(console):
    browser = client(console)
    assert log_in(console, browser, "vera", VIEWER_PASSWORD).status_code == 303
    for path in PAGES:
        page = browser.get(path)
        assert page.status_code == 200, path
        assert "Content-Security-Policy" in page.headers
    assert "only an admin can act" in browser.get("/admin").get_data(as_text=True)
    for path in READS:
        assert browser.get(path).status_code == 200, path
    token = csrf_of(browser)
    for name in ACTIONS:
        answer = browser.post(f"/admin/actions/{name}", data={"csrf_token": token, "confirmed": "yes"})
        assert answer.status_code == 403, name
    answer = browser.post("/api/v1/actions/run-tick", json={}, headers={"X-CSRF-Token": token})
    assert answer.status_code == 403 and answer.get_json()["error"] == "this role may read, not act"


def test_an_admin_acts_after_confirming_and_each_action_is_audited(console):
    app = console.app
    with app.db.write() as conn:  # two deliveries that failed
        for n in range(2):
            conn.execute(deliveries.insert().values(
                channel="webhook", source_kind="event", source_id=n + 1, target="partner", state="failed",
                attempts=5, due_at=app.clock(), created_at=app.clock(), finished_at=app.clock(), last_error="503",
            ))  # fmt: skip
    browser = client(console)
    log_in(console, browser, "ada", ADMIN_PASSWORD)
    token = csrf_of(browser)
    asked = browser.post("/admin/actions/retry-failed", data={"csrf_token": token})
    assert asked.status_code == 200 and "Please confirm" in asked.get_data(as_text=True)
    with app.db.read() as conn:
        assert conn.execute(deliveries.select().where(deliveries.c.state == "failed")).all(), "asking changed nothing"
    done = browser.post("/admin/actions/retry-failed", data={"csrf_token": token, "confirmed": "yes"})
    assert done.status_code == 200 and "requeued: 2" in done.get_data(as_text=True)
    with app.db.read() as conn:
        states = {row.state for row in conn.execute(deliveries.select())}
    assert states == {DeliveryState.PENDING.value}
    assert ("ada", "retry failed") in audit_actions(console) and ("ada", "login") in audit_actions(console)
    assert "retry failed" in browser.get("/admin/audit").get_data(as_text=True)


def test_forged_csrf_tokens_and_cross_site_posts_change_nothing(console):
    browser = client(console)
    log_in(console, browser, "ada", ADMIN_PASSWORD)
    token = csrf_of(browser)
    for data, headers in (({"confirmed": "yes"}, {}), ({"confirmed": "yes", "csrf_token": token[:-2] + "xx"}, {}),
                          ({"confirmed": "yes", "csrf_token": token}, {"Sec-Fetch-Site": "cross-site"})):  # fmt: skip
        assert browser.post("/admin/actions/run-tick", data=data, headers=headers).status_code == 403
    assert browser.post("/api/v1/actions/run-tick", json={}).status_code == 403, "a session's write needs its token"
    assert ("ada", "run a tick") not in audit_actions(console)
    other = client(console)  # another admin's session token is not this one's
    log_in(console, other, "ada", ADMIN_PASSWORD)
    assert other.post("/admin/actions/run-tick", data={"csrf_token": token, "confirmed": "yes"}).status_code == 403


def test_a_login_starts_a_new_session_and_a_fixed_one_is_never_taken_over(console):
    browser = client(console)
    browser.set_cookie("syndicate_admin", "planted-by-an-attacker", path="/")
    answer = log_in(console, browser, "ada", ADMIN_PASSWORD)
    cookie = answer.headers["Set-Cookie"]
    assert "syndicate_admin=" in cookie and "planted-by-an-attacker" not in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    first = browser.get_cookie("syndicate_admin").value
    log_in(console, browser, "ada", ADMIN_PASSWORD)
    second = browser.get_cookie("syndicate_admin").value
    assert first != second, "rotated on login"
    stale = client(console)
    stale.set_cookie("syndicate_admin", first, path="/")
    assert stale.get("/admin").status_code == 303, "the session before the new login ended"
    with console.app.db.read() as conn:
        keys = {row.key for row in conn.execute(admin_sessions.select())}
    assert second not in keys and first not in keys, "only digests are kept"


def test_sessions_expire_when_idle_and_end_at_logout(console, site):
    browser = client(console)
    log_in(console, browser, "ada", ADMIN_PASSWORD)
    assert browser.get("/admin").status_code == 200
    site.clock.advance(minutes=console.app.config.admin.idle_minutes + 1)
    assert browser.get("/admin").status_code == 303, "idle too long"
    log_in(console, browser, "ada", ADMIN_PASSWORD)
    token = csrf_of(browser)
    browser.post("/admin/logout", data={"csrf_token": token})
    assert browser.get("/admin").status_code == 303


def test_https_makes_the_session_cookie_secure(console):
    browser = console.flask.test_client()
    page = browser.get("/admin/login", base_url="https://news.example.org")
    token = FORM.search(page.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    answer = browser.post("/admin/login", base_url="https://news.example.org",
                          data={"name": "ada", "password": ADMIN_PASSWORD, "form_token": token})  # fmt: skip
    assert answer.status_code == 303 and "Secure" in answer.headers["Set-Cookie"]


def test_brute_force_locks_the_account_and_then_the_client(console, site):
    settings = console.app.config.admin
    browser = client(console)
    for _ in range(settings.lockout_attempts):
        assert log_in(console, browser, "ada", "wrong password!!").status_code == 401
    locked = log_in(console, browser, "ada", ADMIN_PASSWORD)
    assert locked.status_code == 401, "locked: even the right password waits"
    assert "too many attempts" in locked.get_data(as_text=True)
    site.clock.advance(minutes=settings.lockout_minutes + 1)
    assert log_in(console, browser, "ada", ADMIN_PASSWORD).status_code == 303, "unlocked after the time"
    for n in range(settings.client_attempts):  # names that do not exist: the client is what is counted
        log_in(console, browser, f"nobody{n}", "wrong password!!")
    assert log_in(console, browser, "vera", VIEWER_PASSWORD).status_code == 401, "this client waits now"
    refused = [a for a in audit_actions(console) if a[1] == "login refused"]
    assert len(refused) >= settings.lockout_attempts + settings.client_attempts


def test_totp_is_asked_for_and_each_code_works_once(console, site):
    _, secret = console.accounts.add_user("tess", "admin", "another long password", totp=True)
    assert secret
    browser = client(console)
    now = console.app.clock()
    code = pyotp.TOTP(secret).at(now)
    assert log_in(console, browser, "tess", "another long password").status_code == 401, "no code"
    assert (
        log_in(
            console, browser, "tess", "another long password", "000000" if code != "000000" else "111111"
        ).status_code
        == 401
    )
    assert log_in(console, browser, "tess", "another long password", code).status_code == 303
    again = client(console)
    assert log_in(console, again, "tess", "another long password", code).status_code == 401, "a code works once"
    site.clock.advance(seconds=30)
    later = pyotp.TOTP(secret).at(console.app.clock())
    assert log_in(console, again, "tess", "another long password", later).status_code == 303


def test_bearer_tokens_read_and_act_by_their_role_and_revoked_ones_do_not(console):
    accounts = console.accounts
    _, viewer = accounts.create_token("monitor", "viewer")
    token_id, admin = accounts.create_token("deploy", "admin")
    api = client(console)
    assert api.get("/api/v1/overview", headers={"Authorization": f"Bearer {viewer}"}).status_code == 200
    assert (
        api.post("/api/v1/actions/retry-failed", json={}, headers={"Authorization": f"Bearer {viewer}"}).status_code
        == 403
    )
    acted = api.post("/api/v1/actions/retry-failed", json={}, headers={"Authorization": f"Bearer {admin}"})
    assert acted.status_code == 200 and acted.get_json() == {"requeued": 0}
    assert ("token:deploy", "retry failed") in audit_actions(console)
    accounts.revoke_token(token_id)
    assert api.get("/api/v1/overview", headers={"Authorization": f"Bearer {admin}"}).status_code == 401
    assert api.get("/api/v1/overview", headers={"Authorization": "Bearer sya_guessed"}).status_code == 401


def test_accounts_refuse_weak_passwords_taken_names_and_unknown_roles(console):
    for name, role, password in (("new", "admin", "short"), ("ada", "admin", ADMIN_PASSWORD),
                                 ("new", "root", ADMIN_PASSWORD), ("", "admin", ADMIN_PASSWORD)):  # fmt: skip
        with pytest.raises(BadAccount):
            console.accounts.add_user(name, role, password)


def test_the_admin_commands_add_remove_and_reset_accounts_and_make_tokens(site, make_app):
    app = make_app(site)
    config = ["--config", str(site.root / "config.toml")]
    runner = CliRunner()
    added = runner.invoke(main, [*config, "admin", "add-user", "olga", "--role", "admin", "--totp",
                                 "--password-stdin"], input="olga's password is long\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "TOTP secret (shown once)" in added.output and "otpauth://totp/" in added.output
    assert "olga\tadmin\tTOTP" in runner.invoke(main, [*config, "admin", "users"]).output
    short = runner.invoke(main, [*config, "admin", "reset-password", "olga", "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    reset = runner.invoke(main, [*config, "admin", "reset-password", "olga", "--password-stdin"], input="x" * 20 + "\n")
    assert reset.exit_code == 0, reset.output
    made = runner.invoke(main, [*config, "admin", "token", "create", "--name", "ci", "--role", "viewer"])
    assert made.exit_code == 0 and re.search(r"sya_[A-Za-z0-9_-]{40,}", made.output)
    assert "ci\tviewer\tnever used" in runner.invoke(main, [*config, "admin", "token", "list"]).output
    assert runner.invoke(main, [*config, "admin", "remove-user", "olga"]).exit_code == 0
    assert runner.invoke(main, [*config, "admin", "remove-user", "olga"]).exit_code == 1
    log = runner.invoke(main, [*config, "admin", "audit"]).output
    for action in ("add user", "reset password", "create token", "remove user"):
        assert action in log, log
    accounts = Accounts(app.db, app.config.admin, app.clock)
    assert [u.name for u in accounts.users()] == []


def test_the_dashboard_shows_the_figures_in_english_and_turkish(console, site):
    site.statement("news.md", "News of the day", "2026-11-26T10:00:00+03:00")
    site.statement("later.md", "Embargoed news", (site.clock.now + timedelta(hours=5)).isoformat())
    tick(console.app)
    browser = client(console)
    log_in(console, browser, "vera", VIEWER_PASSWORD)
    page = browser.get("/admin").get_data(as_text=True)
    assert "Embargoed news" in page and ("4 h 59 min" in page or "5 h 0 min" in page)
    assert "<table>" in page and 'data-api="/api/v1/subscribers/daily?days=30"' in page
    turkish = browser.get("/admin?lang=tr").get_data(as_text=True)
    assert "Günlük aboneler" in turkish and 'lang="tr"' in turkish


CSV = (
    "email,languages,frequency\nnew1@example.org,en,immediate\nnot-an-address,en,immediate\nnew2@example.org,tr,daily\n"
)


def test_an_admin_imports_a_csv_after_seeing_its_report_and_exports_the_list(console):
    browser = client(console)
    log_in(console, browser, "ada", ADMIN_PASSWORD)
    token = csrf_of(browser)
    asked = browser.post("/admin/actions/import-subscribers", content_type="multipart/form-data",
                         data={"csrf_token": token, "file": (io.BytesIO(CSV.encode()), "list.csv")})  # fmt: skip
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "2 good row(s) will be imported" in page and "Bad rows, by line" in page
    assert "<td>3</td>" in page, "the bad row is named by its line"
    blocked = browser.post("/admin/actions/import-subscribers",
                           data={"csrf_token": token, "confirmed": "yes", "csv": CSV, "file_name": "list.csv"})  # fmt: skip
    assert "imported: 0" in blocked.get_data(as_text=True), "bad rows and no --skip-invalid: nothing imported"
    done = browser.post("/admin/actions/import-subscribers", data={"csrf_token": token, "confirmed": "yes", "csv": CSV,
                        "file_name": "list.csv", "skip_invalid": "yes", "consent_elsewhere": "yes"})  # fmt: skip
    assert "imported: 2" in done.get_data(as_text=True)
    exported = browser.get("/admin/subscribers.csv")
    assert exported.status_code == 200 and exported.headers["Content-Type"].startswith("text/csv")
    assert "new1@example.org" in exported.get_data(as_text=True) and "new2@example.org" in exported.get_data(
        as_text=True
    )
    assert {("ada", "import subscribers"), ("ada", "export subscribers")} <= set(audit_actions(console))
    viewer = client(console)
    log_in(console, viewer, "vera", VIEWER_PASSWORD)
    assert viewer.get("/admin/subscribers.csv").status_code == 403, "the list's personal data is an admin's"


def test_the_api_imports_with_a_dry_run_first_and_exports_for_admins_only(console):
    _, viewer = console.accounts.create_token("reader", "viewer")
    _, admin = console.accounts.create_token("ops", "admin")
    api = client(console)
    dry = api.post("/api/v1/actions/import-subscribers", json={"csv": CSV, "dry_run": True},
                   headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
    assert dry.get_json() == {"rows": 2, "errors": [{"line": 3, "reason": dry.get_json()["errors"][0]["reason"]}],
                              "imported": 0, "already": 0}  # fmt: skip
    done = api.post("/api/v1/actions/import-subscribers", json={"csv": CSV, "skip_invalid": True},
                    headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
    assert done.get_json()["imported"] == 2
    assert api.get("/api/v1/subscribers/export", headers={"Authorization": f"Bearer {viewer}"}).status_code == 403
    exported = api.get("/api/v1/subscribers/export", headers={"Authorization": f"Bearer {admin}"})
    assert exported.status_code == 200 and "new2@example.org" in exported.get_data(as_text=True)
