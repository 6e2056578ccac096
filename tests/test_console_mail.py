"""The console's mail and partner actions: preview a statement's mail, send it as a test, replay to a partner,
and the problems of the last check on the dashboard.

The test mail goes to a real SMTP server (aiosmtpd) on loopback, the replay
to a partner site on loopback that verifies every push's signature; the
preview is read back with the email package, as a mail program would.
"""

from __future__ import annotations

from datetime import UTC

import pytest
from click.testing import CliRunner
from partner_site import AtomPartner, partner_toml, secret_for, webhook_rows
from servers.smtp import SMTPServer
from sqlalchemy import func, select
from test_console import ADMIN_PASSWORD, VIEWER_PASSWORD, audit_actions, client, console_of, csrf_of, log_in
from test_partners_cli import catch_up, publish

from syndicate.cli import main
from syndicate.pipeline import tick
from syndicate.store.schema import deliveries

pytestmark = pytest.mark.timeout(90)

SMTP = """
[email]
transport = "smtp"
from_address = "news@example.org"

[[email.relays]]
name = "own"
host = "127.0.0.1"
port = {port}
timeout_seconds = 2.0
"""


def outbox_size(app) -> int:  # type: ignore[no-untyped-def]
    with app.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(deliveries)).scalar_one())


def test_the_preview_shows_the_mail_as_a_reader_gets_it_in_a_sandboxed_frame(site, make_app):
    site.statement("news.md", "News of the week", "2026-11-26T13:00:00+03:00", "The <b>board</b> met.")
    app = make_app(site)
    tick(app)
    web = console_of(app)
    browser = client(web)
    log_in(web, browser, "vera", VIEWER_PASSWORD)  # a viewer may look
    choice = browser.get("/admin/preview")
    assert choice.status_code == 200 and 'value="news"' in choice.get_data(as_text=True)
    page = browser.get("/admin/preview?statement=news")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "News of the week" in html and "newsletter@example.org" in html and "reader@example.org" in html
    assert 'sandbox=""' in html and "/admin/preview/body?statement=news" in html
    assert "frame-src 'self'" in page.headers["Content-Security-Policy"]
    assert "The &lt;b&gt;board&lt;/b&gt; met." in html, "the plain-text part is shown, escaped"
    body = browser.get("/admin/preview/body?statement=news&digest=")
    assert body.status_code == 200 and body.content_type.startswith("text/html")
    assert body.headers["Content-Security-Policy"].startswith("sandbox;"), "the mail's HTML runs nothing"
    assert "<b>board</b>" in body.get_data(as_text=True) and "/statements/news" in body.get_data(as_text=True)
    digest = browser.get("/admin/preview?statement=news&digest=weekly").get_data(as_text=True)
    assert "News of the week" in digest
    assert browser.get("/admin/preview?statement=nope").status_code == 404
    assert browser.get("/admin/preview?statement=news&digest=hourly").status_code == 400
    assert client(web).get("/admin/preview/body?statement=news").status_code == 303, "no session, no mail"
    api = browser.get("/api/v1/preview?statement=news").get_json()
    assert (
        api["subject"] == "News of the week"
        and "<b>board</b>" in api["html"]
        and "The <b>board</b> met." in api["text"]
    )
    assert browser.get("/api/v1/preview?statement=nope").status_code == 404
    listed = browser.get("/api/v1/statements").get_json()["statements"]
    assert [s["id"] for s in listed] == ["news"] and listed[0]["state"] == "published"


def test_an_admin_sends_a_test_mail_to_one_address_and_nothing_enters_the_outbox(site, make_app):
    with SMTPServer() as relay:
        site.extra = SMTP.format(port=relay.port)
        site.statement("news.md", "News", "2026-11-26T13:00:00+03:00")
        app = make_app(site)
        tick(app)
        before = outbox_size(app)
        web = console_of(app)
        browser = client(web)
        log_in(web, browser, "ada", ADMIN_PASSWORD)
        page = browser.get("/admin/preview?statement=news").get_data(as_text=True)
        assert 'action="/admin/actions/send-test"' in page and "<option>own</option>" in page
        token = csrf_of(browser)
        fields = {"csrf_token": token, "statement": "news", "to": "Editor@Example.org", "relay": "own"}
        asked = browser.post("/admin/actions/send-test", data=fields)
        assert asked.status_code == 200 and "Editor@Example.org alone" in asked.get_data(as_text=True)
        assert not relay.messages, "asking sends nothing"
        done = browser.post("/admin/actions/send-test", data={**fields, "confirmed": "yes"})
        assert done.status_code == 200, done.get_data(as_text=True)
        assert "delivered: True" in done.get_data(as_text=True) and "dot: 250" in done.get_data(as_text=True)
        (message,) = relay.messages
        assert message.recipients == ("editor@example.org",) and message.message["Subject"] == "News"
        assert message.message["List-Unsubscribe-Post"], "the exact mail a subscriber gets"
        wrong = browser.post("/admin/actions/send-test", data={**fields, "relay": "nope", "confirmed": "yes"})
        assert wrong.status_code == 409 and "no relay named" in wrong.get_data(as_text=True)
        api = browser.post("/api/v1/actions/send-test", json={"statement": "news", "to": "a@example.org"},
                           headers={"X-CSRF-Token": token})  # fmt: skip
        assert api.status_code == 200 and api.get_json()["delivered"] is True
        assert len(relay.messages) == 2
        assert outbox_size(app) == before, "a test mail is not a delivery"
    assert [a for a in audit_actions(web) if a[1] == "send test mail"] == [("ada", "send test mail")] * 2


def test_a_test_mail_needs_smtp_and_the_page_says_so(site, make_app):
    site.statement("news.md", "News", "2026-11-26T13:00:00+03:00")
    app = make_app(site)
    tick(app)
    web = console_of(app)
    browser = client(web)
    log_in(web, browser, "ada", ADMIN_PASSWORD)
    assert "file transport sends nothing" in browser.get("/admin/preview?statement=news").get_data(as_text=True)
    refused = browser.post("/api/v1/actions/send-test", json={"statement": "news", "to": "a@example.org"},
                           headers={"X-CSRF-Token": csrf_of(browser)})  # fmt: skip
    assert refused.status_code == 409 and "file transport" in refused.get_json()["error"]


def test_an_admin_replays_to_a_partner_after_seeing_how_many_events(site, make_app, monkeypatch):
    catch_up(site)
    with AtomPartner(secret_for(monkeypatch, "PARTNER_SECRET")) as partner:
        site.extra = partner_toml("a", partner.url, "PARTNER_SECRET")
        app = make_app(site)
        tick(app)
        publish(site, app, "first")
        publish(site, app, "second")
        first_ids = {d.webhook_id for d in partner.accepted}
        assert len(first_ids) == 2
        web = console_of(app)
        browser = client(web)
        log_in(web, browser, "ada", ADMIN_PASSWORD)
        assert 'action="/admin/actions/replay-partner"' in browser.get("/admin").get_data(as_text=True)
        token = csrf_of(browser)
        since = site.clock.now.astimezone(UTC).strftime("%Y-%m-%dT00:00")
        asked = browser.post("/admin/actions/replay-partner", data={"csrf_token": token, "name": "a", "since": since})
        text = asked.get_data(as_text=True)
        assert asked.status_code == 200 and "2 event(s) sent to a since" in text and 'value="2"' in text
        assert len(webhook_rows(app)) == 2, "asking plans nothing"
        stale = browser.post("/admin/actions/replay-partner", data={"csrf_token": token, "name": "a", "since": since,
                                                                     "expected": "5", "confirmed": "yes"})  # fmt: skip
        assert stale.status_code == 409 and "not the 5 shown" in stale.get_data(as_text=True)
        done = browser.post("/admin/actions/replay-partner", data={"csrf_token": token, "name": "a", "since": since,
                                                                    "expected": "2", "confirmed": "yes"})  # fmt: skip
        assert done.status_code == 200 and "replayed: 2" in done.get_data(as_text=True)
        catch_up(site)
        tick(app)
        assert [r.state for r in webhook_rows(app)] == ["sent"] * 4
        again = {d.webhook_id for d in partner.accepted[2:]}
        assert len(again) == 2 and again.isdisjoint(first_ids), "new webhook ids: the partner does not drop them"
        for bad in ({"name": "zz", "since": since}, {"name": "a", "since": "last tuesday"}):
            refused = browser.post("/api/v1/actions/replay-partner", json=bad, headers={"X-CSRF-Token": token})
            assert refused.status_code == 409, bad
        assert len(webhook_rows(app)) == 4
    assert ("ada", "replay partner") in audit_actions(web)


def test_the_dashboard_shows_the_problems_of_the_last_check_and_tick(site, make_app):
    app = make_app(site)
    tick(app)
    site.statement("fine.md", "Fine", "2026-11-26T13:00:00+03:00")
    site.write("broken.md", '+++\ntitle = "No date"\n+++\nBody\n')
    checked = CliRunner().invoke(main, ["--config", str(site.root / "config.toml"), "check"])
    assert checked.exit_code == 1
    tick(app)
    web = console_of(app)
    browser = client(web)
    log_in(web, browser, "vera", VIEWER_PASSWORD)
    page = browser.get("/admin").get_data(as_text=True)
    assert "The last check (syndicate check," in page and "found 1 error(s)" in page
    assert "broken.md:1: error: published is required" in page
    assert "What the last tick found" in page
    overview = browser.get("/api/v1/overview").get_json()
    assert overview["last_check"]["errors"] == 1 and overview["last_check"]["by"] == "syndicate check"
    assert any("broken.md" in p for p in overview["last_tick"]["problem_list"])
