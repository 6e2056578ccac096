"""Several relays: messages spread by weight; one down, throttling or out of quota, and the others take over.

Two fault-injecting SMTP servers on loopback play the relays. Every test
checks the one promise first: each subscriber got exactly one copy, from
one relay or the other.
"""

from __future__ import annotations

import threading
from collections import Counter

from click.testing import CliRunner
from servers.smtp import Fault, SMTPServer
from sqlalchemy import func, select
from test_email_delivery import add_subscribers, states

from syndicate.cli import main
from syndicate.cli.core import _print_status
from syndicate.pipeline import tick
from syndicate.status import gather
from syndicate.store.schema import deliveries
from syndicate.web.metrics import exposition

RELAYS = """
[email]
transport = "smtp"
from_address = "news@example.org"
batch = 4

[[email.relays]]
name = "own"
host = "127.0.0.1"
port = {a}
connections = 2
timeout_seconds = 2.0
weight = {weight_a}
daily_limit = {limit_a}

[[email.relays]]
name = "provider"
host = "127.0.0.1"
port = {b}
connections = 2
timeout_seconds = 2.0
weight = 1
"""
ADDRESSES = [f"reader{i}@example.org" for i in range(40)]


def _site(site, a: SMTPServer, b: SMTPServer, weight_a: float = 1, limit_a: int = 0):  # type: ignore[no-untyped-def]
    site.extra = RELAYS.format(a=a.port, b=b.port, weight_a=weight_a, limit_a=limit_a)
    return site


def _publish(site, make_app, addresses=ADDRESSES, name="news.md", at="2026-11-26T13:00:00+03:00"):  # type: ignore[no-untyped-def]
    app = make_app(site)
    tick(app)
    add_subscribers(app, addresses)
    site.statement(name, "News", at)
    return app


def _received(*servers: SMTPServer) -> Counter[str]:
    return Counter(r for server in servers for m in server.messages if not m.maybe_delivered for r in m.recipients)


def test_messages_spread_over_the_relays_as_their_weights_say(site, make_app):
    with SMTPServer() as a, SMTPServer() as b:
        app = _publish(_site(site, a, b, weight_a=3), make_app)
        report = tick(app)
    assert report.stages["send-email"] == {"sent": len(ADDRESSES)}
    assert _received(a, b) == Counter(ADDRESSES), "each subscriber exactly once"
    share = len(a.messages) / len(ADDRESSES)
    assert 0.6 <= share <= 0.9, f"weight 3:1 gave relay 'own' {share:.0%}"


def test_a_relay_that_goes_down_mid_run_leaves_its_messages_to_the_other(site, make_app):
    with SMTPServer() as a, SMTPServer() as b:
        app = _publish(_site(site, a, b), make_app)

        def go_down() -> None:
            a.messages.wait_for_len(4, timeout=30)
            a.add_fault(Fault.mail(421, "4.3.2 Service shutting down"))  # as Postfix says it going down
            a.add_fault(Fault.greeting(421, "4.3.2 Service shutting down"))

        falling = threading.Thread(target=go_down)
        falling.start()
        report = tick(app)
        falling.join()
    assert report.stages["send-email"] == {"sent": len(ADDRESSES)}
    assert _received(a, b) == Counter(ADDRESSES), "each subscriber exactly once, none lost"
    assert 4 <= len(a.messages) < len(ADDRESSES) / 2 < len(b.messages)


def test_a_relay_that_cannot_be_reached_is_skipped(site, make_app):
    with SMTPServer() as a, SMTPServer() as b:
        app = _publish(_site(site, a, b), make_app)
        a.stop()  # nothing listens there now
        report = tick(app)
    assert report.stages["send-email"] == {"sent": len(ADDRESSES)}
    assert _received(b) == Counter(ADDRESSES)


def test_a_daily_limit_holds_across_runs_and_the_rest_goes_to_the_other_relay(site, make_app, clock):
    with SMTPServer() as a, SMTPServer() as b:
        app = _publish(_site(site, a, b, weight_a=100, limit_a=10), make_app, ADDRESSES[:20])
        tick(app)
        assert _received(a, b) == Counter(ADDRESSES[:20])
        assert len(a.messages) == 10, "the relay took exactly its daily limit"
        relay = {r["name"]: r for r in gather(app)["relays"]}["own"]
        assert (relay["sent_24h"], relay["quota_left"]) == (10, 0)
        clock.advance(hours=2)
        site.statement("second.md", "Second", "2026-11-26T15:30:00+03:00")
        tick(app)  # a new run, a new sending process: the quota is the database's
        assert len(a.messages) == 10, "nothing more within the same 24 hours"
        assert len(b.messages) == 30
        clock.advance(hours=23)
        site.statement("third.md", "Third", "2026-11-27T14:40:00+03:00")
        tick(app)
    assert len(a.messages) == 20, "a new day, a new quota"
    assert _received(a, b) == Counter(ADDRESSES[:20] * 3)


def test_a_refusal_for_the_address_is_not_tried_on_another_relay(site, make_app):
    gone = ADDRESSES[7]
    with (
        SMTPServer([Fault.rcpt(550, "5.1.1 No such user", recipients=gone)]) as a,
        SMTPServer([Fault.rcpt(550, "5.1.1 No such user", recipients=gone)]) as b,
    ):
        app = _publish(_site(site, a, b), make_app)
        tick(app)
        refused = [e for server in (a, b) for e in server.replies("RCPT") if e.code == 550]
    assert len(refused) == 1, "asked once, on one relay"
    assert states(app)[gone][0] == "failed"


def test_status_names_each_relay_with_its_state(site, make_app, capsys):
    with SMTPServer() as a, SMTPServer() as b:
        app = _publish(_site(site, a, b, limit_a=100), make_app)
        tick(app)
        status = gather(app)  # on the site's clock, which the sending ran on
    _print_status(status)
    lines = capsys.readouterr().out.splitlines()
    own = next(line for line in lines if line.startswith("relay own:"))
    assert own.startswith("relay own: up,") and "of 100 left today" in own
    provider = next(line for line in lines if line.startswith("relay provider:"))
    assert provider.startswith("relay provider: up,")
    taken = {row["name"]: row["sent_24h"] for row in status["relays"]}
    assert sum(taken.values()) == len(ADDRESSES) and taken["own"] + 100 - len(ADDRESSES) >= 0


def test_metrics_show_each_relay(site, make_app):
    with SMTPServer() as a, SMTPServer() as b:
        app = _publish(_site(site, a, b, limit_a=100), make_app)
        tick(app)
        text = exposition(app)
    assert 'syndicate_relay_up{relay="own",state="up"} 1' in text
    sent = {
        line.split("{")[1].split('"')[1]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("syndicate_relay_sent_24h")
    }
    assert sum(sent.values()) == len(ADDRESSES)
    assert 'syndicate_relay_quota_left{relay="own"}' in text


def test_send_test_sends_the_exact_mail_through_the_chosen_relay_and_records_nothing(site, make_app):
    with SMTPServer() as a, SMTPServer() as b:
        app = _publish(_site(site, a, b), make_app, [])
        tick(app)
        with app.db.read() as conn:
            before = conn.execute(select(func.count()).select_from(deliveries)).scalar()
        config = str(site.root / "config.toml")
        result = CliRunner().invoke(
            main, ["--config", config, "send-test", "news", "--to", "Editor@Example.org", "--relay", "provider"]
        )
        wrong = CliRunner().invoke(
            main, ["--config", config, "send-test", "news", "--to", "e@example.org", "--relay", "nope"]
        )
        with app.db.read() as conn:
            after = conn.execute(select(func.count()).select_from(deliveries)).scalar()
    assert result.exit_code == 0, result.output
    assert result.output.startswith("relay provider (127.0.0.1:") and ": dot: 250" in result.output
    assert not a.messages and len(b.messages) == 1
    (message,) = b.messages
    assert message.recipients == ("editor@example.org",)
    assert message.message["Subject"] == "News" and message.message["List-Unsubscribe-Post"]
    assert before == after, "the outbox is not touched"
    assert wrong.exit_code != 0 and "no relay named 'nope'" in wrong.output and "own, provider" in wrong.output
