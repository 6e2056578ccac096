"""Subscribe and confirm: the double opt-in.

``POST /subscribe`` checks the form token, the rate limits and the fields, then
stores the request as it came: one insert into ``subscribe_requests``, the
same for every address, reading nothing about it. So neither the answer (the
same page whether the address is new, pending, active, unsubscribed or
suppressed) nor its time tells anybody who is on the list. The next tick acts
on the request (``syndicate.plan.confirmations``): a new or unsubscribed
address becomes pending and is sent a confirmation mail, a pending one is
renewed, the others are left as they are.

``GET /confirm/<token>`` activates on GET. Mail scanners that open links do
confirm the subscription then; that is accepted, because only someone who can
read the mailbox holds the link, which is what double opt-in proves.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request, url_for
from werkzeug.datastructures import MultiDict

from syndicate.store import subscribers as store
from syndicate.store.subscribers import SubscribeRequest
from syndicate.subscribers import Frequency, InvalidSubscriber, NewSubscriber, Status, normalise_email
from syndicate.web import forms
from syndicate.web.catalog import BadChoice, Catalog, Choice, catalog, read_choice
from syndicate.web.context import Web
from syndicate.web.limits import minutes
from syndicate.web.links import LinkError

log = logging.getLogger(__name__)

FORM = "subscribe"


class SubscribePages:
    """``/subscribe`` and ``/confirm/<token>``."""

    def __init__(self, web: Web) -> None:
        self.web = web
        self.app = web.app

    def blueprint(self) -> Blueprint:
        """The routes of this area."""
        bp = Blueprint("subscribe", __name__)
        if not self.app.config.site_at_root:  # the site's pages, when served, have "/" for their front page
            bp.add_url_rule("/", "home", self.form, methods=["GET"])
        bp.add_url_rule("/subscribe", "form", self.form, methods=["GET"])
        bp.add_url_rule("/subscribe", "submit", self.submit, methods=["POST"])
        bp.add_url_rule("/confirm/<token>", "confirm", self.confirm, methods=["GET"])
        return bp

    def form(self) -> Response:
        """The empty form."""
        return self._form(self.web.pages.language(), 200, errors=(), values=MultiDict())

    def submit(self) -> Response:
        """Store the request for the next tick; the same answer, and the same work, for every address."""
        lang = self.web.pages.language()
        wait = self.web.limits.client_wait(self.web.client())
        if wait:
            return self._too_many(lang, wait)
        if not self._form_is_ours():
            return self._form(lang, 403, errors=("form_expired",), values=request.form)
        offered = self._catalog()
        try:
            email = normalise_email(request.form.get("email", ""))
            choice = read_choice(request.form, offered, lang if lang in offered.languages else None)
        except InvalidSubscriber:
            return self._form(lang, 400, errors=("bad_email",), values=request.form)
        except BadChoice as exc:
            return self._form(lang, 400, errors=(exc.key,), values=request.form)
        wait = self.web.limits.address_wait(email)
        if wait:
            return self._too_many(lang, wait)
        self._record(email, choice, lang)
        return self.web.pages.notice(lang, "check_mail", email=email)

    def confirm(self, token: str) -> Response:
        """Activate a pending subscriber from the link in the confirmation mail."""
        try:
            subscriber = self.web.links.subscriber(token, "confirm")
        except LinkError as exc:
            return self.web.pages.notice(self.web.pages.language(), f"link_{exc.kind}", exc.status)
        lang = self.web.pages.language(subscriber.languages)
        site = self.app.config.site.title
        signed = self.web.links.sign("preferences", subscriber)
        preferences = (url_for("preferences.page", token=signed), "change_preferences")
        if subscriber.status == Status.ACTIVE:
            return self.web.pages.notice(lang, "already_confirmed", link=preferences, email=subscriber.email, site=site)
        if subscriber.status != Status.PENDING:
            return self.web.pages.notice(lang, "confirm_stale", 409)
        with self.app.db.write() as conn:
            store.set_status(conn, subscriber.id, Status.ACTIVE, self.app.clock())
        log.info("subscriber %d confirmed", subscriber.id)
        return self.web.pages.notice(lang, "confirmed", link=preferences, email=subscriber.email, site=site)

    # -- helpers --

    def _form(self, lang: str, status: int, errors: tuple[str, ...], values: MultiDict[str, str]) -> Response:
        """The form (again, with ``values`` and ``errors`` after a failed post), and its cookie if it is new."""
        binding = request.cookies.get(forms.COOKIE)
        fresh = binding is None or not forms.looks_like_binding(binding)
        if fresh or binding is None:
            binding = forms.new_binding()
        offered = self._catalog()
        response = self.web.pages.render(
            "subscribe.html",
            lang,
            status,
            catalog=offered,
            errors=errors,
            email=values.get("email", ""),
            chosen_languages=values.getlist("languages") or [lang],
            chosen_categories=values.getlist("categories"),
            chosen_frequency=values.get("frequency", Frequency.IMMEDIATE.value),
            form_token=self.web.guard.issue(FORM, binding),
        )
        if fresh:
            secure = self.app.config.web_base_url.startswith("https:")
            response.set_cookie(forms.COOKIE, binding, httponly=True, samesite="Strict", secure=secure)
        return response

    def _form_is_ours(self) -> bool:
        if forms.cross_site(request.headers.get("Sec-Fetch-Site")):
            return False
        binding = request.cookies.get(forms.COOKIE, "")
        return self.web.guard.valid(FORM, binding, request.form.get(forms.FIELD, ""))

    def _catalog(self) -> Catalog:
        with self.app.db.read() as conn:
            return catalog(conn, self.app.config.site.language)

    def _too_many(self, lang: str, wait: float) -> Response:
        response = self.web.pages.notice(lang, "too_many", 429, minutes=minutes(wait))
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response

    def _record(self, email: str, choice: Choice, lang: str) -> None:
        """Store the request for the next tick: the same insert whoever asks (see the module docstring)."""
        consent = f"web form (client {self.web.client()})"
        mail_lang = lang if lang in choice.languages else choice.languages[0]
        wanted = NewSubscriber(
            email, choice.languages, choice.categories, choice.frequency, False, consent, self.app.clock()
        )
        with self.app.db.write() as conn:
            store.add_request(conn, SubscribeRequest(wanted, mail_lang))
        log.info("subscribe request from the web form stored for the next tick")
