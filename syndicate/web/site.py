"""The site's pages as written under ``site.dir``: the same bytes a static host would serve, with validators.

- Only what the site's layout writes is served (render/site/layout.py): the
  indexes and their archive pages, ``statements/<id>``, ``newsletters/...``,
  ``sitemap.xml`` and ``robots.txt``; any other name is 404 without a look at
  the disk, so a ``site.dir`` that holds anything else gives none of it away.
- ``/statements/<id>`` and ``/statements/<id>/`` are the same page, as a
  static host serves a folder's ``index.html``.
- Only a page the build wrote (and recorded) is served: a file that merely
  has a page's name (a statement's source, in a ``site.dir`` shared with the
  statements) is 404. A page the build marked gone (a retracted statement's
  notice) is served with 410; a statement whose minute has not come has no
  page yet: 404.
- A strong ``ETag`` and ``Last-Modified`` answer conditional requests with
  304, as for the feeds (web/files.py).
- ``[site] pages = false`` registers none of these routes.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort

from syndicate.app import App
from syndicate.store import site as site_store
from syndicate.web.files import file_response, resolve

_PAGE = r"(?:page/[1-9][0-9]*/)?index\.html"
SHAPES = (
    (re.compile(r"(?:(?:lang/[A-Za-z0-9-]+|category/[\w-]+|newsletters)/)?" + _PAGE), "text/html; charset=utf-8"),
    (re.compile(r"statements/[\w][\w.-]*/index\.html"), "text/html; charset=utf-8"),
    (re.compile(r"newsletters/[0-9]+/index\.html"), "text/html; charset=utf-8"),
    (re.compile(r"sitemap\.xml"), "application/xml"),
    (re.compile(r"robots\.txt"), "text/plain; charset=utf-8"),
)
# Statement bodies may show pictures from anywhere; nothing on the pages runs.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
    "form-action 'self'; frame-ancestors 'self'; base-uri 'none'"
)
FOLDERS = ("page", "lang", "category", "statements", "newsletters")
STATEMENT = re.compile(r"statements/(?P<id>[\w][\w.-]*)/?")
MAX_NAME = 1000  # longer than any path the layout writes


def file_of(name: str) -> tuple[str, str] | None:
    """(path under ``site.dir``, content type) for a request path, if the layout writes such a page."""
    if len(name) > MAX_NAME:
        return None
    statement = STATEMENT.fullmatch(name)
    if statement:  # an id may end in ".html" or ".txt": a statement's path is always its folder
        path = f"statements/{statement['id']}/index.html"
    elif name.endswith((".html", ".xml", ".txt")):
        path = name
    else:
        path = name.rstrip("/") + "/index.html"
    if path == "/index.html":
        path = "index.html"
    for shape, kind in SHAPES:
        if shape.fullmatch(path):
            return path, kind
    return None


class SitePages:
    """Serves the files under ``site.dir`` at their paths under ``site.url``."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.root = app.config.site.dir
        self.prefix = urlsplit(app.config.site.url).path.rstrip("/")

    def blueprint(self) -> Blueprint:
        """The routes of this area: the site's front page and each folder the layout writes."""
        bp = Blueprint("site", __name__)
        bp.add_url_rule(f"{self.prefix}/", "front", self.serve, defaults={"name": ""}, methods=["GET"],
                        strict_slashes=False)  # fmt: skip
        for name in ("sitemap.xml", "robots.txt"):
            bp.add_url_rule(f"{self.prefix}/{name}", name.replace(".", "_"), self.serve, defaults={"name": name},
                            methods=["GET"])  # fmt: skip
        for folder in FOLDERS:
            serve = self._in(folder)
            bp.add_url_rule(
                f"{self.prefix}/{folder}/", folder, serve, defaults={"rest": ""}, methods=["GET"], strict_slashes=False
            )  # no redirect: it would be built from the Host header
            bp.add_url_rule(f"{self.prefix}/{folder}/<path:rest>", f"{folder}_page", serve, methods=["GET"])
        return bp

    def _in(self, folder: str):  # type: ignore[no-untyped-def]
        def serve(rest: str) -> Response:
            return self.serve(f"{folder}/{rest}")

        serve.__name__ = f"serve_{folder}"
        return serve

    def serve(self, name: str) -> Response:
        """One page the layout writes, 410 for a withdrawn one, or 304 when the client's copy is current."""
        found = file_of(name)
        path = resolve(self.root, found[0]) if found else None
        if found is None or path is None:
            abort(404)
        relative, kind = found
        with self.app.db.read() as conn:  # only what the build wrote: not a file that merely looks like a page
            status = site_store.status_of(conn, relative)
        if status is None:
            abort(404)
        response = file_response(path, kind, status)
        if kind.startswith("text/html"):
            response.headers["Content-Security-Policy"] = PAGE_CSP
            response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        return response
