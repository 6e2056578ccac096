"""Planning partner events: once per revision, to the partners they concern; retractions, on each engine."""

from __future__ import annotations

import os

import feedparser
import pytest
from lxml import etree
from partner_site import AtomPartner, loopback_partner, partner_toml, secret_for, start, webhook_rows
from servers.http import Reply, refused_url
from sqlalchemy import select

from syndicate.pipeline import build, never, tick
from syndicate.plan.events import CURSOR
from syndicate.store import meta
from syndicate.store.schema import events

pytestmark = pytest.mark.timeout(60)
TOMBSTONES = "{http://purl.org/atompub/tombstones/1.0}"
BODY = "The association welcomes the decision. It thanks every member."


partner = pytest.fixture(loopback_partner)


def plan_only(app) -> dict[str, int]:
    """Ingest and plan, but push nothing; return what the planner counted."""
    build(app)
    counts: dict[str, int] = app.stage("plan-partners").run(app.clock(), never)
    return counts


def statement(site, name: str = "first", **meta: object) -> None:
    meta.setdefault("categories", ["News"])
    body = meta.pop("body", BODY)
    site.statement(f"{name}.md", name.title(), "2026-11-20T10:00:00+03:00", str(body), **meta)


def targets(app) -> dict[str, list[str]]:
    """Statement id -> partners its events were planned for, in order."""
    with app.db.read() as conn:
        changes = {row.id: row.statement_id for row in conn.execute(select(events))}
    found: dict[str, list[str]] = {}
    for row in webhook_rows(app):
        found.setdefault(changes[row.source_id], []).append(row.target)
    return found


def test_statements_on_record_before_the_first_run_are_not_pushed(site, make_app, partner):
    statement(site, "old")
    app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_SECRET"))
    assert webhook_rows(app) == []
    statement(site, "new")
    tick(app)
    assert targets(app) == {"new": ["a"]}
    assert len(partner.accepted) == 1


def test_each_revision_is_one_event_planned_once(site, make_app, monkeypatch):
    secret_for(monkeypatch, "PARTNER_SECRET")
    app = start(site, make_app, partner_toml("a", refused_url(), "PARTNER_SECRET"))
    statement(site)
    plan_only(app)
    statement(site, body="The association welcomes the decision, corrected.")
    plan_only(app)
    with app.db.write() as conn:
        meta.put(conn, CURSOR, 0)  # another node, or a lost cursor: planning everything again
    plan_only(app)
    with app.db.read() as conn:
        planned = [(row.key, row.change) for row in conn.execute(select(events).order_by(events.c.id))]
    assert [change for _, change in planned] == ["published", "updated"]
    assert len(webhook_rows(app)) == 2


def test_filters_choose_the_partners(site, make_app, monkeypatch):
    secret_for(monkeypatch, "PARTNER_SECRET")
    url = refused_url()
    app = start(
        site,
        make_app,
        partner_toml("turkish", url, "PARTNER_SECRET", languages=["tr"]),
        partner_toml("news", url, "PARTNER_SECRET", categories=["News", "Press"]),
        partner_toml("everything", url, "PARTNER_SECRET"),
        partner_toml("nothing-matches", url, "PARTNER_SECRET", languages=["ru"], categories=["Sports"]),
    )
    statement(site, "english-news", categories=["News"])
    statement(site, "turkish-speech", lang="tr", categories=["Speeches"])
    statement(site, "english-speech", categories=["Speeches"])
    assert plan_only(app) == {"events": 3, "deliveries": 5}
    assert targets(app) == {
        "english-news": ["news", "everything"],
        "turkish-speech": ["turkish", "everything"],
        "english-speech": ["everything"],
    }


def test_an_update_reaches_whoever_holds_the_statement(site, make_app, partner):
    with AtomPartner(os.environ["PARTNER_SECRET"]) as speeches:
        app = start(
            site,
            make_app,
            partner_toml("news", partner.url, "PARTNER_SECRET", categories=["News"]),
            partner_toml("speeches", speeches.url, "PARTNER_SECRET", categories=["Speeches"]),
        )
        statement(site, categories=["News"])
        tick(app)
        site.clock.advance(hours=1)
        statement(site, categories=["Speeches"], body="The decision, now filed under speeches.")
        tick(app)
        assert targets(app) == {"first": ["news", "news", "speeches"]}
        assert [r.state for r in webhook_rows(app)] == ["sent", "sent", "sent"]
        updated = feedparser.parse(speeches.accepted[0].payload).entries[0]
    first, correction = (feedparser.parse(d.payload).entries[0] for d in partner.accepted)
    assert first.id == correction.id == updated.id
    assert correction.updated > first.updated
    assert "filed under speeches" in correction.content[0].value


def test_retraction_of_a_sent_statement_pushes_a_tombstone(site, make_app, partner):
    app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_SECRET"))
    statement(site)
    tick(app)
    site.clock.advance(hours=1)
    statement(site, retracted=True)
    tick(app)
    assert [r.state for r in webhook_rows(app)] == ["sent", "sent"]
    published, retracted = partner.accepted
    entry = feedparser.parse(published.payload).entries[0]
    tombstone = etree.fromstring(retracted.payload)
    assert tombstone.tag == f"{TOMBSTONES}deleted-entry"
    assert tombstone.get("ref") == entry.id
    assert tombstone.get("when") == "2026-11-26T16:00:00+03:00"
    assert tombstone.find("{http://www.w3.org/2005/Atom}link").get("href") == entry.link
    parsed = feedparser.parse(retracted.payload)
    assert parsed.bozo == 0
    assert parsed.feed["at_deleted-entry"]["ref"] == entry.id


def test_retraction_before_the_push_went_out_cancels_it_and_sends_nothing(site, make_app, partner):
    app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_SECRET"))
    statement(site)
    plan_only(app)
    statement(site, retracted=True)
    build(app)
    assert app.stage("plan-partners").run(app.clock(), never) == {"events": 1, "cancelled": 1}
    tick(app)
    (row,) = webhook_rows(app)
    assert (row.state, row.last_error) == ("cancelled", "statement retracted before it was sent")
    assert partner.requests == []


def test_retraction_after_an_unanswered_push_cancels_the_retry_and_sends_a_tombstone(site, make_app, partner):
    app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_SECRET", timeout_seconds=0.5))
    partner.queue(Reply.hang())
    statement(site)
    tick(app)
    partner.release()  # the partner did take it, though no reply ever came back
    partner.wait_until(lambda: len(partner.accepted) == 1)
    statement(site, retracted=True)
    tick(app)
    assert [r.state for r in webhook_rows(app)] == ["cancelled", "sent"]
    assert etree.fromstring(partner.accepted[1].payload).tag == f"{TOMBSTONES}deleted-entry"


def test_retraction_recorded_but_not_yet_planned_stops_the_push(site, make_app, partner):
    app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_SECRET"))
    statement(site)
    plan_only(app)
    statement(site, retracted=True)
    build(app)  # the retraction is on record; the planner has not run yet
    assert app.stage("send-webhooks").run(app.clock(), never) == {"cancelled": 1}
    assert partner.requests == []
