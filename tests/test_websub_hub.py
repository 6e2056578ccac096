"""WebSub against a third-party hub: flask-websub's hub and subscriber, on loopback.

Our own test hub (``servers.http.HubServer``) accepts what syndicate sends by
construction; this one was written by someone else. Its hub reads the publish
ping's ``hub.topic``, fetches the feed from syndicate's web server (whose
``Link`` headers must name the hub and the feed itself), and pushes it, signed
with the subscriber's secret, to flask-websub's subscriber, which checks the
``X-Hub-Signature`` before it hands the body on.

The hub runs its work as celery tasks; here celery runs them eagerly, inside
the hub's request, so everything has happened by the time a ping is answered.
It serves https (flask-websub's subscriber sends a secret only to an https
hub), with a throwaway certificate that syndicate and the subscriber trust.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask
import pytest
from celery import Celery
from flask_websub.hub import Hub, SQLite3HubStorage
from flask_websub.subscriber import SQLite3SubscriberStorage, SQLite3TempSubscriberStorage, Subscriber
from servers.tls import self_signed_certificate
from werkzeug.serving import make_server

from syndicate.app import App, build_app
from syndicate.config import load
from syndicate.pipeline import build
from syndicate.web import create_app
from syndicate.web.server import WebServer, listening_socket

pytestmark = pytest.mark.timeout(60)

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Notification:
    """A content delivery the subscriber accepted (flask-websub checked its signature first)."""

    topic: str
    body: bytes
    signature: str


@contextmanager
def serve(app: flask.Flask, ssl_context: ssl.SSLContext | None = None) -> Iterator[str]:
    """``app`` under werkzeug's threaded server on a free loopback port; yields its base URL."""
    server = make_server(HOST, 0, app, threaded=True, ssl_context=ssl_context)
    thread = threading.Thread(target=server.serve_forever, name="websub-third-party", daemon=True)
    thread.start()
    try:
        yield f"{'https' if ssl_context else 'http'}://{HOST}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def hub_app(folder: Path) -> flask.Flask:
    """flask-websub's hub at /hub, publish pings enabled, its celery tasks run eagerly in the request."""
    celery = Celery("flask-websub-hub", broker="memory://", backend="cache+memory://")
    celery.conf.update(task_always_eager=True)
    app = flask.Flask("hub")
    app.config["PUBLISH_SUPPORTED"] = True
    hub = Hub(SQLite3HubStorage(str(folder / "hub.db")), celery, REQUEST_TIMEOUT=5, MAX_ATTEMPTS=1)
    app.register_blueprint(hub.build_blueprint(url_prefix="/hub"))
    return app


def subscriber_app(folder: Path, received: list[Notification]) -> tuple[flask.Flask, Subscriber]:
    """flask-websub's subscriber with its callbacks at /callbacks; each accepted delivery lands in ``received``."""
    db = str(folder / "subscriber.db")
    subscriber = Subscriber(SQLite3SubscriberStorage(db), SQLite3TempSubscriberStorage(db), REQUEST_TIMEOUT=5)

    def listen(topic: str, callback_id: str, body: bytes) -> None:
        received.append(Notification(topic, body, flask.request.headers.get("X-Hub-Signature", "")))

    subscriber.add_listener(listen)
    app = flask.Flask("subscriber")
    app.register_blueprint(subscriber.build_blueprint(url_prefix="/callbacks"))
    return app, subscriber


@pytest.fixture
def trusted_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Syndicate and the subscriber (requests, both) trust the throwaway certificate, and only it."""
    path = tmp_path / "hub-ca.pem"
    path.write_bytes(self_signed_certificate().cert_pem)
    # requests prefers this variable to a session's own verify setting.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(path))


@pytest.fixture
def web(sqlite_site: Any, trusted_certificate: None) -> Iterator[Callable[[str], App]]:
    """Start syndicate's web server for the site, announcing ``hub``; the feeds' public URL is on that server."""
    started: list[tuple[App, WebServer]] = []

    def start(hub: str) -> App:
        sock = listening_socket(f"{HOST}:0")
        url = f"http://{HOST}:{sock.getsockname()[1]}"
        sqlite_site.hubs = (hub,)
        sqlite_site.config()  # writes config.toml
        config = load(sqlite_site.root / "config.toml", {"feeds.base_url": f"{url}/feeds/", "web.base_url": url})
        app = build_app(config, clock=sqlite_site.clock)
        server = WebServer(create_app(app), sock=sock, threads=4)
        server.start()
        started.append((app, server))
        return app

    yield start
    for app, server in started:
        server.stop()
        app.close()


def test_third_party_hub_fetches_the_changed_feed_and_delivers_it_signed(
    sqlite_site: Any, web: Callable[[str], App], tmp_path: Path
) -> None:
    received: list[Notification] = []
    sub_app, subscriber = subscriber_app(tmp_path, received)
    with serve(hub_app(tmp_path), self_signed_certificate().server_context()) as hub_base, serve(sub_app) as sub_url:
        hub = f"{hub_base}/hub"
        app = web(hub)
        topic = f"{app.config.feeds_base_url}atom.xml"
        with sub_app.test_request_context(base_url=sub_url):
            callback_id = subscriber.subscribe(topic_url=topic, hub_url=hub)
        secret = subscriber.storage[callback_id]["secret"]
        assert secret  # the subscription was confirmed, with a secret the hub signs with

        sqlite_site.statement("a.md", "A", "2026-11-01T10:00:00+03:00")
        report = build(app)

    assert report.pings == (6, 0)  # site and lang/en feeds, three formats each: the hub took every ping
    atom = (sqlite_site.feeds / "atom.xml").read_bytes()
    assert [(n.topic, n.body) for n in received] == [(topic, atom)]
    algorithm, signature = received[0].signature.split("=", 1)
    assert signature == hmac.new(secret.encode(), atom, getattr(hashlib, algorithm)).hexdigest()
