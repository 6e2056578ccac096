"""A partner URL with ``user:password@``: the password reaches the partner, and is shown nowhere else.

Not in the log, not in ``deliveries list``, ``partners list``, ``partners test`` or
``status``, not in the database (``deliveries.last_error``, ``partner_state``), and
not in a config error: each shows ``user:***@``.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace

import pytest
import requests
from click.testing import CliRunner
from partner_site import partner_toml, secret_for, start, webhook_rows
from servers.http import PartnerServer, Reply, refused_url
from sqlalchemy import select

from syndicate.cli import main
from syndicate.config import from_mapping
from syndicate.deliver.webhooks import Unreachable
from syndicate.deliver.webhooks.http import post, session
from syndicate.errors import ConfigError
from syndicate.pipeline import tick
from syndicate.store.schema import deliveries, partner_state

pytestmark = pytest.mark.timeout(60)
USER, PASSWORD = "syndicate", "pw-Zq81xT"  # a test value; every check looks for it
SHOWN = f"{USER}:***@"


def with_password(url: str) -> str:
    return url.replace("http://", f"http://{USER}:{PASSWORD}@", 1)


def cli(site, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(site.root / "config.toml"), *args])
    return result.output


def stored(app) -> list[str]:
    """Every webhook delivery row and every partner_state row, as text."""
    with app.db.read() as conn:
        rows = [*conn.execute(select(deliveries)), *conn.execute(select(partner_state))]
    return [repr(tuple(row)) for row in rows]


def test_the_password_goes_to_the_partner_and_nowhere_else(site, make_app, monkeypatch, caplog):
    secret = secret_for(monkeypatch, "PARTNER_SECRET")
    with PartnerServer(secret) as failing, PartnerServer(secret) as gone:
        failing.set_default(Reply.status(500, body=b"broken"))
        gone.set_default(Reply.status(410))
        app = start(
            site,
            make_app,
            partner_toml("failing", with_password(failing.url), "PARTNER_SECRET"),
            partner_toml("gone", with_password(gone.url), "PARTNER_SECRET"),
            partner_toml("refused", with_password(refused_url("/hook")), "PARTNER_SECRET"),
        )
        site.statement("first.md", "First", "2026-11-26T10:00:00+03:00", "A statement. It says things.")
        with caplog.at_level(logging.DEBUG):
            tick(app)
            outputs = [
                cli(site, "deliveries", "list"),
                cli(site, "deliveries", "list", "--json"),
                cli(site, "partners", "list"),
                cli(site, "partners", "list", "--json"),
                cli(site, "partners", "test", "failing"),
                cli(site, "partners", "test", "refused"),
                cli(site, "status", "--json"),
            ]
        basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        assert failing.requests[0].header("authorization") == f"Basic {basic}"  # it was used
    errors = {row.target: row.last_error for row in webhook_rows(app)}
    assert f"http://{SHOWN}127.0.0.1" in errors["failing"] and "answered 500" in errors["failing"]
    assert f"http://{SHOWN}127.0.0.1" in errors["refused"] and "could not reach" in errors["refused"]
    assert "answered 410" in errors["gone"]
    assert json.loads(outputs[1])[0]["last_error"]  # the listing shows the reply, only without the password
    assert [o for o in outputs if SHOWN not in o] == []  # each names the URL, without its password
    for text in [caplog.text, *outputs, *stored(app)]:
        assert PASSWORD not in text


def test_a_requests_error_that_repeats_the_url_is_redacted(tmp_path):
    # requests quotes the URL as given when it cannot use it: the text of its error must not leak.
    raw = {
        "site": {"title": "Example Org", "url": "https://example.org"},
        "partners": [{"name": "p", "url": "https://partner.example/hook", "secret_env": "PARTNER_SECRET"}],
    }
    # An impossible port: no config would pass it, so the URL is set past the checks.
    partner = replace(from_mapping(raw, tmp_path).partners[0], url=f"http://{USER}:{PASSWORD}@127.0.0.1:99999/")
    with session("test") as http, pytest.raises(Unreachable) as caught:
        post(http, partner, b"{}", {"Content-Type": "application/json"})
    assert isinstance(caught.value.__cause__, requests.RequestException)
    assert PASSWORD in str(caught.value.__cause__)  # what requests said
    assert PASSWORD not in str(caught.value)
    assert SHOWN in str(caught.value)


def test_a_config_error_about_the_url_does_not_echo_the_password(tmp_path):
    raw = {
        "site": {"title": "Example Org", "url": "https://example.org"},
        "partners": [
            {"name": "p", "url": f"http://{USER}:{PASSWORD}@partner.example/hook", "secret_env": "PARTNER_SECRET"}
        ],
    }
    with pytest.raises(ConfigError) as caught:
        from_mapping(raw, tmp_path)
    assert caught.value.key == "partners[0].url"
    assert PASSWORD not in str(caught.value)
    assert SHOWN in str(caught.value)
