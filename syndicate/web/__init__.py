"""The web: subscriber pages, feed files, the site's pages, health and metrics, as one Flask app handed the App.

::

    create_app(app) ─► Web (pages, form guard, link checker, rate limits, scheduler probe)
        ├── subscribe.py     GET/POST /subscribe, GET /confirm/<token>
        ├── unsubscribe.py   GET/POST /unsubscribe/<token>  (RFC 8058 one-click)
        ├── preferences.py   GET/POST /preferences/<token>
        ├── feeds.py         GET /feeds/<path>  (ETag, Last-Modified, 304, Link rel=hub/self)
        ├── site.py          GET /, /statements/<id>, indexes, /newsletters/, sitemap.xml (ETag, 304, 410)
        ├── fediverse.py     GET /.well-known/webfinger, host-meta, nodeinfo; /ap/actor (with [fediverse])
        ├── operations.py    GET /healthz, GET /metrics
        ├── hooks.py         POST /hooks/<provider>  (SES, Postmark, SendGrid, Mailgun events)
        └── admin/           the operator's console at /admin, its JSON API at /api/v1
    server.py: waitress on a thread (``syndicate serve``, and inside ``syndicate run``)

Nothing here is global: every area is an object built from the App, and the
Flask app is made fresh by :func:`create_app`, so tests build as many as they like.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jinja2
from flask import Flask, Response
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.middleware.proxy_fix import ProxyFix

from syndicate.app import App
from syndicate.inbound.providers import Verifier
from syndicate.web import admin
from syndicate.web.context import SchedulerProbe, Web
from syndicate.web.fediverse import FediversePages
from syndicate.web.feeds import FeedFiles
from syndicate.web.forms import FormGuard
from syndicate.web.hooks import Hooks
from syndicate.web.limits import RateLimiter, SubscribeLimits
from syndicate.web.links import Links
from syndicate.web.operations import Operations
from syndicate.web.pages import Pages
from syndicate.web.preferences import PreferencesPages
from syndicate.web.site import SitePages
from syndicate.web.subscribe import SubscribePages
from syndicate.web.unsubscribe import UnsubscribePages

MAX_BODY = 64 * 1024  # the forms are small; a bigger body is refused before it is read
ERROR_KEYS = {404: "not_found", 405: "not_allowed"}


def create_app(
    app: App,
    *,
    scheduler: SchedulerProbe | None = None,
    limits: SubscribeLimits | None = None,
    verifiers: Mapping[str, Verifier] | None = None,
) -> Flask:
    """The Flask app for ``app``; ``scheduler`` reports the daemon's health when it runs in this process.

    ``verifiers`` are the providers' webhooks served (by default, those ``[inbound]`` turns on).
    """
    web = Web(
        app=app,
        pages=Pages(app.config),
        guard=FormGuard(app.secrets, _seconds(app)),
        links=Links(app.db, app.secrets, app.clock),
        limits=limits or subscribe_limits(app),
        scheduler=scheduler,
    )
    flask_app = Flask(__name__, template_folder=str(app.config.templates.dir), static_folder=None)
    flask_app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    # Werkzeug answers "/feeds//atom.xml" with a redirect to an absolute URL built from the Host
    # header, which any client may set: no route here redirects, a path with "//" is simply not found.
    flask_app.url_map.merge_slashes = False
    flask_app.jinja_env.undefined = jinja2.StrictUndefined
    flask_app.jinja_env.trim_blocks = flask_app.jinja_env.lstrip_blocks = True
    for area in (
        SubscribePages(web),
        UnsubscribePages(web),
        PreferencesPages(web),
        FeedFiles(app.config),
        Operations(web),
        Hooks(web, verifiers),
    ):
        flask_app.register_blueprint(area.blueprint())
    if app.config.site.pages:
        flask_app.register_blueprint(SitePages(app).blueprint())
    if app.config.fediverse.enabled:
        flask_app.register_blueprint(FediversePages(app).blueprint())
    if app.config.admin.enabled:
        for blueprint in admin.blueprints(web):
            flask_app.register_blueprint(blueprint)
    _error_pages(flask_app, web)
    hops = app.config.web.proxy_hops
    if hops:
        flask_app.wsgi_app = ProxyFix(flask_app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)  # type: ignore[method-assign]
    return flask_app


def subscribe_limits(app: App) -> SubscribeLimits:
    """The subscribe rate limits of ``[web]``, on the App's clock."""
    settings = app.config.web
    window = settings.rate_window_seconds
    return SubscribeLimits(
        RateLimiter(settings.subscribe_per_client, window, _seconds(app)),
        RateLimiter(settings.subscribe_per_address, window, _seconds(app)),
    )


def _seconds(app: App) -> Callable[[], float]:
    return lambda: app.clock().timestamp()


def _error_pages(flask_app: Flask, web: Web) -> None:
    """404, 405 and every other HTTP error as a page in the layout, in the reader's language."""

    def page(error: HTTPException) -> Response:
        code = error.code or 500
        key = ERROR_KEYS.get(code, "error")
        # The body is not read again here: it may be the reason for the error (413).
        response = web.pages.notice(web.pages.language(from_form=False), key, code)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    flask_app.register_error_handler(HTTPException, page)
