"""Strict, offline validators for the feeds syndicate publishes.

Each takes the raw document bytes and returns a list of human-readable
problems; an empty list means the document is valid.

- ``validate_atom``: Atom 1.0 (RFC 4287; Feed and Entry Documents), with the
  RFC 5005 and RFC 6721 extensions. RELAX NG grammar in ``atom.rnc``.
- ``validate_rss``: RSS 2.0 per the RSS 2.0.11 specification (rssboard.org).
- ``validate_json_feed``: JSON Feed 1.1. JSON Schema in
  ``jsonfeed-1.1.schema.json``.
"""

from .atom import validate_atom
from .jsonfeed import validate_json_feed
from .rss import validate_rss

__all__ = ["validate_atom", "validate_json_feed", "validate_rss"]
