"""Rendering pages in the shared layout: the language, the feed autodiscovery links, the safety headers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import Response, render_template, request

from syndicate.config import Config
from syndicate.render.documents import CONTENT_TYPES
from syndicate.render.layout import FILE_NAMES
from syndicate.web import i18n

# What ``syndicate check`` should find in ``templates/web/`` (the pages fail without them).
REQUIRED_TEMPLATES = tuple(
    f"web/{name}"
    for name in (
        "layout.html",
        "style.css",
        "choices.html",
        "errors.html",
        "subscribe.html",
        "notice.html",
        "unsubscribe.html",
        "preferences.html",
        *(
            f"admin/{name}"
            for name in (
                "base.html",
                "login.html",
                "dashboard.html",
                "deliveries.html",
                "audit.html",
                "confirm.html",
                "done.html",
                "notice.html",
                "action_form.html",
                "preview.html",
            )
        ),
    )
)

FORMAT_NAMES = {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}

# Pages carry signed links in their URLs: no Referer may take them elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class FeedLink:
    """One ``<link rel="alternate">`` of a page."""

    href: str
    type: str
    title: str


class Pages:
    """Renders ``templates/web/*.html`` for the current request."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def language(self, preferred: Sequence[str] = (), *, from_form: bool = True) -> str:
        """The language of this request's page (``?lang=``, a form's ``lang``, the subscriber's, the browser's)."""
        explicit = request.args.get("lang") or (request.form.get("lang") if from_form else None)
        return i18n.choose(explicit, preferred, request.accept_languages, self.config.site.language)

    def render(self, template: str, lang: str, status: int = 200, **context: Any) -> Response:
        """``web/<template>`` in ``lang``, inside the layout."""
        words = i18n.Words(lang)
        html = render_template(
            f"web/{template}",
            lang=lang,
            _=words,
            site=self.config.site,
            feeds=self.feed_links(lang),
            switch=[(tag, i18n.language_name(tag)) for tag in i18n.spoken()],
            language_name=i18n.language_name,
            **context,
        )
        response = Response(html, status=status, content_type="text/html; charset=utf-8")
        response.headers.update(SECURITY_HEADERS)
        return response

    def notice(
        self, lang: str, key: str, status: int = 200, link: tuple[str, str] | None = None, **values: Any
    ) -> Response:
        """A page that says one thing: strings ``<key>_title`` and ``<key>_body``."""
        return self.render("notice.html", lang, status, key=key, values=values, link=link)

    def feed_links(self, lang: str) -> list[FeedLink]:
        """The site's feeds in every format, and the feeds in ``lang`` where there are some."""
        base = self.config.feeds_base_url
        title = self.config.site.title
        links = [
            FeedLink(base + FILE_NAMES[fmt], CONTENT_TYPES[fmt], f"{title} ({FORMAT_NAMES[fmt]})")
            for fmt in self.config.feeds.formats
        ]
        if self.config.feeds.by_language and (self.config.feeds.dir / "lang" / lang).is_dir():
            name = i18n.language_name(lang)
            links += [
                FeedLink(
                    f"{base}lang/{lang}/{FILE_NAMES[fmt]}", CONTENT_TYPES[fmt], f"{title}: {name} ({FORMAT_NAMES[fmt]})"
                )
                for fmt in self.config.feeds.formats
            ]
        return links
