"""What a partner's licence allows of a revision: every field of every payload is made from it.

A ``full`` licence allows the revision as published. An ``excerpt`` licence
allows the first ``excerpt_words`` words of each field that carries the
statement's text (its HTML, its plain text and its summary, which may be a
whole paragraph of its own), each cut as :mod:`syndicate.render.excerpt` cuts.
The title, the names and the links are the statement's identity, not its
text, and go as they are.

The payload renderers are handed the allowed revision, never the original, so
a field added to a payload later is within the licence without a word here.
"""

from __future__ import annotations

from dataclasses import replace

from syndicate.config import PartnerConfig
from syndicate.model import Revision
from syndicate.render.excerpt import excerpt, excerpt_text


def allowed(revision: Revision, partner: PartnerConfig) -> Revision:
    """The revision as ``partner`` may have it: whole for a full licence, each text field cut for an excerpt."""
    return allowed_as(revision, partner.license, partner.excerpt_words)


def allowed_as(revision: Revision, licence: str, words: int) -> Revision:
    """The revision under ``licence`` ("full", or "excerpt" of ``words`` words in each text field)."""
    if licence == "full":
        return revision
    return replace(
        revision,
        body_html=excerpt(revision.body_html, words),
        body_text=excerpt_text(revision.body_text, words),
        summary=excerpt_text(revision.summary, words),
    )
