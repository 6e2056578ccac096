"""The newsletter commands through click: preview, deliveries list / retry / resend-unknown, status.

Commands run on the real clock, so each test starts its hand-moved clock at the
real time and moves it on from there.
"""

from __future__ import annotations

import email
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from email import policy
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import Site
from servers.smtp import Fault, SMTPServer

from syndicate.app import App
from syndicate.cli import main
from syndicate.pipeline import tick
from syndicate.store import subscribers as subscriber_store
from syndicate.subscribers import Frequency, NewSubscriber

pytestmark = pytest.mark.timeout(60)

# The preview is about rendering, not the store: one engine is enough.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

LISTING_KEYS = {
    "id", "channel", "source_kind", "source_id", "target", "state", "attempts", "last_error",
    "due_at", "created_at", "handoff_at", "finished_at",
}  # fmt: skip


def run(site: Site, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(site.root / "config.toml"), *args])


def ok(site: Site, *args: str) -> Result:
    result = run(site, *args)
    assert result.exit_code == 0, result.output
    return result


def catch_up(site: Site) -> None:
    """Bring the hand-moved clock to the real time, which the commands run on."""
    site.clock.now = max(site.clock.now, datetime.now(UTC))


def started(site: Site, make_app: Any, *readers: str) -> App:
    """A site on the real clock, past its first tick, with ``readers`` subscribed."""
    catch_up(site)
    app: App = make_app(site)
    tick(app)
    with app.db.write() as conn:
        for reader in readers:
            subscriber_store.add(
                conn, NewSubscriber(reader, ("en",), (), Frequency.IMMEDIATE, True, "test"), app.clock()
            )
    return app


def publish(site: Site, name: str = "news", title: str = "Açıklama: Заявление") -> None:
    published = (site.clock.now - timedelta(minutes=1)).isoformat(timespec="seconds")
    site.statement(f"{name}.md", title, published, body="**Kalın** metin. Русский текст.")


def listing(site: Site, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(ok(site, "deliveries", "list", "--json", *args).stdout)
    return rows


def without_date_and_id(raw: bytes) -> bytes:
    return re.sub(rb"^(Date|Message-ID): .*\r\n", b"", raw, flags=re.MULTILINE)


@sqlite_only
def test_preview_writes_the_message_a_subscriber_gets(site, make_app):
    app = started(site, make_app, "reader@example.org")
    publish(site)
    tick(app)
    [sent] = list((site.root / "outbox").glob("*.eml"))
    out = site.root / "preview.eml"
    ok(site, "preview", "news", "--to", "Reader@Example.org", "--out", str(out))
    previewed = out.read_bytes()
    assert without_date_and_id(previewed) == without_date_and_id(sent.read_bytes())
    message = email.message_from_bytes(previewed, policy=policy.default)
    assert message["Message-ID"] == "<syndicate.preview@example.org>"


@sqlite_only
def test_preview_of_a_digest_and_for_a_sample_reader(site, make_app):
    started(site, make_app)
    publish(site)
    ok(site, "build")
    digest = site.root / "digest.eml"
    ok(site, "preview", "news", "--digest", "weekly", "--out", str(digest))
    message = email.message_from_bytes(digest.read_bytes(), policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    assert "weekly digest" in message["Subject"]
    assert "Açıklama: Заявление" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    shown = email.message_from_string(ok(site, "preview", "news").stdout, policy=policy.default)
    assert shown["To"] == "reader@example.org" and shown["Subject"] == "Açıklama: Заявление"
    missing = run(site, "preview", "nothing-here")
    assert missing.exit_code == 1 and "no statement with id 'nothing-here'" in missing.output


def test_deliveries_list_json_has_stable_keys_and_status_counts_by_state(site, make_app):
    app = started(site, make_app, "a@example.org", "b@example.org")
    publish(site)
    tick(app)
    rows = listing(site)
    assert [set(row) for row in rows] == [LISTING_KEYS, LISTING_KEYS]
    assert {(row["channel"], row["state"], row["attempts"]) for row in rows} == {("email", "sent", 1)}
    assert listing(site, "--state", "pending") == []
    status = json.loads(ok(site, "status", "--json").stdout)
    assert status["deliveries"]["email"]["sent"] == 2
    assert set(status["deliveries"]["email"]) >= {"pending", "in_flight", "sent", "failed", "unknown", "cancelled"}


def test_retry_failed_tries_again_what_failed_for_good(site, make_app):
    (site.root / "outbox").write_text("a file where the outbox folder should be")
    app = started(site, make_app, "reader@example.org")
    publish(site)
    for _ in range(4):  # attempts a day apart, until three days have passed
        tick(app)
        site.clock.advance(days=1)
    [failed] = listing(site, "--state", "failed")
    assert failed["attempts"] == 4 and "cannot write to" in failed["last_error"]
    (site.root / "outbox").unlink()
    assert "1 failed deliveries will be tried again" in ok(site, "deliveries", "retry", "--state", "failed").output
    tick(app)
    assert [row["state"] for row in listing(site)] == ["sent"]
    assert len(list((site.root / "outbox").glob("*.eml"))) == 1


SMTP = """
[email]
transport = "smtp"
from_address = "news@example.org"

[email.smtp]
host = "127.0.0.1"
port = {port}
timeout_seconds = 1.0
"""


def test_resend_unknown_sends_again_only_what_the_operator_chose(site, make_app):
    readers = ["a@example.org", "b@example.org", "victim@example.org"]
    with SMTPServer([Fault.hang_after_data(recipients="victim@example.org", times=1, store=True)]) as server:
        site.extra = SMTP.format(port=server.port)
        app = started(site, make_app, *readers)
        publish(site)
        tick(app)
        status = json.loads(ok(site, "status", "--json").stdout)["deliveries"]["email"]
        assert (status["sent"], status["unknown"]) == (2, 1)
        [unknown] = listing(site, "--state", "unknown")
        tick(app)
        assert listing(site, "--state", "unknown") == [unknown], "unknown is never re-sent on its own"
        assert "1 unknown deliveries will be sent again" in ok(site, "deliveries", "resend-unknown").output
        catch_up(site)
        tick(app)
    assert Counter(r for m in server.messages for r in m.recipients) == Counter([*readers, "victim@example.org"])
    assert json.loads(ok(site, "status", "--json").stdout)["deliveries"]["email"]["sent"] == 3
