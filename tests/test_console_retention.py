"""Old deliveries are folded away: the console's figures and per-edition counts are the same before and after.

An edition goes through a real SMTP server on loopback that refuses one
reader (failed) and hangs up on another after taking the message (unknown);
a reader's hard bounce comes back as a DSN. Time passes beyond ``[outbox]
keep_days``: the sent deliveries go, the failed and unknown ones stay, and so
does the one the bounce names.
"""

from __future__ import annotations

from datetime import UTC, datetime

from inbound_reports import postfix_dsn
from servers.smtp import SMTPServer
from servers.smtp_faults import Fault
from sqlalchemy import select
from test_email_delivery import add_subscribers

from syndicate.outbox import rollups
from syndicate.pipeline import tick
from syndicate.store.schema import deliveries

READERS = [f"reader{i}@example.org" for i in range(6)]
REFUSED, UNANSWERED, BOUNCING = READERS[0], READERS[1], READERS[2]


def states(app) -> dict[int, str]:
    with app.db.read() as conn:
        return {int(i): str(s) for i, s in conn.execute(select(deliveries.c.id, deliveries.c.state))}


def shown(app) -> tuple[list[dict], list[dict]]:
    with app.db.read() as conn:
        return rollups.edition_reports(conn), rollups.hourly(conn, datetime(2026, 11, 26, tzinfo=UTC))


def test_figures_are_the_same_after_old_deliveries_are_removed_and_nothing_unknown_goes(site, make_app):
    faults = [Fault.rcpt(550, "5.7.1 Refused by local policy", recipients=REFUSED),
              Fault.drop_after_data(store=True, recipients=UNANSWERED)]  # fmt: skip
    with SMTPServer(faults) as server:
        site.extra = (
            '[email]\ntransport = "smtp"\nfrom_address = "news@example.org"\n'
            'return_path = "bounces@bounces.example.org"\n'
            f'[email.smtp]\nhost = "127.0.0.1"\nport = {server.port}\nconnections = 1\ntimeout_seconds = 5.0\n'
            "[outbox]\nkeep_days = 30\n"
        )
        app = make_app(site)
        tick(app)
        add_subscribers(app, READERS)
        site.statement("news.md", "News", "2026-11-26T14:00:00+03:00")
        tick(app)
        site.clock.advance(minutes=10)  # the connection the server hung up on: the rest go on the next try
        tick(app)
        paths = {m.recipients[0]: m.sender for m in server.messages}
    path = paths[BOUNCING]
    delivery = int(path.split("+")[1].split(".")[0])
    report, _ = app.receiver.store(postfix_dsn(path, BOUNCING, delivery), "smtp", "", [path])
    app.receiver.process(report)
    site.clock.advance(minutes=10)
    tick(app)  # everything is in the rollups now
    before = states(app)
    assert sorted(before.values()) == ["failed", "sent", "sent", "sent", "sent", "unknown"]
    editions_before, hours_before = shown(app)
    assert editions_before[0]["sent"] == 4 and editions_before[0]["hard"] == 1

    site.clock.advance(days=31)
    report = tick(app)
    assert report.stages["rollup"] == {"removed": 3}
    after = states(app)
    assert sorted(after.values()) == ["failed", "sent", "unknown"], "failed, unknown and the bounced one stay"
    assert after[delivery] == "sent"
    editions_after, hours_after = shown(app)
    assert editions_after == editions_before
    assert hours_after == hours_before and sum(h["count"] for h in hours_after) == 6
    assert tick(app).stages["rollup"] == {}, "nothing more to fold"
