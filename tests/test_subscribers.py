"""Subscribers: addresses checked and normalised, double opt-in, CSV import and export, through the CLI.

The commands run through click's CliRunner against the site's config, on the
real clock; mail goes to ``.eml`` files (the file transport).
"""

from __future__ import annotations

import csv
import email
import io
import re
import time
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import Site

from syndicate.cli import main
from syndicate.plan import subscribers as removal
from syndicate.store import subscribers as subscriber_store
from syndicate.subscribers import InvalidSubscriber, normalise_email
from syndicate.tokens import BadToken


def run(site: Site, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(site.root / "config.toml"), *args])


def ok(site: Site, *args: str) -> Result:
    result = run(site, *args)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def cli_site(site: Site) -> Site:
    """The site with its config written and its first tick run (a new installation mails no history)."""
    site.config()
    ok(site, "once")
    return site


def mails(site: Site) -> list[EmailMessage]:
    paths = sorted((site.root / "outbox").glob("*.eml"), key=lambda p: int(p.stem))
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in paths]  # type: ignore[misc]


def stored(site: Site, address: str) -> subscriber_store.Subscriber | None:
    app = site.app()
    try:
        with app.db.read() as conn:
            return subscriber_store.by_email(conn, address)
    finally:
        app.close()


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("  Reader@Example.ORG ", "reader@example.org"),
        ("okur@Bücher.de", "okur@xn--bcher-kva.de"),
        ("ivan@пример.рф", "ivan@xn--e1afmkfd.xn--p1ai"),
        ("first.last+news@sub.example.org", "first.last+news@sub.example.org"),
    ],
)
def test_addresses_are_normalised(raw, normal):
    assert normalise_email(raw) == normal


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "is not an e-mail address"),
        ("reader.example.org", "is not an e-mail address"),
        ("a@b@example.org", "is not an e-mail address"),
        ("reader@localhost", "the domain is not valid"),
        ("reader@-bad.org", "the domain is not valid"),
        ("reader@exa mple.org", "the domain is not valid"),
        ("ığdır@example.org", "the part before @ is not valid"),
        ("two..dots@example.org", "the part before @ is not valid"),
        ("Reader <reader@example.org>", "the part before @ is not valid"),
    ],
)
def test_bad_addresses_are_rejected_with_a_reason(raw, reason):
    with pytest.raises(InvalidSubscriber) as caught:
        normalise_email(raw)
    assert str(caught.value) == f"{raw!r}{':' if reason.startswith('the') else ''} {reason}"


def test_add_normalises_and_keeps_addresses_unique(cli_site):
    assert (
        "added reader@xn--bcher-kva.de (active)"
        in ok(cli_site, "subscribers", "add", " Reader@Bücher.DE ", "--confirmed").output
    )
    again = run(cli_site, "subscribers", "add", "reader@xn--bcher-kva.de", "--confirmed")
    assert again.exit_code == 1
    assert "reader@xn--bcher-kva.de is already on the list (active)" in again.output
    bad = run(cli_site, "subscribers", "add", "not-an-address")
    assert bad.exit_code == 2 and "'not-an-address' is not an e-mail address" in bad.output
    bad_lang = run(cli_site, "subscribers", "add", "x@example.org", "--lang", "english!")
    assert bad_lang.exit_code == 2 and "--lang" in bad_lang.output
    assert stored(cli_site, "x@example.org") is None


def test_an_unconfirmed_subscriber_is_pending_and_gets_one_confirmation_mail(cli_site):
    ok(cli_site, "subscribers", "add", "Reader@Example.org", "--lang", "tr")
    reader = stored(cli_site, "reader@example.org")
    assert reader is not None and reader.status == "pending" and reader.languages == ("tr",)
    assert mails(cli_site) == [], "the mail is written by the next tick"
    ok(cli_site, "once")
    ok(cli_site, "once")
    [confirmation] = mails(cli_site)
    assert confirmation["To"] == "reader@example.org"
    assert "List-Unsubscribe" not in confirmation, "not a list mail: nobody is on the list yet"
    text = confirmation.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    token = re.search(r"http://127\.0\.0\.1:8080/confirm/([\w.-]+)", text).group(1)  # type: ignore[union-attr]
    app = cli_site.app()
    try:
        app.secrets.verify(token, "confirm", "reader@example.org", datetime.now(UTC))
        with pytest.raises(BadToken):
            app.secrets.verify(token, "confirm", "other@example.org", datetime.now(UTC))
    finally:
        app.close()


def test_a_confirmed_subscriber_is_active_and_gets_no_confirmation_mail(cli_site):
    ok(cli_site, "subscribers", "add", "reader@example.org", "--confirmed", "--frequency", "weekly")
    reader = stored(cli_site, "reader@example.org")
    assert reader is not None and (reader.status, reader.frequency) == ("active", "weekly")
    assert reader.consent_method.startswith("added by the operator")
    ok(cli_site, "once")
    assert mails(cli_site) == []


def test_only_active_subscribers_get_newsletters(cli_site):
    ok(cli_site, "subscribers", "add", "active@example.org", "--confirmed")
    ok(cli_site, "subscribers", "add", "pending@example.org")
    ok(cli_site, "subscribers", "add", "gone@example.org", "--confirmed")
    ok(cli_site, "subscribers", "remove", "Gone@Example.org")
    published = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 60))
    cli_site.statement("news.md", "News", published)
    ok(cli_site, "once")
    got = sorted((str(m["To"]), str(m["Subject"])) for m in mails(cli_site))
    assert got == [("active@example.org", "News"), ("pending@example.org", "Confirm your subscription to Example Org")]


CSV = """\
email,languages,categories,frequency
good@example.org,en,,immediate
"bad
address@example.org",en,,immediate
Also.Good@Example.org,en;tr,economy;culture,daily
not-an-address,en,,immediate

lang@example.org,english!,,immediate
freq@example.org,en,,hourly
good@example.org,en,,immediate
"""


def write_csv(site: Site, text: str) -> Path:
    path = site.root / "people.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_import_reports_every_bad_row_by_line_and_imports_nothing(cli_site):
    path = write_csv(cli_site, CSV)
    result = run(cli_site, "subscribers", "import", str(path))
    assert result.exit_code == 1
    assert re.findall(rf"^{re.escape(str(path))}:(\d+): ", result.output, re.MULTILINE) == ["3", "6", "8", "9", "10"]
    assert f"{path}:3: 'bad\\naddress@example.org': the part before @ is not valid" in result.output
    assert f"{path}:10: good@example.org is already on line 2" in result.output
    assert "5 bad row(s); nothing imported" in result.output
    assert stored(cli_site, "good@example.org") is None


def test_import_with_skip_invalid_takes_the_good_rows_pending_with_confirmation_mails(cli_site):
    path = write_csv(cli_site, CSV)
    result = ok(cli_site, "subscribers", "import", str(path), "--skip-invalid")
    assert "imported 2 subscriber(s), 5 bad row(s) skipped" in result.output
    also = stored(cli_site, "also.good@example.org")
    assert also is not None
    assert (also.status, also.languages, also.categories, also.frequency) == (
        "pending", ("en", "tr"), ("culture", "economy"), "daily"
    )  # fmt: skip
    ok(cli_site, "once")
    assert sorted(str(m["To"]) for m in mails(cli_site)) == ["also.good@example.org", "good@example.org"]


def test_import_confirmed_makes_active_subscribers_and_sends_nothing(cli_site):
    path = write_csv(cli_site, "email\nOne@example.org\ntwo@example.org\n")
    ok(cli_site, "subscribers", "add", "two@example.org")
    assert (
        "imported 1 subscriber(s), 1 already on the list"
        in ok(cli_site, "subscribers", "import", str(path), "--confirmed").output
    )
    one = stored(cli_site, "one@example.org")
    assert one is not None and one.status == "active" and "consent given elsewhere" in one.consent_method


def test_export_is_csv_with_a_header_and_one_row_per_subscriber(cli_site):
    ok(cli_site, "subscribers", "add", "b@example.org", "--confirmed", "--category", "economy")
    ok(cli_site, "subscribers", "add", "a@example.org")
    rows = list(csv.DictReader(io.StringIO(ok(cli_site, "subscribers", "export").stdout)))
    assert [(r["email"], r["status"], r["categories"]) for r in rows] == [
        ("a@example.org", "pending", ""),
        ("b@example.org", "active", "economy"),
    ]


def test_list_and_remove(cli_site):
    ok(cli_site, "subscribers", "add", "b@example.org", "--confirmed", "--lang", "tr", "--category", " labour; economy")
    ok(cli_site, "subscribers", "add", "a@example.org")
    listed = ok(cli_site, "subscribers", "list")
    assert listed.stdout.splitlines() == [
        "a@example.org\tpending\ten\tall\timmediate",
        "b@example.org\tactive\ttr\teconomy,labour\timmediate",
    ]
    assert ok(cli_site, "subscribers", "list", "--status", "active").stdout.splitlines()[0].startswith("b@")
    assert "removed a@example.org" in ok(cli_site, "subscribers", "remove", "A@example.org").output
    missing = run(cli_site, "subscribers", "remove", "a@example.org")
    assert missing.exit_code == 1 and "a@example.org is not on the list" in missing.output
    assert [line.split("\t")[0] for line in ok(cli_site, "subscribers", "list").stdout.splitlines()] == [
        "b@example.org"
    ]


def test_a_removed_subscribers_id_is_never_given_to_someone_new_and_their_pending_mail_is_cancelled(site, make_app):
    from sqlalchemy import select

    from syndicate.store.schema import deliveries
    from syndicate.subscribers import NewSubscriber

    store = subscriber_store
    app = make_app(site)
    now = app.clock()
    with app.db.write() as conn:
        first = store.add(conn, NewSubscriber("first@example.org", ("en",), confirmed=True, consent_method="test"), now)
        conn.execute(deliveries.insert().values(channel="email", source_kind="edition", source_id=1, target=str(first),
                                               state="pending", attempts=0, due_at=now, created_at=now))  # fmt: skip
        assert removal.remove(conn, "first@example.org", now)
        second = store.add(
            conn, NewSubscriber("second@example.org", ("en",), confirmed=True, consent_method="test"), now
        )
        owed = conn.execute(select(deliveries.c.state, deliveries.c.last_error)).one()
    assert second != first, "deliveries name subscribers by id: an id is never reused"
    assert owed.state == "cancelled"
    assert owed.last_error == "subscriber removed"


def test_export_never_writes_a_cell_a_spreadsheet_would_run_and_import_reads_it_back(cli_site, tmp_path):
    # Addresses and categories may start with characters a spreadsheet takes for a formula (OWASP).
    ok(cli_site, "subscribers", "add", "--confirmed", "--category", "=HYPERLINK(1)", "--", "-cmd@example.org")
    ok(cli_site, "subscribers", "add", "+1@example.org", "--confirmed", "--category", "@SUM(A1)")
    exported = ok(cli_site, "subscribers", "export").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    for row in rows:
        for name, value in row.items():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (name, value)
    assert {r["email"] for r in rows} == {"'-cmd@example.org", "'+1@example.org"}
    ok(cli_site, "subscribers", "remove", "--", "-cmd@example.org")
    ok(cli_site, "subscribers", "remove", "+1@example.org")
    path = tmp_path / "list.csv"
    path.write_text(exported, encoding="utf-8")
    ok(cli_site, "subscribers", "import", str(path), "--confirmed")
    back = stored(cli_site, "-cmd@example.org")
    assert back is not None and back.categories == ("=HYPERLINK(1)",)
