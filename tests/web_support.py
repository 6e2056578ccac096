"""Helpers of the web tests: an app with its Flask client, form tokens read from pages, subscribers in the store."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from syndicate.app import App
from syndicate.store import subscribers as store
from syndicate.store.subscribers import Subscriber
from syndicate.subscribers import Frequency, NewSubscriber, Status
from syndicate.web import create_app

TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


@dataclass
class WebSite:
    """A syndicate App, the Flask app made from it, and a test client."""

    app: App
    flask: Flask
    client: FlaskClient

    def form_token(self, path: str, **options: Any) -> str:
        """GET ``path`` (setting any cookie it sets) and return the form token on the page."""
        response = self.client.get(path, **options)
        assert response.status_code == 200, response.status
        return form_token(response.get_data(as_text=True))

    def subscriber(self, email: str) -> Subscriber:
        """The stored subscriber with this address."""
        with self.app.db.read() as conn:
            found = store.by_email(conn, email)
        assert found is not None, f"{email} is not stored"
        return found

    def add(self, email: str, status: Status = Status.ACTIVE, languages: tuple[str, ...] = ("en",)) -> Subscriber:
        """Store a subscriber in ``status`` (added by the operator, consent given elsewhere)."""
        now = self.app.clock()
        new = NewSubscriber(email, languages, (), Frequency.IMMEDIATE, True, "added by a test", now)
        with self.app.db.write() as conn:
            subscriber_id = store.add(conn, new, now)
            if status != Status.ACTIVE:
                store.set_status(conn, subscriber_id, status, now)
        return self.subscriber(email)

    def sign(self, purpose: str, subscriber: Subscriber, expires: int = 0) -> str:
        """A token for ``subscriber`` as the mail would carry it."""
        return self.app.secrets.sign(purpose, subscriber.id, subscriber.email, expires)


def make_web(app: App, **options: Any) -> WebSite:
    """The web app of ``app`` and a client for it."""
    flask_app = create_app(app, **options)
    return WebSite(app, flask_app, flask_app.test_client())


def form_token(html: str) -> str:
    """The form token in a page."""
    found = TOKEN.search(html)
    assert found, "the page has no form token"
    return found.group(1)


def subscribe(web: WebSite, email: str, **fields: Any) -> Any:
    """Fill in and send the form as a browser would (the GET sets the cookie the token is bound to)."""
    options = {k: fields.pop(k) for k in ("headers", "environ_base") if k in fields}
    token = web.form_token("/subscribe", **options)
    data = {"email": email, "languages": ["en"], "frequency": "immediate", "form_token": token, **fields}
    return web.client.post("/subscribe", data=data, **options)


def subscribe_and_plan(web: WebSite, email: str, **fields: Any) -> Any:
    """Send the form, then run the tick's stage that acts on the stored request."""
    response = subscribe(web, email, **fields)
    plan_requests(web.app)
    return response


def plan_requests(app: App) -> dict[str, int]:
    """What the next tick does with the subscribe requests the form stored: run that stage now."""
    return app.stage("plan-confirmations").run(app.clock(), lambda: False)


def stored_requests(app: App) -> list[str]:
    """The addresses of the subscribe requests waiting for the tick, oldest first."""
    from syndicate.store.subscribers import oldest_requests

    with app.db.read() as conn:
        return [r.wanted.email for r in oldest_requests(conn, 10_000)]


def deliveries(app: App) -> list[dict[str, Any]]:
    """Every delivery in the outbox, oldest first."""
    from syndicate.outbox import listing

    with app.db.read() as conn:
        return list(reversed(listing(conn, limit=10_000)))


# For tests whose subject is the web layer, not the store: one engine is enough (the fixture's other params go).
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
