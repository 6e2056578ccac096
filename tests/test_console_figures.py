"""The console's figures: counted from the hourly rollups and the indexes, and the same as counting the outbox.

Deliveries are made with real sends (the file transport) and settled at
known hours; the figures are compared with a plain count over the outbox,
before the rollup stage has run, after it, and after more settle past it.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select
from test_email_delivery import add_subscribers

from syndicate.console import figures
from syndicate.outbox import rollups
from syndicate.pipeline import tick
from syndicate.store.schema import deliveries, delivery_rollups


def outbox_by_hour(app) -> Counter[tuple[str, str]]:
    """The plain count the rollups stand in for: settled deliveries by hour and channel:state."""
    found: Counter[tuple[str, str]] = Counter()
    with app.db.read() as conn:
        for state, channel, finished in conn.execute(select(deliveries.c.state, deliveries.c.channel,
                                                            deliveries.c.finished_at)):  # fmt: skip
            if finished is not None and state in ("sent", "failed", "unknown", "cancelled"):
                found[(finished.strftime("%Y-%m-%d %H"), f"{channel}:{state}")] += 1
    return found


def shown_by_hour(app, hours: int = 72) -> Counter[tuple[str, str]]:
    with app.db.read() as conn:
        rows = figures.deliveries_hourly(conn, app.clock(), hours)
    return Counter({(row["hour"], key): n for row in rows for key, n in row["counts"].items()})


def test_the_hourly_and_per_edition_figures_match_the_outbox_before_and_after_the_rollup(site, make_app):
    app = make_app(site)
    tick(app)
    add_subscribers(app, [f"reader{i}@example.org" for i in range(6)])
    site.statement("one.md", "One", "2026-11-26T14:00:00+03:00")
    tick(app)  # sends edition one now (12:00 UTC) and rolls up what settled before 11:58
    site.clock.advance(hours=2)
    site.statement("two.md", "Two", "2026-11-26T16:00:00+03:00")
    tick(app)  # sends edition two at 14:00, rolls up edition one
    assert shown_by_hour(app) == outbox_by_hour(app) and sum(outbox_by_hour(app).values()) == 12
    with app.db.read() as conn:
        rolled = conn.execute(select(func.sum(delivery_rollups.c.count))).scalar_one()
        editions = rollups.edition_reports(conn)
    assert rolled == 6, "edition one is in the rollups; edition two, sent just now, is counted live"
    assert [e["sent"] for e in editions] == [6, 6]
    site.clock.advance(minutes=5)
    tick(app)
    with app.db.read() as conn:
        assert conn.execute(select(func.sum(delivery_rollups.c.count))).scalar_one() == 12
        assert [e["sent"] for e in rollups.edition_reports(conn)] == [6, 6], "the same after the rollup"
    assert shown_by_hour(app) == outbox_by_hour(app)
    tick(app)  # nothing new: nothing counted twice
    assert shown_by_hour(app) == outbox_by_hour(app)


def test_subscribers_per_day_count_each_kind_on_its_own_day(site, make_app):
    app = make_app(site)
    tick(app)
    add_subscribers(app, ["a@example.org", "b@example.org"])  # today, confirmed
    site.clock.advance(days=1)
    add_subscribers(app, ["c@example.org"])
    with app.db.read() as conn:
        days = figures.subscribers_daily(conn, app.clock(), 3)
    assert [d["day"] for d in days] == ["2026-11-25", "2026-11-26", "2026-11-27"]
    assert [d["new"] for d in days] == [0, 2, 1]
    assert all(d["unsubscribed"] == d["bounced"] == 0 for d in days)
    assert (site.clock.now - timedelta(days=1)).strftime("%Y-%m-%d") == days[1]["day"]
