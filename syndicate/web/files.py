"""Serving a file the renderers wrote: found safely inside its folder, sent with the validators for polling.

Feeds and the site's pages are written by renaming a whole new file over the
old one, so the bytes and the time read from one open file always belong
together. A strong ``ETag`` (SHA-256 of the bytes) and ``Last-Modified`` (the
file's time) answer ``If-None-Match`` and ``If-Modified-Since`` with 304; when
both are sent the entity tag decides (RFC 9110, section 13.2.2).
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

from flask import Response, request
from werkzeug.security import safe_join


def resolve(root: Path, name: str) -> Path | None:
    """The file ``name`` stands for, if it is a visible regular file inside ``root`` (no link out of it)."""
    joined = safe_join(str(root), name)
    if joined is None or "\x00" in name or any(part.startswith(".") for part in Path(name).parts):
        return None
    path = Path(joined)
    try:
        return path if path.resolve().is_relative_to(root.resolve()) and path.is_file() else None
    except OSError:  # a name too long for the file system, among others
        return None


def file_response(path: Path, content_type: str, status: int = 200) -> Response:
    """The file's bytes with their validators; a 200 becomes 304 when the client's copy is current."""
    with path.open("rb") as handle:
        modified = datetime.fromtimestamp(os.fstat(handle.fileno()).st_mtime, UTC)
        data = handle.read()
    response = Response(data, status, content_type=content_type)
    response.set_etag(hashlib.sha256(data).hexdigest())
    response.last_modified = modified
    response.headers["Cache-Control"] = "public, no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if status == 200:
        response.make_conditional(request)
    return response
