"""Planning editions: one per statement and language, digests on the site's clock, each planned once.

The clock is moved by hand; ``tick`` runs the whole pipeline (ingest, plan,
deliver through the file transport), so what is planned is also what is sent.
"""

from __future__ import annotations

import email
import threading
from email import policy
from typing import Any

from conftest import Site
from sqlalchemy import func, select

from syndicate.app import App
from syndicate.pipeline import build, never, tick
from syndicate.store import subscribers as subscriber_store
from syndicate.store.schema import deliveries, editions, subscribers
from syndicate.subscribers import Frequency, NewSubscriber, Status

PUBLISHED = "2026-11-26T14:30:00+03:00"  # half an hour before the clock's 12:00 UTC


def add(
    app: App,
    address: str,
    *languages: str,
    categories: tuple[str, ...] = (),
    frequency: str = "immediate",
    status: Status = Status.ACTIVE,
) -> None:
    """Store a subscriber (consent given elsewhere), then move it to ``status``."""
    now = app.clock()
    new = NewSubscriber(address, languages or ("en",), categories, Frequency(frequency), True, "test")
    with app.db.write() as conn:
        subscriber_id = subscriber_store.add(conn, new, now)
        if status != Status.ACTIVE:
            subscriber_store.set_status(conn, subscriber_id, status, now)


def planned(app: App) -> dict[str, set[str]]:
    """edition key -> the addresses it was planned for."""
    query = (
        select(editions.c.key, subscribers.c.email)
        .select_from(editions)
        .outerjoin(deliveries, (deliveries.c.source_kind == "edition") & (deliveries.c.source_id == editions.c.id))
        .outerjoin(subscribers, deliveries.c.target == subscribers.c.id.cast(deliveries.c.target.type))
    )
    found: dict[str, set[str]] = {}
    with app.db.read() as conn:
        for key, address in conn.execute(query):
            found.setdefault(key, set()).update({address} if address else set())
    return found


def delivery_states(app: App) -> dict[str, str]:
    """subscriber address -> the state of its delivery."""
    to = deliveries.c.target == subscribers.c.id.cast(deliveries.c.target.type)
    query = select(subscribers.c.email, deliveries.c.state).select_from(deliveries).join(subscribers, to)
    with app.db.read() as conn:
        return {address: state for address, state in conn.execute(query)}


def statements_in(app: App, key: str) -> str:
    """The text part of an edition as stored (rendered once, before personalisation)."""
    with app.db.read() as conn:
        data = conn.execute(select(editions.c.message).where(editions.c.key == key)).scalar_one()
    message = email.message_from_bytes(data, policy=policy.default)
    return str(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]


def installed(site: Site, make_app: Any, extra: str = "") -> App:
    """A site past its first tick (which only marks where planning starts)."""
    site.extra = extra
    app: App = make_app(site)
    tick(app)
    return app


def test_one_edition_per_statement_for_the_languages_and_categories_each_reader_chose(site, make_app):
    app = installed(site, make_app)
    add(app, "en@example.org", "en")
    add(app, "tr@example.org", "tr")
    add(app, "both@example.org", "en", "tr")
    add(app, "economy@example.org", "en", categories=("economy",))
    add(app, "culture@example.org", "en", categories=("culture",))
    site.statement("budget.md", "Budget", PUBLISHED, categories=["economy", "labour"])
    site.statement("butce.md", "Bütçe", PUBLISHED, lang="tr")
    assert tick(app).stages["plan-email"] == {"editions": 2, "deliveries": 5}
    with app.db.read() as conn:
        assert dict(conn.execute(select(editions.c.key, editions.c.recipients)).all()) == {
            "statement:budget": 3, "statement:butce": 2
        }  # fmt: skip
    assert planned(app) == {
        "statement:budget": {"en@example.org", "both@example.org", "economy@example.org"},
        "statement:butce": {"tr@example.org", "both@example.org"},
    }
    assert len(list((site.root / "outbox").glob("*.eml"))) == 5


def test_two_planners_at_the_same_time_plan_one_edition_and_one_delivery_each(site, make_app):
    first = installed(site, make_app)
    for i in range(20):
        add(first, f"r{i}@example.org")
    site.statement("news.md", "News", PUBLISHED)
    build(first)
    second = make_app(site)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def plan(app: App) -> None:
        try:
            start.wait()
            app.stage("plan-email").run(app.clock(), never)
        except BaseException as exc:  # reported below, from the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=plan, args=(app,)) for app in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with first.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(editions)).scalar_one() == 1
        targets = conn.scalars(select(deliveries.c.target)).all()
    assert len(targets) == len(set(targets)) == 20


def test_an_edition_goes_to_the_subscribers_active_when_it_is_planned(site, make_app):
    app = installed(site, make_app)
    add(app, "early@example.org")
    add(app, "pending@example.org", status=Status.PENDING)
    add(app, "gone@example.org", status=Status.UNSUBSCRIBED)
    site.statement("news.md", "News", PUBLISHED)
    tick(app)
    add(app, "late@example.org")
    site.clock.advance(minutes=5)
    tick(app)
    assert planned(app) == {"statement:news": {"early@example.org"}}


def test_an_updated_statement_is_not_mailed_again(site, make_app):
    app = installed(site, make_app)
    add(app, "reader@example.org")
    site.statement("news.md", "News", PUBLISHED, body="First words.")
    tick(app)
    site.statement("news.md", "News", PUBLISHED, body="Corrected words.")
    site.clock.advance(minutes=5)
    tick(app)
    assert planned(app) == {"statement:news": {"reader@example.org"}}


def test_an_updated_statement_is_mailed_again_when_resend_updates_is_set(site, make_app):
    app = installed(site, make_app, "[email]\nresend_updates = true\n")
    add(app, "reader@example.org")
    site.statement("news.md", "News", PUBLISHED, body="First words.")
    tick(app)
    site.statement("news.md", "News", PUBLISHED, body="Corrected words.")
    site.clock.advance(minutes=5)
    tick(app)
    keys = sorted(planned(app))
    assert keys[0] == "statement:news" and keys[1].startswith("statement:news:update:") and len(keys) == 2
    assert "Corrected words." in statements_in(app, keys[1])
    assert len(list((site.root / "outbox").glob("*.eml"))) == 2


def test_a_statement_retracted_before_its_mail_went_out_is_not_sent(site, make_app):
    app = installed(site, make_app)
    add(app, "reader@example.org")
    site.statement("news.md", "News", PUBLISHED)
    build(app)
    app.stage("plan-email").run(app.clock(), never)
    assert delivery_states(app) == {"reader@example.org": "pending"}
    site.statement("news.md", "News", PUBLISHED, retracted=True)
    site.clock.advance(minutes=1)
    tick(app)
    assert delivery_states(app) == {"reader@example.org": "cancelled"}
    assert list((site.root / "outbox").glob("*.eml")) == []


def test_a_backfill_of_old_statements_is_not_mailed(site, make_app):
    app = installed(site, make_app, "[email]\nmax_age_days = 7\n")
    add(app, "reader@example.org")
    add(app, "daily@example.org", frequency="daily")
    site.statement("old.md", "Old", "2026-11-10T10:00:00+03:00")
    site.statement("new.md", "New", PUBLISHED)
    tick(app)
    site.clock.advance(days=1)  # past the next daily digest
    tick(app)
    found = planned(app)
    assert found["statement:new"] == {"reader@example.org"}
    assert "statement:old" not in found
    [digest] = [key for key in found if key.startswith("digest:")]
    assert "New" in statements_in(app, digest) and "Old" not in statements_in(app, digest)


def test_a_new_installation_does_not_mail_its_history(site, make_app):
    site.statement("history.md", "History", PUBLISHED)
    app = make_app(site)
    add(app, "reader@example.org")
    tick(app)
    assert planned(app) == {}
    site.statement("news.md", "News", PUBLISHED)
    tick(app)
    assert planned(app) == {"statement:news": {"reader@example.org"}}


DIGESTS = '[email.digest]\ndaily = "09:00"\nweekly = "fri 09:30"\n'  # Istanbul time: 06:00 and 06:30 UTC


def test_daily_and_weekly_digests_go_out_at_their_time_in_the_site_zone(site, make_app):
    app = installed(site, make_app, DIGESTS)  # Thursday 26 November 2026, 15:00 in Istanbul
    add(app, "now@example.org")
    add(app, "daily@example.org", frequency="daily")
    add(app, "weekly@example.org", frequency="weekly")
    site.statement("first.md", "First", PUBLISHED)
    tick(app)
    assert planned(app) == {"statement:first": {"now@example.org"}}, "digest readers get no single mail"

    site.clock.now = site.clock.now.replace(day=27, hour=5, minute=59)
    tick(app)
    assert set(planned(app)) == {"statement:first"}
    site.clock.advance(minutes=1)
    assert tick(app).stages["plan-email"] == {"editions": 1, "deliveries": 1}
    assert tick(app).stages["plan-email"] == {}, "nothing is planned twice in one slot"
    daily = "digest:daily:2026-11-27:en:*"
    assert set(planned(app)) == {"statement:first", daily}
    assert planned(app)[daily] == {"daily@example.org"}
    assert "First" in statements_in(app, daily)

    site.clock.advance(minutes=30)
    tick(app)
    weekly = "digest:weekly:2026-11-27:en:*"
    assert planned(app)[weekly] == {"weekly@example.org"}
    assert "First" in statements_in(app, weekly)


def test_the_next_daily_digest_holds_only_what_was_published_since_the_last(site, make_app):
    app = installed(site, make_app, DIGESTS)
    add(app, "daily@example.org", frequency="daily")
    site.statement("first.md", "First", PUBLISHED)
    tick(app)
    site.clock.now = site.clock.now.replace(day=27, hour=6)
    tick(app)
    site.statement("second.md", "Second", "2026-11-27T12:00:00+03:00")
    site.clock.advance(days=1)
    tick(app)
    second = statements_in(app, "digest:daily:2026-11-28:en:*")
    assert "Second" in second and "First" not in second
    assert planned(app)["digest:daily:2026-11-28:en:*"] == {"daily@example.org"}


def test_digests_are_cut_per_language_and_category_choice(site, make_app):
    app = installed(site, make_app, DIGESTS)
    add(app, "en@example.org", "en", frequency="daily")
    add(app, "entr@example.org", "en", "tr", frequency="daily")
    add(app, "economy@example.org", "en", categories=("economy",), frequency="daily")
    site.statement("budget.md", "Budget", PUBLISHED, categories=["economy"])
    site.statement("festival.md", "Festival", PUBLISHED, categories=["culture"])
    site.statement("butce.md", "Bütçe", PUBLISHED, lang="tr")
    tick(app)
    site.clock.now = site.clock.now.replace(day=27, hour=6)
    tick(app)
    found = {key: people for key, people in planned(app).items() if key.startswith("digest:")}
    day = "digest:daily:2026-11-27"
    assert found == {
        f"{day}:en:*": {"en@example.org", "entr@example.org"},
        f"{day}:tr:*": {"entr@example.org"},
        f"{day}:en:,economy,": {"economy@example.org"},
    }
    economy = statements_in(app, f"{day}:en:,economy,")
    assert "Budget" in economy and "Festival" not in economy


def test_a_statement_retracted_before_the_digest_is_left_out_of_it(site, make_app):
    app = installed(site, make_app, DIGESTS)
    add(app, "daily@example.org", frequency="daily")
    site.statement("kept.md", "Kept", PUBLISHED)
    site.statement("withdrawn.md", "Withdrawn", PUBLISHED)
    tick(app)
    site.statement("withdrawn.md", "Withdrawn", PUBLISHED, retracted=True)
    site.clock.advance(hours=1)
    tick(app)
    site.clock.now = site.clock.now.replace(day=27, hour=6)
    tick(app)
    digest = statements_in(app, "digest:daily:2026-11-27:en:*")
    assert "Kept" in digest and "Withdrawn" not in digest
