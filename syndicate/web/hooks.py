"""``POST /hooks/<provider>``: sending providers' event webhooks (bounces, complaints, unsubscribes).

Only the providers ``[inbound]`` turns on are served (``ses_topics``,
``postmark_auth_env``, ``sendgrid_key_env``, ``mailgun_key_env``); any other
answers 404. A request is verified as its provider signs it before anything
is stored (:mod:`syndicate.inbound.providers`); a forged or stale one is
logged and answered 406, which the providers take as "do not retry" (401 for
Postmark's missing or wrong credentials). Each verified event is stored under
its provider's id for it (the same event posted twice is one report) and
processed at once; the request is answered 200 only after every event in it
is committed, so a provider that saw no 200 posts it again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Blueprint, Response, request

from syndicate.inbound import providers
from syndicate.web.context import Web

log = logging.getLogger(__name__)

MAX_EVENT = 1_000_000  # bytes: an event is a few kilobytes, a SendGrid batch some hundreds


class Hooks:
    """The providers' webhooks."""

    def __init__(self, web: Web, verifiers: Mapping[str, providers.Verifier] | None = None) -> None:
        self.web = web
        self.app = web.app
        self.verifiers = providers.configured(self.app.config.inbound) if verifiers is None else verifiers

    def blueprint(self) -> Blueprint:
        """The routes of this area."""
        bp = Blueprint("hooks", __name__)
        bp.add_url_rule("/hooks/<provider>", "hook", self.hook, methods=["POST"])
        return bp

    def hook(self, provider: str) -> Response:
        """Verify, store, process; 200 once stored."""
        verify = self.verifiers.get(provider)
        if verify is None:
            return _text("no such hook\n", 404)
        request.max_content_length = MAX_EVENT
        body = request.get_data(cache=False)
        try:
            events = verify(body, {k.lower(): v for k, v in request.headers.items()}, self.app.clock())
        except providers.Forged as exc:
            log.warning("a %s webhook request was refused (%s) from %s", provider, exc, self.web.client())
            response = _text("refused\n", exc.status)
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = 'Basic realm="syndicate hooks"'
            return response
        receiver = self.app.receiver
        stored = receiver.store_many(provider, [(e.raw, "", [], providers.stored_as(provider, e.key)) for e in events])
        for report_id in stored:
            try:
                receiver.process(report_id)
            except Exception:  # stored: the next tick processes it
                log.exception("%s event stored as report %d could not be processed", provider, report_id)
        if not stored:
            return _text("nothing to store\n", 200)
        return _text("stored as " + ", ".join(f"report {i}" for i in stored) + "\n", 200)


def _text(body: str, status: int) -> Response:
    return Response(body, status, content_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-store"})
