"""``/feeds/<path>``: the feed files as written, with validators for cheap polling and WebSub links.

- Only regular files under ``feeds.dir`` are served: no path out of it, no
  hidden files (the writer's temporary files start with a dot).
- Content types follow the file layout (``atom.xml``, ``rss-3.xml``,
  ``feed.json`` ...), so they cannot drift from what was rendered.
- A strong ``ETag`` (SHA-256 of the bytes) and ``Last-Modified`` (the file's
  time) answer ``If-None-Match`` and ``If-Modified-Since`` with 304; when both
  are sent the entity tag decides (RFC 9110, section 13.2.2).
- ``Link`` headers carry each hub (``rel=hub``) and the file's public URL
  (``rel=self``), as WebSub subscribers discover them.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, Response, abort, request
from werkzeug.security import safe_join

from syndicate.config import Config
from syndicate.render.documents import CONTENT_TYPES
from syndicate.render.layout import ARCHIVE_NAMES, FILE_NAMES


def _name_patterns() -> list[tuple[re.Pattern[str], str]]:
    """(file name pattern, content type) for every file name the feed layout writes."""
    patterns = []
    for fmt, content_type in CONTENT_TYPES.items():
        patterns.append((re.compile(re.escape(FILE_NAMES[fmt])), content_type))
        archive = re.escape(ARCHIVE_NAMES[fmt]).replace(re.escape("{page}"), r"\d+")
        patterns.append((re.compile(archive), content_type))
    return patterns


NAME_PATTERNS = tuple(_name_patterns())


def content_type(name: str) -> str:
    """The media type of a file under ``feeds.dir``, by its name."""
    for pattern, kind in NAME_PATTERNS:
        if pattern.fullmatch(name):
            return kind
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


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
        """One file, or 304 when the client's copy is current."""
        path = self.resolve(name)
        if path is None:
            abort(404)
        # The time and the bytes from one open file: the writer replaces files by renaming, never in place.
        with path.open("rb") as handle:
            modified = datetime.fromtimestamp(os.fstat(handle.fileno()).st_mtime, UTC)
            data = handle.read()
        response = Response(data, content_type=content_type(path.name))
        response.set_etag(hashlib.sha256(data).hexdigest())
        response.last_modified = modified
        response.headers["Cache-Control"] = "public, no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        for hub in self.config.feeds.hubs:
            response.headers.add("Link", f'<{hub}>; rel="hub"')
        response.headers.add("Link", f'<{self.config.feeds_base_url}{quote(name, safe="/")}>; rel="self"')
        response.make_conditional(request)
        return response

    def resolve(self, name: str) -> Path | None:
        """The file ``name`` stands for, if it is a visible regular file inside ``feeds.dir``."""
        joined = safe_join(str(self.root), name)
        if joined is None or "\x00" in name or any(part.startswith(".") for part in Path(name).parts):
            return None
        path = Path(joined)
        try:
            inside = path.resolve().is_relative_to(self.root.resolve())
        except OSError:
            return None
        return path if inside and path.is_file() else None
