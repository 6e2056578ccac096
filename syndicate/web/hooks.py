"""``POST /hooks/<provider>``: sending providers' event webhooks (bounces, complaints, unsubscribes).

Only providers whose key is configured are served (``[inbound] mailgun_key_env``);
any other answers 404. A request is verified as its provider signs it before
anything is stored (:func:`syndicate.inbound.providers.verify`); a forged or
stale one is logged and answered 406, which Mailgun takes as "do not retry".
A verified event is stored under its signed token (the same event posted
twice, or a captured signature with another event, is one report) and processed at once; it is answered 200 only
after it is committed, so a provider that saw no 200 posts it again.
"""

from __future__ import annotations

import logging
import os

from flask import Blueprint, Response, request

from syndicate.inbound import providers
from syndicate.web.context import Web

log = logging.getLogger(__name__)

MAX_EVENT = 1_000_000  # bytes: an event is a few kilobytes


class Hooks:
    """The providers' webhooks."""

    def __init__(self, web: Web) -> None:
        self.web = web
        self.app = web.app

    def blueprint(self) -> Blueprint:
        """The routes of this area."""
        bp = Blueprint("hooks", __name__)
        bp.add_url_rule("/hooks/<provider>", "hook", self.hook, methods=["POST"])
        return bp

    def _key(self, provider: str) -> str:
        variable = {"mailgun": self.app.config.inbound.mailgun_key_env}.get(provider, "")
        return os.environ.get(variable, "") if variable else ""

    def hook(self, provider: str) -> Response:
        """Verify, store, process; 200 once stored."""
        key = self._key(provider)
        if provider not in providers.PROVIDERS or not key:
            return _text("no such hook\n", 404)
        body = request.get_data(cache=False)
        if len(body) > MAX_EVENT:
            return _text("too large\n", 413)
        try:
            event_id, _ = providers.verify(provider, body, key, self.app.clock())  # its signed token
        except providers.Forged as exc:
            log.warning("a %s webhook request was refused (%s) from %s", provider, exc, self.web.client())
            return _text("signature refused\n", 406)
        receiver = self.app.receiver
        report_id, _ = receiver.store(body, provider, "", [], digest=f"{provider}:{event_id}")
        try:
            receiver.process(report_id)
        except Exception:  # stored: the next tick processes it
            log.exception(
                "%s event %s is stored as report %d but could not be processed", provider, event_id, report_id
            )
        return _text(f"stored as report {report_id}\n", 200)


def _text(body: str, status: int) -> Response:
    return Response(body, status, content_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-store"})
