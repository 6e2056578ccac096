"""Preferences: what a subscriber receives (languages, categories, frequency), and unsubscribing from there.

The link in every newsletter is the authority (it never expires); the form
carries a token bound to that link, and a post the browser marks cross-site is
refused. Nothing changes on GET.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request

from syndicate.store import subscribers as store
from syndicate.store.subscribers import Subscriber
from syndicate.web import forms
from syndicate.web.catalog import BadChoice, Catalog, catalog, read_choice
from syndicate.web.context import Web
from syndicate.web.links import LinkError
from syndicate.web.unsubscribe import unsubscribe

log = logging.getLogger(__name__)

FORM = "preferences"


class PreferencesPages:
    """``/preferences/<token>``."""

    def __init__(self, web: Web) -> None:
        self.web = web
        self.app = web.app

    def blueprint(self) -> Blueprint:
        """The routes of this area."""
        bp = Blueprint("preferences", __name__)
        bp.add_url_rule("/preferences/<token>", "page", self.page, methods=["GET"])
        bp.add_url_rule("/preferences/<token>", "submit", self.submit, methods=["POST"])
        return bp

    def page(self, token: str) -> Response:
        """The form, filled in with what the subscriber receives now."""
        try:
            subscriber = self.web.links.subscriber(token, "preferences")
        except LinkError as exc:
            return self.web.pages.notice(self.web.pages.language(), f"link_{exc.kind}", exc.status)
        return self._form(self.web.pages.language(subscriber.languages), subscriber, token, 200)

    def submit(self, token: str) -> Response:
        """Save the choices, or unsubscribe (the form's second button)."""
        try:
            subscriber = self.web.links.subscriber(token, "preferences")
        except LinkError as exc:
            return self.web.pages.notice(self.web.pages.language(), f"link_{exc.kind}", exc.status)
        lang = self.web.pages.language(subscriber.languages)
        if forms.cross_site(request.headers.get("Sec-Fetch-Site")) or not self.web.guard.valid(
            FORM, token, request.form.get(forms.FIELD, "")
        ):
            return self._form(lang, subscriber, token, 403, error="form_expired")
        if request.form.get("action") == "unsubscribe":
            unsubscribe(self.web, subscriber, "the preferences page")
            site = self.app.config.site.title
            return self.web.pages.notice(lang, "unsubscribed", email=subscriber.email, site=site)
        return self._save(lang, subscriber, token)

    def _save(self, lang: str, subscriber: Subscriber, token: str) -> Response:
        try:
            choice = read_choice(request.form, self._catalog(subscriber), None)
        except BadChoice as exc:
            return self._form(lang, subscriber, token, 400, error=exc.key)
        now = self.app.clock()
        with self.app.db.write() as conn:
            store.update_preferences(
                conn, subscriber.id, choice.languages, choice.categories, choice.frequency.value, now
            )
            saved = store.by_id(conn, subscriber.id)
        log.info("subscriber %d changed their preferences", subscriber.id)
        return self._form(lang, saved or subscriber, token, 200, saved=True)

    def _form(
        self, lang: str, subscriber: Subscriber, token: str, status: int, error: str | None = None, saved: bool = False
    ) -> Response:
        return self.web.pages.render(
            "preferences.html",
            lang,
            status,
            subscriber=subscriber,
            catalog=self._catalog(subscriber),
            chosen_languages=subscriber.languages,
            chosen_categories=subscriber.categories,
            chosen_frequency=subscriber.frequency,
            error=error,
            saved=saved,
            form_token=self.web.guard.issue(FORM, token),
        )

    def _catalog(self, subscriber: Subscriber) -> Catalog:
        with self.app.db.read() as conn:
            offered = catalog(conn, self.app.config.site.language)
        return offered.widened(subscriber.languages, subscriber.categories)
