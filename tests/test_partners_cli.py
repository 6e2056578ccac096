"""The partner commands through click: partners list / test / enable, deliveries replay, status."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner, Result
from partner_site import AtomPartner, partner_toml, secret_for, webhook_rows
from servers.http import PartnerServer, Reply, refused_url

from syndicate.cli import main
from syndicate.pipeline import tick

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def partner(monkeypatch: pytest.MonkeyPatch) -> Iterator[AtomPartner]:
    """A partner site on loopback, verifying with the secret in PARTNER_SECRET."""
    with AtomPartner(secret_for(monkeypatch, "PARTNER_SECRET")) as server:
        yield server


@pytest.fixture
def now_site(site):
    """The site with its clock at the real time: the commands run on the real clock."""
    catch_up(site)
    return site


def catch_up(site) -> None:
    """Bring the test clock to the real time, which moved on while commands ran."""
    site.clock.now = max(site.clock.now, datetime.now(UTC))


def run(site, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(site.root / "config.toml"), *args])


def start(site, make_app, *tables: str):
    site.extra = "".join(tables)
    app = make_app(site)
    tick(app)
    return app


def publish(site, app, name: str = "first") -> None:
    # An hour before the clock, which is the real time: older statements are a backfill, not pushed.
    published = (site.clock.now - timedelta(hours=1)).isoformat(timespec="seconds")
    site.statement(f"{name}.md", name.title(), published, "A statement. It says things.")
    tick(app)


def test_list_shows_health_backlog_and_disabled(now_site, make_app, partner, monkeypatch):
    secret_for(monkeypatch, "DEAD_SECRET")
    app = start(
        now_site,
        make_app,
        partner_toml("a", partner.url, "PARTNER_SECRET"),
        partner_toml("dead", refused_url("/webhook"), "DEAD_SECRET", format="json"),
    )
    partner.queue(Reply.ok(), Reply.status(410))
    publish(now_site, app, "first")
    publish(now_site, app, "second")
    listed = run(now_site, "partners", "list")
    assert listed.exit_code == 0, listed.output
    a, dead = listed.output.splitlines()
    assert a.startswith(f"a\t{partner.url}\texcerpt/atom\tDISABLED since ")
    assert "410 Gone" in a
    assert "backlog 0" in a
    assert f"failing since {now_site.clock.now.isoformat()}: partner dead: could not reach" in dead
    assert dead.endswith("last success never\tbacklog 2\tmax age 7 d")
    rows = json.loads(run(now_site, "partners", "list", "--json").output)
    assert [(r["name"], r["disabled"], r["backlog"]) for r in rows] == [("a", True, 0), ("dead", False, 2)]
    status = json.loads(run(now_site, "status", "--json").output)
    assert status["partners"] == rows


def test_test_sends_a_signed_test_event_and_shows_the_reply(now_site, make_app, monkeypatch):
    with PartnerServer(secret_for(monkeypatch, "J_SECRET")) as receiver:
        start(now_site, make_app, partner_toml("j", receiver.url, "J_SECRET", format="json"))
        result = run(now_site, "partners", "test", "j")
        assert result.exit_code == 0, result.output
        (delivery,) = receiver.accepted
    assert delivery.payload["type"] == "syndicate.test"
    assert f"sent test event {delivery.webhook_id} to {receiver.url} (application/json, " in result.output
    assert "j answered 200 OK in " in result.output


def test_test_reports_a_refusal(now_site, make_app, partner):
    start(now_site, make_app, partner_toml("a", partner.url, "PARTNER_SECRET"))
    partner.queue(Reply.status(500, body=b"broken"))
    failed = run(now_site, "partners", "test", "a")
    assert failed.exit_code == 1
    assert "a answered 500 Internal Server Error: broken" in failed.output
    assert "partner a did not take the test event" in failed.output
    assert len(partner.accepted) == 0


def test_test_reports_no_reply_and_missing_secrets(now_site, make_app, monkeypatch):
    secret_for(monkeypatch, "R_SECRET")
    start(
        now_site,
        make_app,
        partner_toml("r", refused_url("/webhook"), "R_SECRET"),
        partner_toml("nosecret", refused_url("/webhook"), "UNSET_SECRET"),
    )
    monkeypatch.delenv("UNSET_SECRET", raising=False)
    refused = run(now_site, "partners", "test", "r")
    assert refused.exit_code == 1
    assert "Error: partner r: could not reach http://127.0.0.1:" in refused.output
    assert "Connection refused" in refused.output
    unset = run(now_site, "partners", "test", "nosecret")
    assert unset.exit_code == 1
    assert "partners[1].secret_env: environment variable UNSET_SECRET is not set" in unset.output
    unknown = run(now_site, "partners", "test", "nobody")
    assert unknown.exit_code == 2
    assert "no partner named 'nobody' (known: r, nosecret)" in unknown.output


def test_enable_sends_the_backlog(now_site, make_app, partner):
    app = start(now_site, make_app, partner_toml("a", partner.url, "PARTNER_SECRET"))
    partner.queue(Reply.status(410))
    publish(now_site, app, "first")
    publish(now_site, app, "second")
    assert [r.state for r in webhook_rows(app)] == ["failed", "pending"]
    enabled = run(now_site, "partners", "enable", "a")
    assert enabled.exit_code == 0, enabled.output
    assert enabled.output == "a enabled; 1 pending push(es) go at the next tick\n"
    catch_up(now_site)
    tick(app)
    assert [r.state for r in webhook_rows(app)] == ["failed", "sent"]
    assert (
        run(now_site, "partners", "enable", "a").output
        == "a was not disabled; 0 pending push(es) go at the next tick\n"
    )


def test_replay_pushes_again_as_new_deliveries(now_site, make_app, partner):
    app = start(now_site, make_app, partner_toml("a", partner.url, "PARTNER_SECRET"))
    publish(now_site, app, "first")
    publish(now_site, app, "second")
    first_ids = [d.webhook_id for d in partner.accepted]
    since = now_site.clock.now.astimezone(UTC).strftime("%Y-%m-%d")  # site.timezone: Europe/Istanbul, ahead of UTC
    replayed = run(now_site, "deliveries", "replay", "--partner", "a", "--since", since)
    assert replayed.exit_code == 0, replayed.output
    assert replayed.output.startswith("2 event(s) will be pushed to a again")
    catch_up(now_site)
    tick(app)
    assert [r.state for r in webhook_rows(app)] == ["sent"] * 4
    again = [d.webhook_id for d in partner.accepted[2:]]
    assert len(again) == 2
    assert set(again).isdisjoint(first_ids)  # new ids: the partner does not drop them as duplicates
    assert partner.duplicates == []
    nothing = run(now_site, "deliveries", "replay", "--partner", "a", "--since", "2100-01-01")
    assert nothing.output.startswith("0 event(s)")
    unknown = run(now_site, "deliveries", "replay", "--partner", "zz", "--since", since)
    assert unknown.exit_code == 2
    assert "no partner named 'zz'" in unknown.output
    assert os.environ["PARTNER_SECRET"]
