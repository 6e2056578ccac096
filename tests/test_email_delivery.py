"""Newsletter delivery over a real SMTP server on loopback, fault by fault.

After every fault, each planned delivery is sent, pending a retry, failed with
the server's reply, or unknown; none is skipped and none is sent twice.
"""

from __future__ import annotations

import email
from collections import Counter
from email import policy
from typing import Any

import pytest
from servers.smtp import Fault, SMTPServer
from sqlalchemy import select

from syndicate import outbox
from syndicate.outbox import DeliveryState
from syndicate.pipeline import tick
from syndicate.store import subscribers as subscriber_store
from syndicate.store.schema import deliveries, subscribers
from syndicate.subscribers import Frequency, NewSubscriber

SMTP_CONFIG = """
[email]
transport = "smtp"
from_address = "news@example.org"
batch = 4

[email.smtp]
host = "127.0.0.1"
port = {port}
connections = 2
timeout_seconds = 1.0
"""


def add_subscribers(app: Any, addresses: list[str], **prefs: Any) -> None:
    with app.db.write() as conn:
        for address in addresses:
            subscriber_store.add(
                conn,
                NewSubscriber(address, prefs.get("languages", ("en",)), (), Frequency.IMMEDIATE, True, "test"),
                app.clock(),
            )


def states(app: Any) -> dict[str, tuple[str, str | None]]:
    """subscriber address -> (delivery state, last error), for email deliveries."""
    query = select(subscribers.c.email, deliveries.c.state, deliveries.c.last_error).join(
        subscribers, deliveries.c.target == subscribers.c.id.cast(deliveries.c.target.type)
    )
    with app.db.read() as conn:
        return {r.email: (r.state, r.last_error) for r in conn.execute(query.where(deliveries.c.channel == "email"))}


def received(server: SMTPServer) -> Counter[str]:
    """How many times each recipient got the message (accepted and acknowledged)."""
    return Counter(r for m in server.messages if not m.maybe_delivered for r in m.recipients)


def smtp_site(site: Any, server: SMTPServer) -> Any:
    site.extra = SMTP_CONFIG.format(port=server.port)
    return site


def publish(site: Any, make_app: Any, addresses: list[str], title: str = "Açıklama: Заявление о солидарности") -> Any:
    """A site with subscribers and one freshly published statement, planned and ready to send."""
    app = make_app(site)
    tick(app)  # a new installation: what is already there is history, not news
    add_subscribers(app, addresses)
    site.statement("news.md", title, "2026-11-26T13:00:00+03:00", body="Türkçe ve русский текст.\n\nİkinci paragraf.")
    return app


ADDRESSES = [f"reader{i}@example.org" for i in range(10)]


def test_every_subscriber_gets_one_message_with_the_headers_of_a_list_mail(site, make_app):
    with SMTPServer() as server:
        app = publish(smtp_site(site, server), make_app, ADDRESSES)
        report = tick(app)
    assert report.stages["send-email"] == {"sent": 10}
    assert received(server) == Counter(ADDRESSES)
    assert {state for state, _ in states(app).values()} == {"sent"}
    message = email.message_from_bytes(server.messages[0].raw, policy=policy.default)
    assert message["Subject"] == "Açıklama: Заявление о солидарности"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = [part.strip(" <>") for part in message["List-Unsubscribe"].split(",")]
    assert https.startswith("http") and "/unsubscribe/" in https and mailto.startswith("mailto:")
    assert message["Message-ID"].startswith("<syndicate.") and message["List-Id"]
    assert message.get_content_type() == "multipart/alternative"
    text, html = (part.get_content() for part in message.iter_parts())
    assert "русский текст" in text and "русский текст" in html
    assert all(len(line) <= 998 for m in server.messages for line in m.raw.split(b"\r\n"))


def test_a_second_tick_sends_nothing_again(site, make_app):
    with SMTPServer() as server:
        app = publish(smtp_site(site, server), make_app, ADDRESSES)
        tick(app)
        again = tick(app)
    assert again.stages["send-email"] == {}
    assert received(server) == Counter(ADDRESSES)


def test_421_at_greeting_backs_off_the_whole_transport_and_loses_nothing(site, make_app, clock):
    with SMTPServer([Fault.greeting(421, times=1)]) as server:
        app = publish(smtp_site(site, server), make_app, ADDRESSES)
        first = tick(app)
        assert first.stages["send-email"].get("sent", 0) == 0
        assert {state for state, _ in states(app).values()} == {"pending"}
        assert tick(app).stages["send-email"] == {"waiting": 1}, "the back-off holds for the whole transport"
        clock.advance(minutes=20)
        tick(app)
    assert received(server) == Counter(ADDRESSES)
    assert {state for state, _ in states(app).values()} == {"sent"}


@pytest.mark.parametrize("code", [451, 552])
def test_temporary_refusal_of_a_recipient_is_retried_later(site, make_app, clock, code):
    unlucky = ADDRESSES[3]
    with SMTPServer([Fault.rcpt(code, recipients=unlucky, times=1)]) as server:
        app = publish(smtp_site(site, server), make_app, ADDRESSES)
        tick(app)
        state, error = states(app)[unlucky]
        assert state == "pending" and str(code) in (error or "")
        assert received(server) == Counter(a for a in ADDRESSES if a != unlucky)
        clock.advance(minutes=2)
        tick(app)
    assert received(server) == Counter(ADDRESSES)
    assert states(app)[unlucky][0] == "sent"


def test_550_fails_the_delivery_and_suppresses_the_address(site, make_app, clock):
    gone = ADDRESSES[5]
    with SMTPServer([Fault.rcpt(550, recipients=gone)]) as server:
        app = publish(smtp_site(site, server), make_app, ADDRESSES)
        tick(app)
        state, error = states(app)[gone]
        assert state == "failed" and "550" in (error or "")
        with app.db.read() as conn:
            assert subscriber_store.is_suppressed(conn, gone)
            assert subscriber_store.by_email(conn, gone).status == "bounced"
        site.statement("second.md", "Second", "2026-11-26T14:00:00+03:00")
        tick(app)
    assert received(server)[gone] == 0
    assert sum(1 for m in server.messages if gone in m.recipients) == 0


def test_554_after_data_fails_that_message_only(site, make_app):
    victim = ADDRESSES[2]
    with SMTPServer([Fault.end_of_data(554, recipients=victim)]) as server:
        app = publish(smtp_site(site, server), make_app, ADDRESSES)
        tick(app)
    assert states(app)[victim][0] == "failed" and "554" in states(app)[victim][1]
    assert received(server) == Counter(a for a in ADDRESSES if a != victim)


def test_a_connection_dropped_mid_data_loses_nothing_and_sends_nothing_twice(site, make_app, clock):
    victim = ADDRESSES[4]
    with SMTPServer([Fault.drop_in_body(after_bytes=200, recipients=victim, times=1)]) as server:
        app = publish(smtp_site(site, server), make_app, ADDRESSES)
        tick(app)
        # The whole message sat in the socket buffer when the server hung up, so the
        # client cannot tell whether the final dot was read: unknown, not re-sent on its own.
        assert states(app)[victim][0] == "unknown"
        assert received(server)[victim] == 0
        clock.advance(minutes=2)
        tick(app)
        assert received(server)[victim] == 0
        with app.db.write() as conn:
            assert outbox.requeue(conn, DeliveryState.UNKNOWN, clock()) == 1  # the operator's resend-unknown
        tick(app)
    assert received(server) == Counter(ADDRESSES)
    assert all(state == "sent" for state, _ in states(app).values())


def test_no_reply_after_the_final_dot_leaves_the_delivery_unknown_and_never_resent(site, make_app, clock):
    victim = ADDRESSES[6]
    with SMTPServer([Fault.hang_after_data(recipients=victim, times=1, store=True)]) as server:
        app = publish(smtp_site(site, server), make_app, ADDRESSES)
        tick(app)
        assert states(app)[victim][0] == "unknown"
        clock.advance(days=1)
        tick(app)
    assert states(app)[victim][0] == "unknown", "unknown is the operator's to decide"
    copies = [m for m in server.messages if victim in m.recipients]
    assert len(copies) == 1 and copies[0].maybe_delivered
    assert received(server) == Counter(a for a in ADDRESSES if a != victim)


def test_throttling_on_rcpt_pauses_everything_then_resumes(site, make_app, clock):
    with SMTPServer([Fault.rcpt(454, times=1)]) as server:
        app = publish(smtp_site(site, server), make_app, ADDRESSES)
        tick(app)
        sent_first = sum(received(server).values())
        assert sent_first < len(ADDRESSES)
        assert {state for state, _ in states(app).values()} <= {"sent", "pending"}
        clock.advance(minutes=20)
        tick(app)
    assert received(server) == Counter(ADDRESSES)


@pytest.mark.parametrize("without", [("PIPELINING",), ("8BITMIME",), ("PIPELINING", "8BITMIME")])
def test_an_older_server_without_pipelining_or_8bitmime_still_gets_every_message_intact(site, make_app, without):
    with SMTPServer(without=without) as server:
        app = publish(smtp_site(site, server), make_app, ADDRESSES)
        report = tick(app)
    assert report.stages["send-email"] == {"sent": 10}
    assert received(server) == Counter(ADDRESSES)
    if "8BITMIME" in without:
        assert all(m.raw.isascii() for m in server.messages), "8bit text re-encoded for a 7-bit server"
    text = email.message_from_bytes(server.messages[0].raw, policy=policy.default).get_body(("plain",)).get_content()
    assert "Türkçe ve русский текст." in text


def test_a_refusal_that_is_about_us_not_the_address_suppresses_nobody(site, make_app):
    # "Relaying denied" (5.7.1) answers every recipient alike: a server set up wrong, not bad addresses.
    with SMTPServer([Fault.rcpt(550, "5.7.1 Relaying denied")]) as server:
        app = publish(smtp_site(site, server), make_app, ADDRESSES)
        tick(app)
    assert {state for state, _ in states(app).values()} == {"failed"}
    with app.db.read() as conn:
        assert not any(subscriber_store.is_suppressed(conn, a) for a in ADDRESSES)
        assert subscriber_store.counts(conn)["active"] == len(ADDRESSES)


def test_an_unsuppressed_address_is_mailed_again(site, make_app):
    gone = ADDRESSES[1]
    with SMTPServer([Fault.rcpt(550, "5.1.1 No such mailbox", recipients=gone, times=1)]) as server:
        app = publish(smtp_site(site, server), make_app, ADDRESSES)
        tick(app)
        with app.db.write() as conn:
            assert subscriber_store.is_suppressed(conn, gone)
            assert subscriber_store.unsuppress(conn, gone, app.clock())
        site.statement("second.md", "Second", "2026-11-26T14:00:00+03:00")
        tick(app)
    assert received(server)[gone] == 1, "the second statement reaches it"
