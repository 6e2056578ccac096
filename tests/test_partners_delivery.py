"""Pushing events to partner sites over real loopback HTTP, on each database engine.

Every receiver checks each signature with the `standardwebhooks` library and
de-duplicates by `webhook-id`. After every fault, each event is delivered,
waiting for a retry with its reason, or failed with the reply: none is lost.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import feedparser
import pytest
from partner_site import AtomPartner, assert_accounted, partner_toml, secret_for, start, webhook_rows
from servers.http import PartnerServer, RecordedRequest, Reply, Response, new_secret, refused_url
from standardwebhooks.webhooks import Webhook
from validators.atom import validate_atom

from syndicate import outbox
from syndicate.app import WEBHOOK_RETRY
from syndicate.deliver.webhooks.sender import WebhookSender
from syndicate.outbox import Channel
from syndicate.pipeline import build, never, tick
from syndicate.store import partners as partner_store

pytestmark = pytest.mark.timeout(60)
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every lane thread (and server thread) is gone when the test ends."""
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in threading.enumerate() if t not in before]
    assert leaked == []


@pytest.fixture
def partner(monkeypatch: pytest.MonkeyPatch) -> Iterator[AtomPartner]:
    """A partner site on loopback, verifying with the secret in PARTNER_A_SECRET."""
    with AtomPartner(secret_for(monkeypatch, "PARTNER_A_SECRET")) as server:
        yield server
    assert server.errors == []


def publish(site, app, name: str = "first", **meta: object) -> None:
    """Write a statement and run a tick."""
    meta.setdefault("categories", ["News"])
    body = "The association welcomes the decision. It thanks every member for the work done this year."
    site.statement(f"{name}.md", name.title(), "2026-11-20T10:00:00+03:00", body, **meta)
    tick(app)


def test_a_new_statement_is_pushed_signed_with_source_rights_and_attribution(site, make_app, partner):
    app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_A_SECRET", excerpt_words=5))
    publish(site, app)
    (delivery,) = partner.accepted
    (row,) = webhook_rows(app)
    assert (row.state, row.attempts, row.target) == ("sent", 1, "a")
    assert delivery.webhook_id.startswith(f"msg_{row.id}_")
    assert delivery.request.header("content-type") == "application/atom+xml"
    assert validate_atom(delivery.payload) == []
    parsed = feedparser.parse(delivery.payload)
    assert parsed.bozo == 0
    (entry,) = parsed.entries
    feed_entry = feedparser.parse((site.feeds / "atom.xml").read_bytes()).entries[0]
    assert entry.id == feed_entry.id  # the same tag: id as the feeds
    assert entry.link == "https://example.org/statements/first"
    assert entry.source.id == entry.source.links[0].href == "https://example.org/feeds/atom.xml"
    assert entry.source.title == "Example Org"
    assert entry.rights == "All rights reserved; quote only with an active link."
    assert [t.term for t in entry.tags] == ["News"]
    assert entry.title_detail.language == "en"
    assert (entry.published, entry.updated) == ("2026-11-20T10:00:00+03:00", "2026-11-20T10:00:00+03:00")
    assert entry.content[0].value.startswith("<p>The association welcomes the decision.</p>")
    assert 'Read the full statement at <a href="https://example.org/statements/first">' in entry.content[0].value
    assert 'First published by <a href="https://example.org">Example Org</a>' in entry.content[0].value
    with app.db.read() as conn:
        assert partner_store.states(conn)["a"].last_success_at == site.clock.now


def test_json_partner_gets_the_same_fields(site, make_app, monkeypatch):
    with PartnerServer(secret_for(monkeypatch, "PARTNER_J_SECRET")) as receiver:
        app = start(site, make_app, partner_toml("j", receiver.url, "PARTNER_J_SECRET", license="full", format="json"))
        publish(site, app)
        (delivery,) = receiver.accepted
    assert delivery.request.header("content-type") == "application/json"
    assert delivery.payload["type"] == "statement.published"
    data = delivery.payload["data"]
    assert data["url"] == "https://example.org/statements/first"
    assert data["id"].startswith("tag:example.org,2026-11-20:statements/first")
    assert data["source"] == {
        "id": "https://example.org/feeds/atom.xml",
        "title": "Example Org",
        "feed_url": "https://example.org/feeds/atom.xml",
    }
    assert data["rights"] == "All rights reserved; quote only with an active link."
    assert (data["language"], data["tags"], data["license"]) == ("en", ["News"], "full")
    assert data["content_html"].startswith("<p>The association welcomes the decision. It thanks every member")
    assert "First published by" in data["attribution"]


# -- the fault matrix: each fault, then the retry --


def _hang(partner: AtomPartner) -> None:
    partner.queue(Reply.hang())


FAULTS = {
    # name: (script the fault, expected words in the error)
    "timeout": (_hang, "no reply from"),
    "server-error": (lambda p: p.queue(Reply.status(500, body=b"database down")), "500 Internal Server Error"),
    "redirect": (lambda p: p.queue(Reply.redirect(301, "/moved")), "redirects are not followed"),
    "connection-closed": (lambda p: p.queue(Reply.close()), "could not reach"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_then_retry_delivers_once(site, make_app, partner, fault):
    script, words = FAULTS[fault]
    app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_A_SECRET", timeout_seconds=0.5))
    script(partner)
    publish(site, app)
    (row,) = webhook_rows(app)
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.last_error.startswith("partner a: ")
    assert partner.url in row.last_error
    assert words in row.last_error
    assert row.due_at == site.clock.now + timedelta(seconds=WEBHOOK_RETRY.waits[0])
    assert_accounted(app)
    partner.release()  # a hanging request is now processed: the partner has it, though we never heard
    site.clock.advance(seconds=5)
    tick(app)
    (row,) = webhook_rows(app)
    assert (row.state, row.attempts) == ("sent", 2)
    (delivery,) = partner.accepted
    assert partner.requests_to("/moved") == []  # redirects are never followed
    ids = [r.header("webhook-id") for r in partner.requests_to("/webhook")]
    assert ids == [delivery.webhook_id, delivery.webhook_id]  # a retry keeps its id
    assert len(partner.duplicates) == (1 if fault == "timeout" else 0)


def test_trickling_reply_does_not_hold_the_push(site, make_app, partner):
    app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_A_SECRET", timeout_seconds=0.5))
    partner.queue(Reply.trickle(b"x" * 200, interval=0.05))  # 10 s of body at this pace
    publish(site, app)
    (row,) = webhook_rows(app)
    assert row.state == "sent"
    assert len(partner.accepted) == 1


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_is_honoured(site, make_app, partner, form):
    app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_A_SECRET"))
    later = site.clock.now + timedelta(minutes=7)
    reply = Reply.retry_after(429, 420) if form == "seconds" else Reply.retry_after(503, date=later)
    partner.queue(reply)
    publish(site, app)
    (row,) = webhook_rows(app)
    assert (row.state, row.due_at) == ("pending", later)
    assert "asked to wait until" in row.last_error
    site.clock.advance(minutes=6)
    tick(app)
    assert len(partner.requests) == 1  # not before the time it asked for
    site.clock.advance(minutes=1)
    tick(app)
    assert (webhook_rows(app)[0].state, len(partner.accepted)) == ("sent", 1)


def test_refused_connection_retries_on_the_schedule_then_fails(site, make_app, monkeypatch):
    secret_for(monkeypatch, "PARTNER_R_SECRET")
    app = start(site, make_app, partner_toml("r", refused_url("/webhook"), "PARTNER_R_SECRET"))
    publish(site, app)
    for attempt, wait in enumerate(WEBHOOK_RETRY.waits, start=1):
        (row,) = webhook_rows(app)
        assert (row.state, row.attempts) == ("pending", attempt)
        assert row.due_at == site.clock.now + timedelta(seconds=wait)
        site.clock.advance(seconds=wait)
        tick(app)
    (row,) = webhook_rows(app)
    assert (row.state, row.attempts) == ("failed", len(WEBHOOK_RETRY.waits) + 1)
    assert "partner r: could not reach" in row.last_error
    assert "Connection refused" in row.last_error
    with app.db.read() as conn:
        state = partner_store.states(conn)["r"]
    assert (state.failing_since, state.last_success_at) == (row.created_at, None)


def test_410_disables_the_partner_until_enabled(site, make_app, partner):
    app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_A_SECRET"))
    partner.queue(Reply.status(410, body=b"endpoint retired"))
    publish(site, app, "first")
    publish(site, app, "second")
    first, second = webhook_rows(app)
    assert first.state == "failed"
    assert "410 Gone: endpoint retired" in first.last_error
    assert (second.state, second.attempts) == ("pending", 0)  # not sent to a partner that is gone
    assert "partner a is disabled" in second.last_error
    assert len(partner.requests) == 1
    assert_accounted(app)
    with app.db.write() as conn:
        assert partner_store.states(conn)["a"].disabled
        partner_store.enable(conn, "a")
        assert outbox.make_due(conn, Channel.WEBHOOK, "a", site.clock.now) == 1
    tick(app)
    assert [r.state for r in webhook_rows(app)] == ["failed", "sent"]
    assert len(partner.accepted) == 1


def test_rotation_signs_with_both_secrets(site, make_app, monkeypatch):
    old, new = secret_for(monkeypatch, "PARTNER_OLD"), secret_for(monkeypatch, "PARTNER_NEW")
    with AtomPartner(old) as on_old, AtomPartner(new) as on_new:
        app = start(
            site,
            make_app,
            partner_toml("o", on_old.url, "PARTNER_NEW", previous_secret_env="PARTNER_OLD"),
            partner_toml("n", on_new.url, "PARTNER_NEW", previous_secret_env="PARTNER_OLD"),
        )
        publish(site, app)
        (from_old,), (from_new,) = on_old.accepted, on_new.accepted
    request = from_old.request
    assert request.header("webhook-signature").count("v1,") == 2
    for secret in (old, new):  # each key alone verifies: the partner may switch whenever it likes
        Webhook(secret).verify(request.body, request.headers, json_parse=False)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(new_secret()).verify(request.body, request.headers, json_parse=False)
    assert (from_old.secret_index, from_new.secret_index) == (0, 0)


def test_crash_after_hand_off_is_retried_with_the_same_id(site, make_app, partner):
    app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_A_SECRET"))
    site.statement("first.md", "First", "2026-11-20T10:00:00+03:00", "Body.")
    build(app)
    app.stage("plan-partners").run(site.clock.now, never)
    sender = app.stage("send-webhooks")
    assert isinstance(sender, WebhookSender)
    claims = app.outbox.claim("webhook", 10, site.clock.now)
    list(sender.deliver(claims, never))  # the body left; the process dies before recording it
    assert len(partner.accepted) == 1
    site.clock.advance(seconds=app.config.scheduler.lease_seconds + 1)
    assert app.outbox.reap(site.clock.now)["webhook_after_handoff"] == 1
    tick(app)
    (row,) = webhook_rows(app)
    assert (row.state, row.attempts) == ("sent", 2)
    (delivery,) = partner.accepted
    assert [d.webhook_id for d in partner.duplicates] == [delivery.webhook_id]


class ReleasesTheSlowOne(AtomPartner):
    """A partner that takes its push only while another partner's push is held, and then lets that one go.

    If the sender served partners one after another, this push would come
    either before the other (and wait here for a hold that never comes: 409)
    or after the other's timeout (which the sender records as a failure).
    Only pushes in flight at the same time are both sent.
    """

    def __init__(self, secret: str, slow: AtomPartner) -> None:
        super().__init__(secret)
        self.slow = slow

    def process(self, request: RecordedRequest) -> Response:
        """Accept only while the slow partner holds its request; then release it."""
        try:
            self.slow.wait_until(lambda: self.slow.hanging == 1)
        except TimeoutError:
            return Response(409, body=b"the slow partner was not holding a push")
        self.slow.release()
        return super().process(request)


def test_partners_are_pushed_to_at_the_same_time(site, make_app, monkeypatch):
    secret = secret_for(monkeypatch, "PARTNER_SECRET")
    with AtomPartner(secret) as slow, ReleasesTheSlowOne(secret, slow) as quick:
        slow.set_default(Reply.hang())
        app = start(
            site,
            make_app,
            partner_toml("slow", slow.url, "PARTNER_SECRET", timeout_seconds=5),
            partner_toml("quick", quick.url, "PARTNER_SECRET", timeout_seconds=5),
        )
        publish(site, app)
        assert {r.target: r.state for r in webhook_rows(app)} == {"slow": "sent", "quick": "sent"}
        assert (len(slow.accepted), len(quick.accepted)) == (1, 1)


def test_a_failing_partner_costs_one_attempt_per_run(site, make_app, partner):
    app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_A_SECRET", timeout_seconds=0.5))
    partner.set_default(Reply.hang())
    for name in ("one", "two", "three"):
        site.statement(f"{name}.md", name, "2026-11-20T10:00:00+03:00", "Body.")
    tick(app)
    rows = webhook_rows(app)
    assert [(r.state, r.attempts) for r in rows] == [("pending", 1), ("pending", 0), ("pending", 0)]
    assert len(partner.requests) == 1  # the rest waited instead of timing out one after another
    assert all(r.due_at == rows[0].due_at for r in rows)
    assert "waiting: the push before it failed" in rows[1].last_error


def test_after_several_failures_the_pushes_behind_still_wait_for_the_failed_one(site, make_app, partner):
    app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_A_SECRET", timeout_seconds=0.5))
    partner.set_default(Reply.status(503))
    for name in ("one", "two", "three"):
        site.statement(f"{name}.md", name, "2026-11-20T10:00:00+03:00", "Body.")
    tick(app)
    for _ in range(3):
        first = webhook_rows(app)[0]
        site.clock.now = first.due_at  # exactly when the failed push is due again, on its growing schedule
        tick(app)
        rows = webhook_rows(app)
        assert rows[0].attempts > first.attempts
        assert all(r.due_at >= rows[0].due_at for r in rows[1:]), "nothing behind it is due before it"
        assert all(r.attempts == 0 for r in rows[1:]), "the pushes behind it are not tried out of order"
    partner.set_default(Reply.ok())
    site.clock.now = webhook_rows(app)[0].due_at
    tick(app)
    assert [r.state for r in webhook_rows(app)] == ["sent", "sent", "sent"]
    arrived = [int(d.webhook_id.split("_")[1]) for d in partner.accepted]
    assert arrived == sorted(arrived), "they arrive in the order they were planned"
