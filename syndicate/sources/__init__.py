"""Statement sources: where statements come from.

A source is asked to ``scan`` what it holds, given the fingerprints of what
the store already knows (ref -> fingerprint), and answers with a
:class:`~syndicate.model.Scan`: statements read anew, refs unchanged since last
time, and problems. ``files`` reads a folder; ``feed`` reads a CMS's feed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import requests

from syndicate.config import Config
from syndicate.model import Scan


class Source(Protocol):
    """Anything that can say which statements it holds now."""

    def scan(self, known: Mapping[str, str]) -> Scan:
        """Read what changed since ``known`` (ref -> fingerprint); raise SourceError if unreadable."""
        ...

    def display(self, ref: str) -> str:
        """``ref`` as the operator knows it, for reports (a file's path, a feed entry's URL)."""
        ...


def make_source(config: Config, session: requests.Session | None = None) -> Source:
    """The source ``config.source.type`` names."""
    from syndicate.sources.feed import FeedSource
    from syndicate.sources.fetch import FetchLimits
    from syndicate.sources.files import FilesSource
    from syndicate.sources.reader import Reader

    reader = Reader(config.site)
    if config.source.type == "feed":
        limits = FetchLimits.of(config.source)
        return FeedSource(config.source.url, config.site, session or requests.Session(), limits)
    return FilesSource(config.source.path, reader, config.source.max_bytes)
