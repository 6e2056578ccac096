"""The IMAP poller against a real IMAP server on loopback (Dovecot), over implicit TLS and STARTTLS.

Reports are put in the INBOX with APPEND, as the organisation's mail server
would deliver them; each tick stores them (committed) and only then moves
them to the done folder. A report the database could not take stays in the
INBOX; a message read twice is one report.
"""

from __future__ import annotations

import logging
import os

import pytest
from click.testing import CliRunner
from inbound_reports import postfix_dsn, unsubscribe_mail
from servers.imap import DovecotServer, available
from sqlalchemy import text
from test_inbound import CONFIG, READERS, delivery_of, mailed, return_paths, status_of

from syndicate.cli import main
from syndicate.pipeline import tick
from syndicate.store import inbound as inbound_store

if not available():
    if os.environ.get("SYNDICATE_REQUIRE_IMAP"):
        raise RuntimeError("SYNDICATE_REQUIRE_IMAP is set but Dovecot (dovecot-imapd) is not installed")
    pytest.skip("Dovecot (Debian's dovecot-imapd) is not installed", allow_module_level=True)

IMAP = """
[inbound.imap]
host = "127.0.0.1"
port = {port}
security = "{security}"
username_env = "TEST_IMAP_USER"
password_env = "TEST_IMAP_PASSWORD"
ca_file = "{ca}"
"""


@pytest.fixture
def dovecot(monkeypatch):
    with DovecotServer() as server:
        monkeypatch.setenv("TEST_IMAP_USER", server.user)
        monkeypatch.setenv("TEST_IMAP_PASSWORD", server.password)
        yield server


def imap_settings(server: DovecotServer, security: str = "tls", ca: bool = True) -> str:
    port = server.tls_port if security == "tls" else server.starttls_port
    return IMAP.format(port=port, security=security, ca=server.ca_file if ca else "")


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_an_imap_folder_is_read_each_tick_and_its_mail_moved_only_once_stored(site, make_app, dovecot, security):
    with mailed(site, make_app) as app:
        bounced, leaving = READERS[0], READERS[1]
        (path,) = return_paths(app, bounced)
        unsubscribe = app.receiver.addresses.unsubscribe
    dsn = b"Delivered-To: " + path.encode() + b"\r\n" + postfix_dsn(path, bounced, delivery_of(path))
    goodbye = b"Delivered-To: " + unsubscribe.encode() + b"\r\n" + unsubscribe_mail(unsubscribe, leaving)
    dovecot.deliver(dsn, goodbye, dsn)  # the last: the same message again (a read the crash cut short)
    site.extra += imap_settings(dovecot, security)
    app = make_app(site)
    assert tick(app).stages["hear-back"] == {"read": 3, "processed": 2}
    assert status_of(app, bounced) == "bounced" and status_of(app, leaving) == "unsubscribed"
    assert dovecot.messages("INBOX") == []
    assert sorted(dovecot.messages("Processed")) == sorted([dsn, goodbye, dsn]), "moved as they were, not deleted"
    with app.db.read() as conn:
        reports = inbound_store.listing(conn)
    assert sorted((r.source, r.kind) for r in reports) == [("imap", "hard"), ("imap", "unsubscribe")]
    assert tick(app).stages["hear-back"] == {}, "nothing new"


def test_a_report_the_database_cannot_take_stays_in_the_inbox_until_it_can(site, make_app, dovecot, caplog):
    with mailed(site, make_app) as app:
        reader = READERS[2]
        (path,) = return_paths(app, reader)
    dsn = postfix_dsn(path, reader, delivery_of(path))
    dovecot.deliver(dsn)
    site.extra += imap_settings(dovecot)
    app = make_app(site)
    with app.db.write() as conn:  # the store breaks: its table is not where it was
        conn.execute(text("ALTER TABLE inbound_raw RENAME TO inbound_raw_away"))
    with caplog.at_level(logging.WARNING):
        assert tick(app).stages["hear-back"] == {"mailbox failed": 1}
    assert "could not be read" in caplog.text
    assert dovecot.messages("INBOX") == [dsn] and dovecot.messages("Processed") == [], "left where it was"
    with app.db.write() as conn:
        conn.execute(text("ALTER TABLE inbound_raw_away RENAME TO inbound_raw"))
    assert tick(app).stages["hear-back"] == {"read": 1, "processed": 1}
    assert status_of(app, reader) == "bounced" and dovecot.messages("INBOX") == []


def test_an_untrusted_certificate_or_a_wrong_password_reads_nothing_and_says_so(
    site, make_app, dovecot, monkeypatch, caplog
):
    with mailed(site, make_app) as app:
        reader = READERS[3]
        (path,) = return_paths(app, reader)
    dsn = postfix_dsn(path, reader, delivery_of(path))
    dovecot.deliver(dsn)
    base = site.extra
    site.extra = base + imap_settings(dovecot, ca=False)  # the system's authorities do not know this one
    with caplog.at_level(logging.WARNING):
        assert tick(make_app(site)).stages["hear-back"] == {"mailbox failed": 1}
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
        caplog.clear()
        site.extra = base + imap_settings(dovecot)
        monkeypatch.setenv("TEST_IMAP_PASSWORD", "not-the-password")
        assert tick(make_app(site)).stages["hear-back"] == {"mailbox failed": 1}
        assert "AUTHENTICATIONFAILED" in caplog.text or "Authentication failed" in caplog.text
    assert dovecot.messages("INBOX") == [dsn] and status_of(make_app(site), reader) == "active"


def test_check_says_when_the_imap_login_is_not_in_the_environment(site, make_app, monkeypatch):
    site.extra = CONFIG.format(port=25) + IMAP.format(port=993, security="tls", ca="")
    make_app(site)
    monkeypatch.setenv("TEST_IMAP_USER", "bounces")
    monkeypatch.delenv("TEST_IMAP_PASSWORD", raising=False)
    result = CliRunner().invoke(main, ["--config", str(site.root / "config.toml"), "check"])
    assert "inbound.imap.password_env: environment variable TEST_IMAP_PASSWORD is not set" in result.output
    assert "inbound.imap.username_env" not in result.output
