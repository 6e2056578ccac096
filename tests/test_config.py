"""Configuration: defaults, every error naming its key, secrets by environment, and docs in step."""

from __future__ import annotations

from pathlib import Path

import pytest

from syndicate.config import Config, documented_settings, from_mapping, load, reference
from syndicate.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = {"site": {"title": "Org", "url": "https://example.org"}}


def config(**sections: dict) -> Config:
    raw = {**MINIMAL, **sections}
    raw["site"] = {**MINIMAL["site"], **sections.get("site", {})}
    return from_mapping(raw, Path("/srv/site"))


def test_the_projects_own_config_runs_the_demo_as_is():
    loaded = load(ROOT / "config.toml")
    assert loaded.site.title == "IMKANDER"
    assert loaded.source.path == ROOT / "statements"
    assert loaded.database_url() == f"sqlite:///{ROOT / 'syndicate.db'}"


def test_defaults_are_embedded_and_relative_paths_start_at_the_config_folder():
    c = config()
    assert c.feeds.formats == ("atom", "rss", "json")
    assert c.feeds.dir == Path("/srv/site/feeds")
    assert c.database.url == "sqlite:////srv/site/syndicate.db"
    assert c.email.transport == "file"
    assert c.feeds_base_url == "https://example.org/feeds/"
    assert c.sender == ("Org", "newsletter@example.org")


@pytest.mark.parametrize(
    ("raw", "key", "wanted"),
    [
        ({"feeds": {"items": 0}}, "feeds.items", "an integer between 1 and 1000"),
        ({"feeds": {"formats": ["atom", "rdf"]}}, "feeds.formats", "'atom', 'rss', 'json'"),
        ({"feeds": {"hubs": ["not a url"]}}, "feeds.hubs[0]", "absolute http or https URL"),
        ({"site": {"timezone": "Mars/Olympus"}}, "site.timezone", "unknown time zone"),
        ({"site": {"url": "ftp://example.org"}}, "site.url", "http or https URL"),
        ({"scheduler": {"poll_seconds": "60"}}, "scheduler.poll_seconds", "an integer"),
        ({"email": {"smtp": {"security": "ssl"}}}, "email.smtp.security", "'none', 'starttls', 'tls'"),
        ({"email": {"digest": {"weekly": "someday 08:00"}}}, "email.digest.weekly", "a weekday and time"),
        ({"database": {"url_env": "not a name!"}}, "database.url_env", "name of an environment variable"),
        ({"source": {"type": "feed"}}, "source.url", "http or https URL"),
    ],
)
def test_a_bad_value_is_refused_naming_the_key_and_what_is_wanted(raw, key, wanted):
    with pytest.raises(ConfigError) as caught:
        config(**raw)
    assert caught.value.key == key
    assert wanted in str(caught.value)


def test_a_missing_required_key_is_named():
    with pytest.raises(ConfigError, match=r"site.title: is required"):
        from_mapping({"site": {"url": "https://example.org"}}, Path("/srv"))


def test_an_unknown_key_is_refused_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"feeds.itmes: unknown key; did you mean feeds.items\?"):
        config(feeds={"itmes": 5})


def test_a_broken_file_names_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[site\ntitle = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(path)
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "missing.toml")


def test_secrets_are_read_from_the_environment_named_in_the_file(monkeypatch):
    c = config(database={"url_env": "SYNDICATE_TEST_DB"})
    with pytest.raises(ConfigError, match="SYNDICATE_TEST_DB is not set"):
        c.database_url()
    monkeypatch.setenv("SYNDICATE_TEST_DB", "sqlite:///elsewhere.db")
    assert c.database_url() == "sqlite:////srv/site/elsewhere.db"


def test_the_config_is_frozen():
    c = config()
    with pytest.raises(AttributeError):
        c.site = None  # type: ignore[misc]


def test_every_setting_has_help_and_the_docs_carry_the_generated_reference():
    for key, _, help_text in documented_settings():
        assert help_text.endswith("."), f"{key}: help should be a sentence"
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    start = page.index("<!-- settings-reference")
    table = page[page.index("\n", start) + 1 : page.index("<!-- /settings-reference -->")]
    assert table == reference(), (
        "docs/configuration.md is out of step: regenerate it with"
        " `python -m syndicate.config --update docs/configuration.md`"
    )


def test_a_bad_database_url_from_the_environment_is_reported_without_its_password(monkeypatch):
    c = config(database={"url_env": "SYNDICATE_TEST_DB"})
    monkeypatch.setenv("SYNDICATE_TEST_DB", "mysql://syndicate:hunter2@db.internal/syndicate")
    with pytest.raises(ConfigError) as caught:
        c.database_url()
    assert "hunter2" not in str(caught.value)
    assert "mysql://syndicate:***@db.internal/syndicate" in str(caught.value)


# -- config that passes check works: what would break a header, an SMTP command or a socket is refused --


@pytest.mark.parametrize(
    ("raw", "key", "wanted"),
    [
        ({"email": {"from_name": "Org\nBcc: everyone@example.org"}}, "email.from_name", "one line"),
        ({"email": {"from_name": "Org\u2028News"}}, "email.from_name", "one line"),
        ({"email": {"list_id": "statements.example.org\r\nX-Evil: 1"}}, "email.list_id", "RFC 2919"),
        (
            {"email": {"smtp": {"helo": "mail.example.org\r\nMAIL FROM:<x@evil.example>"}}},
            "email.smtp.helo",
            "host name",
        ),
        ({"email": {"smtp": {"helo": "two words"}}}, "email.smtp.helo", "host name"),
        ({"web": {"bind": "127.0.0.1:99999"}}, "web.bind", '"host:port"'),
        ({"email": {"dkim": {"selector": "s1"}}}, "email.dkim.domain", "selector, domain and key_file all set"),
        ({"email": {"dkim": {"selector": "s1", "domain": "example.org"}}}, "email.dkim.key_file", "all set"),
        (
            {"email": {"dkim": {"selector": "s1\n", "domain": "example.org", "key_file": "k.pem"}}},
            "email.dkim.selector",
            "host name",
        ),
        ({"site": {"title": "Org\x07"}}, "site.title", "one line"),
        ({"site": {"rights": "All rights\x00 reserved"}}, "site.rights", "without control characters"),
    ],
)
def test_a_value_that_would_break_a_header_or_a_command_is_refused(raw, key, wanted):
    with pytest.raises(ConfigError) as caught:
        config(**raw)
    assert caught.value.key == key
    assert wanted in str(caught.value)


@pytest.mark.parametrize(
    "raw",
    [
        {"email": {"from_name": "İnsan Hakları Derneği · Правозащитный центр"}},
        {"email": {"list_id": "news_2026.statements.example.org"}},
        {"email": {"smtp": {"helo": "[192.0.2.1]"}}},
        {"email": {"smtp": {"helo": "mail-1.example.org"}}},
        {"email": {"dkim": {"selector": "s2026_a", "domain": "example.org", "key_file": "dkim.pem"}}},
        {"web": {"bind": "[::1]:65535"}},
        {"site": {"rights": "All rights reserved.\nQuote with an active link."}},
    ],
)
def test_good_values_of_the_same_settings_still_pass(raw):
    config(**raw)
