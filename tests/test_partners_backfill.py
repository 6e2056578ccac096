"""A backfill is not pushed: statements first seen long after their publication go to no partner that lacks them.

The rule is mail's (``email.max_age_days``): ``[partner_defaults] max_age_days``
for every partner, ``max_age_days`` in a ``[[partners]]`` table for one. It is
about first publication only: an update or retraction of a statement a partner
got still reaches it, however old the statement is by then.
"""

from __future__ import annotations

import logging
import os

import feedparser
import pytest
from click.testing import CliRunner
from lxml import etree
from partner_site import AtomPartner, loopback_partner, partner_toml, secret_for, start, webhook_rows
from servers.http import refused_url
from sqlalchemy import select

from syndicate.cli import main
from syndicate.config import from_mapping
from syndicate.errors import ConfigError
from syndicate.pipeline import build, never, tick
from syndicate.store.schema import events

pytestmark = pytest.mark.timeout(60)
BODY = "The association welcomes the decision. It thanks every member."
DEFAULTS = "[partner_defaults]\nmax_age_days = 3\n\n"


partner = pytest.fixture(loopback_partner)


def targets(app) -> dict[str, list[str]]:
    """Statement id -> partners its events were planned for, in order."""
    with app.db.read() as conn:
        changes = {row.id: row.statement_id for row in conn.execute(select(events))}
    found: dict[str, list[str]] = {}
    for row in webhook_rows(app):
        found.setdefault(changes[row.source_id], []).append(row.target)
    return found


def titles(partner: AtomPartner) -> list[str]:
    return [feedparser.parse(d.payload).entries[0].title for d in partner.accepted]


def test_a_folder_of_old_statements_is_not_pushed_but_a_new_one_is(site, make_app, partner, caplog):
    app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_SECRET"))
    for year in (2013, 2014, 2015):  # an archive being imported
        site.statement(f"archive/{year}.md", f"Archive {year}", f"{year}-09-12T10:00:00+03:00", BODY)
    site.statement("news.md", "News", "2026-11-25T10:00:00+03:00", BODY)  # the clock: 2026-11-26 12:00 UTC
    with caplog.at_level(logging.INFO, logger="syndicate.plan.events"):
        tick(app)
    assert targets(app) == {"news": ["a"]}
    assert titles(partner) == ["News"]
    assert "not pushing 2013 to a: published 2013-09-12, longer ago than its max_age_days (7)" in caplog.text


def test_a_default_for_every_partner_and_an_override_for_one(site, make_app, monkeypatch):
    secret_for(monkeypatch, "PARTNER_SECRET")
    url = refused_url()  # nothing is sent: this is about planning
    app = start(
        site,
        make_app,
        DEFAULTS,
        partner_toml("default", url, "PARTNER_SECRET"),
        partner_toml("patient", url, "PARTNER_SECRET", max_age_days=30),
        partner_toml("strict", url, "PARTNER_SECRET", max_age_days=1),
    )
    site.statement("five-days.md", "Five days", "2026-11-21T12:00:00+00:00", BODY)
    site.statement("two-days.md", "Two days", "2026-11-24T12:00:00+00:00", BODY)
    site.statement("today.md", "Today", "2026-11-26T09:00:00+00:00", BODY)
    build(app)
    assert app.stage("plan-partners").run(app.clock(), never) == {"events": 3, "deliveries": 6}
    assert targets(app) == {
        "five-days": ["patient"],
        "two-days": ["default", "patient"],
        "today": ["default", "patient", "strict"],
    }


def test_updates_and_retractions_still_reach_a_partner_that_got_the_statement(site, make_app, partner):
    with AtomPartner(os.environ["PARTNER_SECRET"]) as newcomer:
        app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_SECRET"))
        site.statement("first.md", "First", "2026-11-26T10:00:00+03:00", BODY)
        tick(app)
        site.clock.advance(days=60)  # the statement is old now; a partner joins that never got it
        tables = (partner_toml("a", partner.url, "PARTNER_SECRET"), partner_toml("b", newcomer.url, "PARTNER_SECRET"))
        app = start(site, make_app, *tables)
        site.statement("first.md", "First", "2026-11-26T10:00:00+03:00", BODY + " Corrected.")
        tick(app)
        site.clock.advance(hours=1)
        site.statement("first.md", "First", "2026-11-26T10:00:00+03:00", BODY, retracted=True)
        tick(app)
        assert newcomer.requests == []
    assert targets(app) == {"first": ["a", "a", "a"]}
    published, update, retraction = partner.accepted
    assert feedparser.parse(published.payload).entries[0].title == "First"
    assert "Corrected." in feedparser.parse(update.payload).entries[0].content[0].value
    assert etree.fromstring(retraction.payload).tag == "{http://purl.org/atompub/tombstones/1.0}deleted-entry"


def test_a_held_back_statement_stays_held_back_when_it_is_updated(site, make_app, partner):
    app = start(site, make_app, partner_toml("a", partner.url, "PARTNER_SECRET"))
    site.statement("old.md", "Old", "2015-01-01T10:00:00+03:00", BODY)
    tick(app)
    site.clock.advance(hours=1)
    site.statement("old.md", "Old", "2015-01-01T10:00:00+03:00", BODY + " Corrected.")
    tick(app)
    assert webhook_rows(app) == []
    assert partner.requests == []


def test_check_shows_each_partners_limit_and_what_it_holds_back(sqlite_site, monkeypatch):
    secret_for(monkeypatch, "PARTNER_SECRET")
    sqlite_site.extra = (
        DEFAULTS
        + partner_toml("a", refused_url(), "PARTNER_SECRET")
        + partner_toml("b", refused_url(), "PARTNER_SECRET", max_age_days=100000)
    )
    sqlite_site.config()
    sqlite_site.statement("old.md", "Old", "2015-01-01T10:00:00+03:00", BODY)
    sqlite_site.statement("draft.md", "Draft", "2015-01-01T10:00:00+03:00", BODY, draft=True)
    sqlite_site.statement("new.md", "New", "2099-01-01T10:00:00+03:00", BODY)  # an embargo: younger than now
    result = CliRunner().invoke(main, ["--config", str(sqlite_site.root / "config.toml"), "check"])
    assert result.exit_code == 0, result.output  # a note is no problem
    assert (
        "note: partner a: a statement first seen over 3 day(s) after its publication is not pushed"
        " (partner_defaults.max_age_days); 1 of the 2 statements here are that old"
    ) in result.output
    assert "note: partner b: a statement first seen over 100000 day(s) after its publication is not pushed" in (
        result.output
    )
    assert "(partners[1].max_age_days); 0 of the 2 statements here are that old" in result.output


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"partner_defaults": {"max_age_days": 0}}, "partner_defaults.max_age_days"),
        ({"partner_defaults": {"max_age_days": "7"}}, "partner_defaults.max_age_days"),
        ({"partners": [{"max_age_days": -1}]}, "partners[0].max_age_days"),
        ({"partners": [{"max_age_days": 1.5}]}, "partners[0].max_age_days"),
    ],
)
def test_a_bad_age_limit_is_refused_with_its_key(tmp_path, raw, key):
    site = {"site": {"title": "Example Org", "url": "https://example.org"}}
    one = {"name": "a", "url": "https://partner.example/hook", "secret_env": "PARTNER_SECRET"}
    if "partners" in raw:
        raw = {"partners": [{**one, **raw["partners"][0]}]}
    with pytest.raises(ConfigError) as caught:
        from_mapping({**site, **raw}, tmp_path)
    assert caught.value.key == key


def test_the_default_age_limit_is_mails(tmp_path):
    raw = {
        "site": {"title": "Example Org", "url": "https://example.org"},
        "partners": [{"name": "a", "url": "https://partner.example/hook", "secret_env": "PARTNER_SECRET"}],
    }
    config = from_mapping(raw, tmp_path)
    assert config.partner_max_age_days(config.partners[0]) == config.email.max_age_days == 7
