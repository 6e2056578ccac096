"""Hearing back: reports come to the listener (a real aiosmtpd on loopback) or a Maildir, and act at once.

Each newsletter leaves through a real SMTP server with its signed return path
as the envelope sender; the reports are then written as the receiving side
writes them (tests/inbound_reports.py) and sent back with smtplib to
syndicate's own listener, as the organisation's MX would forward them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import mailbox
import re
import smtplib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from inbound_reports import (
    arf_complaint,
    exim_dsn,
    gmail_dsn,
    microsoft_ndr,
    out_of_office,
    postfix_dsn,
    qmail_bounce,
    unsubscribe_mail,
)
from servers.smtp import SMTPServer
from sqlalchemy import func, select
from test_email_delivery import add_subscribers
from web_support import make_web

from syndicate.cli import main
from syndicate.inbound import classify as classify_module
from syndicate.inbound.classify import Finding, Kind, classify
from syndicate.inbound.listener import Listener
from syndicate.pipeline import tick
from syndicate.status import gather
from syndicate.store import inbound as inbound_store
from syndicate.store import subscribers as subscriber_store
from syndicate.store.schema import deliveries, inbound, suppressions
from syndicate.verp import ReturnPath
from syndicate.web.metrics import exposition

CONFIG = """
[email]
transport = "smtp"
from_address = "news@example.org"
return_path = "bounces@bounces.example.org"
batch = 10

[email.smtp]
host = "127.0.0.1"
port = {port}
connections = 1
timeout_seconds = 5.0

[inbound]
soft_limit = 3
addresses = ["fbl@example.org"]
mailgun_key_env = "TEST_MAILGUN_SIGNING_KEY"
ses_topics = ["arn:aws:sns:eu-west-1:123456789012:ses-bounces"]
postmark_auth_env = "TEST_POSTMARK_HOOK_AUTH"
sendgrid_key_env = "TEST_SENDGRID_VERIFICATION_KEY"
"""
MAILGUN_KEY = "key-7d1c0a5b3e9f4a2c8b6d0e1f2a3b4c5d"
READERS = [f"reader{i}@receiver.test" for i in range(4)]
VERP = re.compile(r"^bounces\+(\d+)\.[a-z2-7]{10}@bounces\.example\.org$")


@contextmanager
def mailed(
    site: Any, make_app: Callable[[Any], Any], readers: list[str] = READERS, statements: int = 1
) -> Iterator[Any]:
    """An app that mailed ``statements`` newsletters to ``readers`` through a real SMTP server; its listener on."""
    with SMTPServer() as server:
        site.extra = CONFIG.format(port=server.port)
        app = make_app(site)
        tick(app)
        add_subscribers(app, readers)
        for n in range(statements):
            site.statement(f"news{n}.md", f"News {n}", f"2026-11-26T1{n}:00:00+03:00")
            tick(app)
            site.clock.advance(minutes=1)
        app.sent = {(m.recipients[0], m.sender) for m in server.messages}  # (reader, envelope sender)
        app.message_ids = {m.recipients[0]: str(m.message["Message-ID"]) for m in server.messages}  # the newest
    listener = Listener(app.receiver, "127.0.0.1:0")
    listener.start()
    app.listener = listener
    try:
        yield app
    finally:
        listener.stop()


def return_paths(app: Any, reader: str) -> list[str]:
    """The envelope senders ``reader``'s newsletters went out with, oldest first."""
    return sorted((s for r, s in app.sent if r == reader), key=lambda s: int(VERP.match(s).group(1)))  # type: ignore[union-attr]


def delivery_of(return_path: str) -> int:
    found = VERP.match(return_path)
    assert found, return_path
    return int(found.group(1))


def send_back(app: Any, raw: bytes, to: str, sender: str = "") -> str:
    """Deliver a report to the listener as an MX would; return the listener's reply to DATA."""
    with smtplib.SMTP("127.0.0.1", app.listener.port, timeout=10) as smtp:
        smtp.ehlo("mx.example.org")
        smtp.mail(sender)
        code, _ = smtp.rcpt(to)
        assert code == 250, code
        code, reply = smtp.data(raw)
    assert code == 250, (code, reply)
    return reply.decode()


def processed(app: Any, report_id: int, timeout: float = 10.0) -> inbound_store.Stored:
    """The report once the listener's processing has finished (it follows the 250)."""
    deadline = time.monotonic() + timeout
    while True:
        with app.db.read() as conn:
            report = inbound_store.get(conn, report_id)
        assert report is not None
        if report.processed_at is not None or time.monotonic() > deadline:
            return report
        time.sleep(0.02)


def report_id(reply: str) -> int:
    found = re.search(r"report (\d+)", reply)
    assert found, reply
    return int(found.group(1))


def status_of(app: Any, email: str) -> str:
    with app.db.read() as conn:
        found = subscriber_store.by_email(conn, email)
    assert found is not None
    return found.status.value


def suppressed(app: Any) -> set[str]:
    with app.db.read() as conn:
        return set(conn.execute(select(suppressions.c.email)).scalars())


def test_each_newsletter_leaves_with_its_own_signed_return_path(site, make_app):
    with mailed(site, make_app) as app:
        senders = {sender for _, sender in app.sent}
        assert len(senders) == len(READERS), "one return path per delivery"
        assert all(VERP.match(s) for s in senders), senders
        with app.db.read() as conn:
            ids = {
                int(i) for i in conn.execute(select(deliveries.c.id).where(deliveries.c.channel == "email")).scalars()
            }
        assert {delivery_of(s) for s in senders} == ids
        assert all(app.receiver.addresses.return_path.delivery(s) in ids for s in senders)


@pytest.mark.parametrize(
    "write", [postfix_dsn, exim_dsn, microsoft_ndr, gmail_dsn], ids=["postfix", "exim", "microsoft", "gmail"]
)
def test_a_hard_bounce_suppresses_the_address_at_once_and_keeps_its_cause(site, make_app, write):
    with mailed(site, make_app) as app:
        reader = READERS[1]
        (path,) = return_paths(app, reader)
        reply = send_back(app, write(path, reader, delivery_of(path)), to=path)
        report = processed(app, report_id(reply))
        assert report.kind == "hard" and report.delivery_id == delivery_of(path)
        assert status_of(app, reader) == "bounced"
        assert suppressed(app) == {reader}
        assert {status_of(app, r) for r in READERS if r != reader} == {"active"}
        with app.db.read() as conn:
            subscriber = subscriber_store.by_email(conn, reader)
            assert subscriber is not None
            changes = inbound_store.changes_of(conn, subscriber.id)
        assert [(c.status, c.report_id) for c in changes] == [("bounced", report.id)]


def test_the_250_comes_only_after_the_report_is_committed(site, make_app):
    with mailed(site, make_app) as app:
        reader = READERS[0]
        (path,) = return_paths(app, reader)
        raw = postfix_dsn(path, reader, delivery_of(path))
        reply = send_back(app, raw, to=path)
        with app.db.read() as conn:  # read at once, by another connection: it is there
            stored = inbound_store.get(conn, report_id(reply))
        assert stored is not None
        assert stored.raw == raw, "stored as it came, byte for byte"


def test_the_same_report_twice_is_stored_once_and_changes_nothing_more(site, make_app):
    with mailed(site, make_app) as app:
        reader = READERS[2]
        (path,) = return_paths(app, reader)
        raw = gmail_dsn(path, reader, delivery_of(path))
        first = report_id(send_back(app, raw, to=path))
        second = report_id(send_back(app, raw, to=path))
        assert first == second
        processed(app, first)
        with app.db.read() as conn:
            assert conn.execute(select(func.count()).select_from(inbound)).scalar_one() == 1
            subscriber = subscriber_store.by_email(conn, reader)
            assert subscriber is not None
            assert len(inbound_store.changes_of(conn, subscriber.id)) == 1
        assert "already bounced" in app.receiver.process(first, again=True)


def test_soft_bounces_suppress_after_the_limit_and_a_later_success_resets_the_count(site, make_app):
    with mailed(site, make_app, statements=5) as app:
        reader = READERS[3]
        paths = return_paths(app, reader)
        assert len(paths) == 5

        def soft(path: str) -> str:
            raw = postfix_dsn(path, reader, delivery_of(path), status="4.2.2", action="delayed",
                              diagnostic="smtp; 452 4.2.2 Mailbox full")  # fmt: skip
            return processed(app, report_id(send_back(app, raw, to=path))).action or ""

        assert soft(paths[0]) == "soft bounce 1 of 3"
        assert soft(paths[0]).startswith("soft bounce 1"), "the same delivery again counts once"
        assert soft(paths[1]) == "soft bounce 2 of 3"
        assert status_of(app, reader) == "active"
        # A success after the first two: paths[2] ended (sent, nothing came back) after they arrived.
        with app.db.write() as conn:
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id == delivery_of(paths[2]))
                .values(finished_at=app.clock() + timedelta(minutes=5))
            )
        site.clock.advance(minutes=10)
        assert soft(paths[3]) == "soft bounce 1 of 3", "the success after the first two reset the count"
        assert soft(paths[4]) == "soft bounce 2 of 3"
        # The success's own bounce arrives after all: every soft bounce counts again.
        raw = postfix_dsn(paths[2], reader, delivery_of(paths[2]), status="4.4.1", action="delayed",
                          diagnostic="smtp; 451 4.4.1 no answer")  # fmt: skip
        action = processed(app, report_id(send_back(app, raw, to=paths[2]))).action or ""
        assert action.startswith("bounced: ") and status_of(app, reader) == "bounced"
        assert suppressed(app) == {reader}


def test_a_complaint_unsubscribes_and_suppresses(site, make_app):
    with mailed(site, make_app) as app:
        reader = READERS[0]
        (path,) = return_paths(app, reader)
        # A feedback loop writes to its own registered address; the quoted original names the delivery.
        reply = send_back(app, arf_complaint(path, reader, delivery_of(path)), to="fbl@example.org")
        report = processed(app, report_id(reply))
        assert report.kind == "complaint" and report.delivery_id == delivery_of(path)
        assert status_of(app, reader) == "complained"
        with app.db.read() as conn:
            found = subscriber_store.by_email(conn, reader)
        assert found is not None and found.unsubscribed_at is not None
        assert suppressed(app) == {reader}


def test_a_mailto_unsubscribe_by_its_token_or_its_sender_acts_at_once_and_sends_nothing_back(site, make_app):
    with mailed(site, make_app) as app:
        to = app.config.unsubscribe_address
        with app.db.read() as conn:
            first = subscriber_store.by_email(conn, READERS[0])
        assert first is not None
        token = app.secrets.sign("unsubscribe", first.id, first.email)
        # The client sends from another address of the reader's: the token says who.
        reply = send_back(app, unsubscribe_mail(to, "someone.else@receiver.test", token), to=to)
        assert processed(app, report_id(reply)).action == "unsubscribed"
        assert status_of(app, READERS[0]) == "unsubscribed"
        reply = send_back(app, unsubscribe_mail(to, READERS[1]), to=to, sender=READERS[1])
        assert processed(app, report_id(reply)).action == "unsubscribed"
        assert status_of(app, READERS[1]) == "unsubscribed"
        assert suppressed(app) == set()
        with app.db.read() as conn:  # nothing is sent back: no confirmation, no goodbye
            owed = conn.execute(select(func.count()).select_from(deliveries)).scalar_one()
        assert owed == len(READERS), "the newsletter's deliveries, and nothing more"


def test_forged_reports_change_nothing_and_are_logged(site, make_app, caplog):
    with mailed(site, make_app) as app:
        reader = READERS[1]
        (path,) = return_paths(app, reader)
        delivery = delivery_of(path)
        forged = f"bounces+{delivery}.aaaaaaaaaa@bounces.example.org"
        with smtplib.SMTP("127.0.0.1", app.listener.port, timeout=10) as smtp:
            smtp.ehlo("mx.example.org")
            smtp.mail("")
            assert smtp.rcpt(forged)[0] == 550, "a forged return path is refused at RCPT"
        caplog.set_level(logging.WARNING)
        # The same forgery in the text of a report to the plain address: stored, never acted on.
        reply = send_back(app, postfix_dsn(forged, reader, delivery), to="bounces@bounces.example.org")
        report = processed(app, report_id(reply))
        assert report.action == "forged return path: nothing changed"
        assert "forged" in caplog.text
        to = app.config.unsubscribe_address
        reply = send_back(app, unsubscribe_mail(to, "attacker@evil.test", "u1.0.AAAAAAAAAAAAAAAAAAAAAAAA"), to=to)
        assert processed(app, report_id(reply)).action.startswith("bad unsubscribe token")
        assert {status_of(app, r) for r in READERS} == {"active"}
        assert suppressed(app) == set()


def test_auto_replies_are_ignored_and_what_is_not_understood_is_kept(site, make_app):
    with mailed(site, make_app) as app:
        reader = READERS[2]
        (path,) = return_paths(app, reader)
        auto = processed(app, report_id(send_back(app, out_of_office(path, reader), to=path)))
        assert (auto.kind, auto.action) == ("auto-reply", "ignored (auto-reply)")
        odd = b"From: someone@receiver.test\r\nSubject: hello?\r\n\r\nA question about your newsletter.\r\n"
        kept = processed(app, report_id(send_back(app, odd, to=path)))
        assert kept.kind == "unknown" and kept.action == "not understood: kept for the operator"
        qmail = processed(app, report_id(send_back(app, qmail_bounce(path, reader), to=path)))
        assert qmail.kind == "hard", "flufl.bounce reads what follows no standard"
        assert status_of(app, reader) == "bounced"


def test_the_listener_refuses_mail_for_other_addresses_and_speaks_lmtp(site, make_app):
    with mailed(site, make_app) as app:
        with smtplib.SMTP("127.0.0.1", app.listener.port, timeout=10) as smtp:
            smtp.ehlo("mx.example.org")
            smtp.mail("someone@elsewhere.test")
            assert smtp.rcpt("ceo@example.org")[0] == 550
        reader = READERS[0]
        (path,) = return_paths(app, reader)
        lmtp = Listener(app.receiver, "127.0.0.1:0", lmtp=True)
        lmtp.start()
        try:
            with smtplib.LMTP("127.0.0.1", lmtp.port, timeout=10) as client:
                client.ehlo_or_helo_if_needed()
                client.mail("")
                assert client.rcpt(path)[0] == 250 and client.rcpt(app.config.unsubscribe_address)[0] == 250
                first = client.data(postfix_dsn(path, reader, delivery_of(path)))
                second = client.getreply()  # RFC 2033: one reply per recipient (smtplib reads only the first)
        finally:
            lmtp.stop()
        assert first[0] == 250 and second[0] == 250, (first, second)
        with app.db.read() as conn:
            (stored,) = inbound_store.listing(conn)
        assert stored.source == "lmtp"
        assert processed(app, stored.id).kind == "hard"
        assert status_of(app, reader) == "bounced"


def test_a_maildir_is_read_each_tick_and_its_mail_moved_only_after_it_is_stored(site, make_app, tmp_path):
    box_path = tmp_path / "Maildir"
    with mailed(site, make_app) as app:
        reader = READERS[3]
        (path,) = return_paths(app, reader)
    site.extra += f'\nmaildir = "{box_path}"\n'
    box = mailbox.Maildir(box_path, create=True)
    box.add(b"Delivered-To: " + path.encode() + b"\r\n" + gmail_dsn(path, reader, delivery_of(path)))
    app = make_app(site)
    report = tick(app)
    assert report.stages["hear-back"] == {"read": 1, "processed": 1}
    assert status_of(app, reader) == "bounced"
    assert list(box.iterkeys()) == []
    assert len(list(box.get_folder("Processed").iterkeys())) == 1, "moved, never deleted"


def test_reports_stored_but_not_processed_are_processed_by_the_next_tick_and_the_cli_shows_them(site, make_app):
    with mailed(site, make_app) as app:
        reader = READERS[1]
        (path,) = return_paths(app, reader)
        raw = microsoft_ndr(path, reader, delivery_of(path))
    report, new = app.receiver.store(raw, "smtp", "", [path])  # as if the process died after the commit
    assert new
    assert tick(app).stages["hear-back"] == {"processed": 1}
    assert status_of(app, reader) == "bounced"
    runner = CliRunner()
    config = ["--config", str(site.root / "config.toml")]
    listed = runner.invoke(main, [*config, "inbound", "list"])
    assert listed.exit_code == 0, listed.output
    assert f"{report}\t" in listed.output and "hard" in listed.output and reader in listed.output
    shown = runner.invoke(main, [*config, "inbound", "show", str(report)])
    assert shown.exit_code == 0 and "action: bounced: hard bounce 5.1.10" in shown.output, shown.output
    again = runner.invoke(main, [*config, "inbound", "reprocess", str(report)])
    assert again.exit_code == 0 and "already bounced" in again.output, again.output


def test_a_report_that_cannot_be_processed_is_kept_for_the_operator_and_holds_no_other_back(site, make_app, caplog):
    with mailed(site, make_app) as app:
        paths = {r: return_paths(app, r)[0] for r in READERS[:3]}
    for reader, path in paths.items():
        app.receiver.store(postfix_dsn(path, reader, delivery_of(path)), "smtp", "", [path])
    # An event stored by the webhook that no longer reads (written by another version, say): it fails alone.
    (broken,) = app.receiver.store_many("sendgrid", [(b"[not an event", "", [], "sendgrid:old-1")])
    assert tick(app).stages["hear-back"] == {"processed": 3, "failed": 1}
    assert [status_of(app, r) for r in paths] == ["bounced"] * 3
    assert "a batch of reports could not be processed; each is tried alone" in caplog.text
    with app.db.read() as conn:
        kept = inbound_store.get(conn, broken)
    assert kept is not None and kept.action == "could not be processed: kept for the operator"
    assert kept.detail.startswith("Forged: not a SendGrid event")
    assert tick(app).stages["hear-back"] == {}, "recorded: it is not tried again on every tick"


@given(st.integers(min_value=1, max_value=2**63 - 1), st.booleans())
def test_a_return_path_names_its_delivery_and_no_other(delivery, upper):
    signer = ReturnPath("bounces@Bounces.Example.org", [b"k" * 32, b"old" * 11])
    address = signer.sender(delivery)
    shown = address.upper() if upper else address  # some MTAs change the case of local parts
    assert signer.delivery(shown) == delivery
    assert ReturnPath("bounces@bounces.example.org", [b"other" * 7]).delivery(address) is None
    other = address.replace(f"+{delivery}.", f"+{delivery + 1}.")
    assert signer.delivery(other) is None, "a tag does not carry over to another delivery"


@given(st.binary(max_size=2000), st.booleans())
def test_classify_reads_any_bytes_without_raising(raw, to_unsubscribe):
    finding = classify(raw, to_unsubscribe)
    assert isinstance(finding.kind, Kind)
    assert len(finding.detail) <= 1000


@given(st.integers(min_value=0, max_value=3000), st.binary(min_size=1, max_size=40))
def test_classify_survives_a_report_cut_or_garbled_anywhere(cut, junk):
    real = postfix_dsn("bounces+7.abcdefghij@bounces.example.org", "gone@receiver.test", 7)
    garbled = real[:cut] + junk + real[cut + len(junk) :]
    assert isinstance(classify(garbled).kind, Kind)


def whole(raw: bytes) -> Finding:
    """What classify finds when it parses the whole report (its shortcut to the machine-readable part off)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(classify_module, "_machine_part", lambda raw: None)
        return classify(raw)


@settings(max_examples=300, deadline=None)
@given(
    write=st.sampled_from([postfix_dsn, exim_dsn, microsoft_ndr, gmail_dsn, arf_complaint]),
    user=st.from_regex(r"[a-z0-9._%+-]{1,20}", fullmatch=True),
    boundary=st.from_regex(r"[A-Za-z0-9'()+_,./:=?-]{1,60}", fullmatch=True),
    cut=st.integers(min_value=0, max_value=600) | st.integers(min_value=0, max_value=3000) | st.none(),
    junk=st.binary(max_size=20) | st.sampled_from([b"\r", b"\n", b"\x0c", b":", b" ", b"\r\n\r\n", b"--"]),
)
def test_reading_only_the_machine_readable_part_finds_what_the_whole_parse_finds(write, user, boundary, cut, junk):
    raw = write("bounces+7.abcdefghij@bounces.example.org", f"{user}@receiver.test", 7)
    raw = raw.replace(b'boundary="B0UND"', f'boundary="{boundary}"'.encode()).replace(
        b"--B0UND", b"--" + boundary.encode()
    )
    if cut is not None:  # and garbled anywhere
        raw = raw[:cut] + junk + raw[cut + len(junk) :]
    assert classify(raw) == whole(raw)


def test_status_metrics_and_healthz_show_each_editions_bounces_complaint_rate_and_unsubscribes(site, make_app):
    with mailed(site, make_app) as app:
        hard, complainer = READERS[0], READERS[1]
        (hard_path,) = return_paths(app, hard)
        (complaint_path,) = return_paths(app, complainer)
        processed(app, report_id(send_back(app, postfix_dsn(hard_path, hard, delivery_of(hard_path)), to=hard_path)))
        raw = arf_complaint(complaint_path, complainer, delivery_of(complaint_path))
        processed(app, report_id(send_back(app, raw, to="fbl@example.org")))
        by_mail, by_web = READERS[2], READERS[3]  # one unsubscribes by mailto, one on the page by one-click
        to = app.config.unsubscribe_address
        processed(app, report_id(send_back(app, unsubscribe_mail(to, by_mail), to=to, sender=by_mail)))
        web = make_web(app)
        with app.db.read() as conn:
            leaving = subscriber_store.by_email(conn, by_web)
        assert leaving is not None
        token = app.secrets.sign("unsubscribe", leaving.id, leaving.email)
        clicked = web.flask.test_client(use_cookies=False).post(
            f"/unsubscribe/{token}", data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
        )
        assert clicked.status_code == 200 and status_of(app, by_web) == "unsubscribed"
        edition = gather(app)["editions"][0]
        assert {k: edition[k] for k in ("sent", "hard", "soft", "complaints", "unsubscribes", "over_the_line")} == {
            "sent": 4, "hard": 1, "soft": 0, "complaints": 1, "unsubscribes": 2, "over_the_line": True,
        }  # fmt: skip
        assert edition["complaint_rate"] == 0.25
        text = exposition(app)
        number = edition["edition"]
        assert f'syndicate_edition_complaint_rate{{edition="{number}"}} 0.25' in text
        assert f'syndicate_edition_reports{{edition="{number}",kind="hard"}} 1' in text
        assert f'syndicate_edition_reports{{edition="{number}",kind="unsubscribe"}} 2' in text
        assert 'syndicate_inbound_reports{kind="complaint"} 1' in text
        response = web.client.get("/healthz")
        assert response.status_code == 200, "a complaint rate warns; it does not take the service down"
        warning = response.get_json()["checks"]["complaints"]["warning"]
        assert f"edition {number} 25.00%" in warning
        shown = CliRunner().invoke(main, ["--config", str(site.root / "config.toml"), "status"])
        assert "1 hard and 0 soft bounces, 1 complaints (25.00%), 2 unsubscribes  over the 0.3% line" in shown.output


def mailgun_event(app: Any, event: dict[str, Any], key: str = MAILGUN_KEY, age: float = 0) -> bytes:
    """An event as Mailgun posts it (its documented shape), signed as Mailgun signs: HMAC-SHA256(timestamp + token)."""
    timestamp = str(int(app.clock().timestamp() - age))
    token = hashlib.sha256(json.dumps(event, sort_keys=True).encode()).hexdigest()[:50]
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps({"signature": {"timestamp": timestamp, "token": token, "signature": signature},
                       "event-data": event}).encode()  # fmt: skip


def failed(
    delivery: int, recipient: str, severity: str = "permanent", code: str = "5.1.1", id: str = ""
) -> dict[str, Any]:
    return {
        "event": "failed", "id": id or f"G9Bn5sl1TC6nu79C8C{delivery}", "timestamp": 1764151200.375624,
        "severity": severity, "reason": "bounce", "recipient": recipient,
        "message": {"headers": {"to": recipient, "message-id": f"syndicate.{delivery}@example.org",
                                "from": "Example Org <news@example.org>", "subject": "News"}},
        "delivery-status": {"code": 550 if severity == "permanent" else 452, "enhanced-code": code,
                            "message": "5.1.1 The email account that you tried to reach does not exist", "attempt-no": 1},
    }  # fmt: skip


def test_mailgun_events_signed_as_mailgun_signs_act_and_forged_or_stale_ones_change_nothing(
    site, make_app, monkeypatch
):
    monkeypatch.setenv("TEST_MAILGUN_SIGNING_KEY", MAILGUN_KEY)
    with mailed(site, make_app) as app:
        client = make_web(app).client
        hard, complainer, other = READERS[0], READERS[1], READERS[2]
        ids = {r: delivery_of(return_paths(app, r)[0]) for r in READERS}
        forged = client.post("/hooks/mailgun", data=mailgun_event(app, failed(ids[other], other), key="key-wrong"))
        stale = client.post("/hooks/mailgun", data=mailgun_event(app, failed(ids[other], other), age=3600))
        assert (forged.status_code, stale.status_code) == (406, 406)
        body = mailgun_event(app, failed(ids[hard], hard))
        first, again = client.post("/hooks/mailgun", data=body), client.post("/hooks/mailgun", data=body)
        assert (first.status_code, again.status_code) == (200, 200) and first.data == again.data, "one report"
        replayed = json.loads(body)  # the captured signature, with an event of the attacker's
        replayed["event-data"] = failed(ids[other], other, id="forged-1")
        reuse = client.post("/hooks/mailgun", data=json.dumps(replayed).encode())
        assert reuse.status_code == 200 and reuse.data == first.data, "the same signed token: the first report"
        complaint = {**failed(ids[complainer], complainer), "event": "complained", "id": "cmpl-1"}
        assert client.post("/hooks/mailgun", data=mailgun_event(app, complaint)).status_code == 200
        blocked = failed(ids[other], other, code="5.7.1", id="block-1")  # permanent, but a spam block: soft
        assert client.post("/hooks/mailgun", data=mailgun_event(app, blocked)).status_code == 200
        assert client.post("/hooks/sendgrid", data=b"{}").status_code == 404, "only configured providers are served"
        assert status_of(app, hard) == "bounced" and status_of(app, complainer) == "complained"
        assert status_of(app, other) == "active" and status_of(app, READERS[3]) == "active"
        with app.db.read() as conn:
            reports = inbound_store.listing(conn)
        assert sorted(r.kind or "" for r in reports) == ["complaint", "hard", "soft"]
        assert {r.source for r in reports} == {"mailgun"}
