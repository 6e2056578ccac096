"""``/feeds/<path>``: the feed files as written, with validators for cheap polling and WebSub links.

- Only what the feed layout writes is served: ``atom.xml``, ``rss.xml``,
  ``feed.json`` and their archive pages (``archive/atom-3.xml`` ...), in the
  site's folder, ``lang/<tag>/`` or ``category/<slug>/``. Any other name is
  404 without a look at the disk, so a ``feeds.dir`` that holds the database,
  ``config.toml`` or the statements (``"."``) gives none of them away. The
  file must be a regular one inside the folder (no link out of it).
- Content types follow the same names, so they cannot drift from what was
  rendered.
- A strong ``ETag`` and ``Last-Modified`` answer conditional requests with
  304 (web/files.py, shared with the site's pages).
- ``Link`` headers carry each hub (``rel=hub``) and the file's public URL
  (``rel=self``), as WebSub subscribers discover them.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, Response, abort

from syndicate.config import LANGUAGE_TAG, Config
from syndicate.render.documents import CONTENT_TYPES
from syndicate.render.layout import ARCHIVE_NAMES, FILE_NAMES
from syndicate.web.files import file_response, resolve

# The folders the layout writes (render/layout.py, FeedSpec and _FeedIndex): the site's own (""),
# "lang/<tag>" and "category/<slug>", each with its archive pages in "archive/". A slug is what
# text.slugify makes: word characters and hyphens, never a dot.
_FOLDER = r"(?:lang/(?P<lang>[^/]+)/|category/(?P<slug>[\w-]+)/)?"
SHAPES = {
    "subscription": re.compile(_FOLDER + r"(?P<file>[^/]+)"),
    "archive": re.compile(_FOLDER + r"archive/(?P<file>[^/]+)"),
}


def _name_patterns() -> dict[str, list[tuple[re.Pattern[str], str]]]:
    """(file name pattern, content type) of every file name the layout writes, by kind of document."""
    page = re.escape("{page}")
    return {
        "subscription": [(re.compile(re.escape(FILE_NAMES[fmt])), kind) for fmt, kind in CONTENT_TYPES.items()],
        "archive": [
            (re.compile(re.escape(ARCHIVE_NAMES[fmt]).replace(page, "[1-9][0-9]*")), kind)
            for fmt, kind in CONTENT_TYPES.items()
        ],
    }


NAME_PATTERNS = _name_patterns()


def content_type(path: str) -> str | None:
    """The media type of ``path`` (under ``feeds.dir``) if the feed layout writes such a path; None if not."""
    for document, shape in SHAPES.items():
        found = shape.fullmatch(path)
        if found is None or (found["lang"] is not None and not LANGUAGE_TAG.match(found["lang"])):
            continue
        for pattern, kind in NAME_PATTERNS[document]:
            if pattern.fullmatch(found["file"]):
                return kind
    return None


class FeedFiles:
    """Serves the files under ``feeds.dir``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.root = config.feeds.dir

    def blueprint(self) -> Blueprint:
        """The routes of this area."""
        bp = Blueprint("feeds", __name__)
        bp.add_url_rule("/feeds/<path:name>", "file", self.serve, methods=["GET"])
        return bp

    def serve(self, name: str) -> Response:
        """One file the feed layout writes, or 304 when the client's copy is current."""
        kind = content_type(name)  # the name first: nothing else in the folder is looked at
        path = self.resolve(name) if kind else None
        if path is None or kind is None:
            abort(404)
        response = file_response(path, kind)
        for hub in self.config.feeds.hubs:
            response.headers.add("Link", f'<{hub}>; rel="hub"')
        response.headers.add("Link", f'<{self.config.feeds_base_url}{quote(name, safe="/")}>; rel="self"')
        return response

    def resolve(self, name: str) -> Path | None:
        """The file ``name`` stands for, if it is a visible regular file inside ``feeds.dir``."""
        return resolve(self.root, name)
