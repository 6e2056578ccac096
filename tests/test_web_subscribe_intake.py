"""Subscribe requests wait in the store for the tick: acted on once, in order, by one node, before the mail goes."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from conftest import Clock, Site
from web_support import WebSite, deliveries, make_web, plan_requests, stored_requests, subscribe

from syndicate.app import App
from syndicate.errors import TemplateError
from syndicate.pipeline import build, tick
from syndicate.plan import confirmations
from syndicate.plan import subscribers as removal
from syndicate.store import subscribers as store
from syndicate.subscribers import Status


@pytest.fixture
def web(site: Site, make_app: Callable[[Site], App]) -> WebSite:
    site.extra = "[web]\nsubscribe_per_client = 1000\nsubscribe_per_address = 1000\n"
    site.statement("one.md", "One", "2026-11-20T10:00:00Z")
    app = make_app(site)
    build(app)
    return make_web(app)


def mailed(web: WebSite) -> dict[str, int]:
    """Confirmations planned, by address."""
    with web.app.db.read() as conn:
        emails = {s.id: s.email for s in store.iterate(conn)}
    found: dict[str, int] = {}
    for delivery in deliveries(web.app):
        email = emails[int(delivery["target"])]
        found[email] = found.get(email, 0) + 1
    return found


def test_the_next_tick_sends_the_confirmation_of_a_request_made_before_it(web: WebSite) -> None:
    subscribe(web, "new@example.org")

    report = tick(web.app)

    assert report.stages["plan-confirmations"] == {"requests": 1, "confirmations": 1}
    [delivery] = deliveries(web.app)
    assert delivery["state"] == "sent", "the planning stage runs before the mail stage of the same tick"
    [message] = web.app.config.email.outbox.glob("*.eml")
    assert "new@example.org" in message.read_text()


def test_each_kind_of_address_is_handled_as_the_form_promises(web: WebSite) -> None:
    web.add("active@example.org")
    web.add("left@example.org", Status.UNSUBSCRIBED)
    web.add("bounced@example.org", Status.BOUNCED)
    web.add("complained@example.org", Status.COMPLAINED)
    web.add("waiting@example.org", Status.PENDING)
    with web.app.db.write() as conn:
        store.suppress(conn, "gone@example.org", "550 no such user", web.app.clock())
    before = {email: web.subscriber(email) for email in ("active@example.org", "bounced@example.org")}
    asked = ["new", "left", "waiting", "active", "bounced", "complained", "gone"]
    for name in asked:
        assert subscribe(web, f"{name}@example.org", frequency="weekly").status_code == 200

    assert plan_requests(web.app) == {"requests": 7, "confirmations": 3}

    assert mailed(web) == {"new@example.org": 1, "left@example.org": 1, "waiting@example.org": 1}
    for name in ("new", "left", "waiting"):
        renewed = web.subscriber(f"{name}@example.org")
        assert (renewed.status, renewed.frequency) == (Status.PENDING, "weekly"), name
    for email, subscriber in before.items():
        assert web.subscriber(email) == subscriber
    assert web.subscriber("complained@example.org").status == Status.COMPLAINED
    with web.app.db.read() as conn:
        assert store.by_email(conn, "gone@example.org") is None
    assert stored_requests(web.app) == []


def test_a_second_run_or_tick_finds_nothing_to_do(web: WebSite) -> None:
    subscribe(web, "once@example.org")
    plan_requests(web.app)

    assert plan_requests(web.app) == {}
    assert tick(web.app).stages["plan-confirmations"] == {}
    assert mailed(web) == {"once@example.org": 1}


def test_requests_are_taken_in_order_batch_after_batch(web: WebSite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(confirmations, "BATCH", 3)
    for frequency in ("daily", "weekly", "immediate", "daily", "weekly", "immediate", "daily"):
        subscribe(web, "changes@example.org", frequency=frequency)
    for i in range(3):
        subscribe(web, f"other{i}@example.org")

    assert plan_requests(web.app) == {"requests": 10, "confirmations": 4}

    assert web.subscriber("changes@example.org").frequency == "daily", "the newest request wins"
    assert stored_requests(web.app) == []


def test_leaving_after_asking_is_the_newer_wish(web: WebSite, clock: Clock) -> None:
    subscriber = web.add("undecided@example.org")
    subscribe(web, "undecided@example.org")  # active: the request would change nothing ...
    with web.app.db.write() as conn:  # ... and before the tick the reader unsubscribes
        store.set_status(conn, subscriber.id, Status.UNSUBSCRIBED, clock.advance(minutes=1))

    plan_requests(web.app)

    assert web.subscriber("undecided@example.org").status == Status.UNSUBSCRIBED
    assert mailed(web) == {}


def test_a_batch_that_fails_stays_stored_for_the_next_tick(
    site: Site, web: WebSite, make_app: Callable[[Site], App]
) -> None:
    template = site.root / "templates" / "email" / "confirm.txt"
    good = template.read_text()
    template.write_text("{% if %}broken")
    subscribe(web, "patient@example.org")

    with pytest.raises(TemplateError):
        plan_requests(web.app)

    assert stored_requests(web.app) == ["patient@example.org"]
    with web.app.db.read() as conn:
        assert store.by_email(conn, "patient@example.org") is None, "nothing of the failed batch was kept"
    template.write_text(good)
    assert plan_requests(make_app(site)) == {"requests": 1, "confirmations": 1}


def test_two_nodes_planning_at_once_act_on_each_request_once(
    site: Site, web: WebSite, make_app: Callable[[Site], App]
) -> None:
    emails = [f"reader{i % 40}@example.org" for i in range(120)]  # each address asked three times
    for email in emails:
        subscribe(web, email)
    nodes = [web.app, make_app(site)]
    done: list[dict[str, int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(nodes))

    def run(app: App) -> None:
        start.wait()
        try:
            done.append(plan_requests(app))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(app,)) for app in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(report.get("requests", 0) for report in done) == 120
    assert sum(report.get("confirmations", 0) for report in done) == 40
    assert mailed(web) == dict.fromkeys(set(emails), 1)
    assert stored_requests(web.app) == []


def test_removing_an_address_drops_its_waiting_requests_too(web: WebSite) -> None:
    subscribe(web, "gone@example.org")
    subscribe(web, "stays@example.org")

    with web.app.db.write() as conn:
        assert removal.remove(conn, "gone@example.org", web.app.clock()) is False  # not a subscriber yet
    plan_requests(web.app)

    assert mailed(web) == {"stays@example.org": 1}
    with web.app.db.read() as conn:
        assert store.by_email(conn, "gone@example.org") is None
