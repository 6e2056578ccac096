"""Unsubscribe: a page with one button, and RFC 8058 one-click from mail providers.

``GET /unsubscribe/<token>`` changes nothing (mail scanners open links before
people do); it shows the button. ``POST /unsubscribe/<token>`` unsubscribes,
at once, answering 200 without a redirect. It takes two kinds of post:

- RFC 8058 one-click: body ``List-Unsubscribe=One-Click`` (form-urlencoded or
  multipart), no cookies, no form token. The signed link is the authority:
  RFC 8058 makes whoever holds the List-Unsubscribe URL able to use it, and
  only the recipient (and their provider) holds it.
- the page's own button: carries a form token bound to the link's token, so a
  post that is neither one-click nor from our page is refused (400) and
  changes nothing. Against cross-site forgery the token in the URL is the real
  protection (another site cannot know it); the form token adds that the post
  came from a page we served for that link.

Bounced and complained subscribers keep their status (they stay suppressed).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request, url_for

from syndicate.outbox import table as outbox_table
from syndicate.store import inbound as inbound_store
from syndicate.store import subscribers as store
from syndicate.store.subscribers import Subscriber
from syndicate.subscribers import Status
from syndicate.web import forms
from syndicate.web.context import Web
from syndicate.web.links import LinkError

log = logging.getLogger(__name__)

FORM = "unsubscribe"
ONE_CLICK = "List-Unsubscribe=One-Click"


class UnsubscribePages:
    """``/unsubscribe/<token>``."""

    def __init__(self, web: Web) -> None:
        self.web = web

    def blueprint(self) -> Blueprint:
        """The routes of this area."""
        bp = Blueprint("unsubscribe", __name__)
        bp.add_url_rule("/unsubscribe/<token>", "page", self.page, methods=["GET"])
        bp.add_url_rule("/unsubscribe/<token>", "submit", self.submit, methods=["POST"])
        return bp

    def page(self, token: str) -> Response:
        """The button (or the news that there is nothing left to do)."""
        try:
            subscriber = self.web.links.subscriber(token, "unsubscribe")
        except LinkError as exc:
            return self.web.pages.notice(self.web.pages.language(), f"link_{exc.kind}", exc.status)
        lang = self.web.pages.language(subscriber.languages)
        if subscriber.status == Status.UNSUBSCRIBED:
            return self._done(lang, subscriber)
        return self._button(lang, subscriber, token, 200, error=None)

    def submit(self, token: str) -> Response:
        """Unsubscribe now: RFC 8058 one-click, or the page's button."""
        try:
            subscriber = self.web.links.subscriber(token, "unsubscribe")
        except LinkError as exc:
            return self.web.pages.notice(self.web.pages.language(), f"link_{exc.kind}", exc.status)
        lang = self.web.pages.language(subscriber.languages)
        one_click = is_one_click()
        if not one_click and not self.web.guard.valid(FORM, token, request.form.get(forms.FIELD, "")):
            return self._button(lang, subscriber, token, 400, error="form_expired")
        unsubscribe(self.web, subscriber, "one-click" if one_click else "the unsubscribe page")
        return self._done(lang, subscriber)

    def _button(self, lang: str, subscriber: Subscriber, token: str, status: int, error: str | None) -> Response:
        return self.web.pages.render(
            "unsubscribe.html",
            lang,
            status,
            email=subscriber.email,
            error=error,
            form_token=self.web.guard.issue(FORM, token),
        )

    def _done(self, lang: str, subscriber: Subscriber) -> Response:
        site = self.web.app.config.site.title
        again = (url_for("subscribe.form", lang=lang), "subscribe_nav")
        return self.web.pages.notice(lang, "unsubscribed", link=again, email=subscriber.email, site=site)


def is_one_click() -> bool:
    """Whether the request is an RFC 8058 one-click post (either body encoding; lenient on the type)."""
    if request.form.get("List-Unsubscribe") == "One-Click":
        return True
    return request.get_data(cache=True, as_text=True).strip() == ONE_CLICK


def unsubscribe(web: Web, subscriber: Subscriber, how: str) -> None:
    """Stop all mail to ``subscriber`` now (pending deliveries are cancelled when their turn comes)."""
    if subscriber.status not in (Status.ACTIVE, Status.PENDING):
        return
    now = web.app.clock()
    with web.app.db.write() as conn:
        store.set_status(conn, subscriber.id, Status.UNSUBSCRIBED, now)
        change = {"subscriber_id": subscriber.id, "status": Status.UNSUBSCRIBED.value, "cause": f"unsubscribed through {how}",
                  "report_id": None, "delivery_id": outbox_table.newest_mail_to(conn, subscriber.id), "at": now}  # fmt: skip
        inbound_store.change_many(conn, [change])
    log.info("subscriber %d unsubscribed through %s", subscriber.id, how)
