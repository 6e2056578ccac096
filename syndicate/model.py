"""The values that flow through the pipeline: statements, revisions, problems."""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime


class State(enum.StrEnum):
    """Where a statement stands, as ``status`` shows it."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    PUBLISHED = "published"
    RETRACTED = "retracted"


class Change(enum.StrEnum):
    """What a revision did to the public record; partners get one event per revision."""

    PUBLISHED = "published"
    UPDATED = "updated"
    RETRACTED = "retracted"


class Severity(enum.StrEnum):
    """An error skips the input; a warning lets it through, changed or as is."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """Something wrong with one input, said so the operator can find and fix it."""

    path: str
    message: str
    line: int | None = None
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity}: {self.message}"


@dataclass(frozen=True)
class Statement:
    """One statement as a source read it: what it says and how it is to be published."""

    id: str
    title: str
    published: datetime
    lang: str
    author: str
    canonical_url: str
    body_html: str
    body_text: str
    summary: str
    categories: tuple[str, ...] = ()
    updated: datetime | None = None
    draft: bool = False
    retracted: bool = False
    translation_of: str | None = None
    source_ref: str = ""
    fingerprint: str = ""
    id_line: int | None = None

    def state(self, now: datetime) -> State:
        """Where this statement stands at ``now``."""
        if self.retracted:
            return State.RETRACTED
        if self.draft:
            return State.DRAFT
        return State.SCHEDULED if self.published > now else State.PUBLISHED

    @property
    def content_hash(self) -> str:
        """Digest of everything a reader can see; a change of it is an update."""
        visible = {
            "title": self.title,
            "published": self.published.isoformat(),
            "updated": self.updated.isoformat() if self.updated else None,
            "lang": self.lang,
            "author": self.author,
            "canonical_url": self.canonical_url,
            "body_html": self.body_html,
            "summary": self.summary,
            "categories": list(self.categories),
            "draft": self.draft,
            "retracted": self.retracted,
            "translation_of": self.translation_of,
        }
        encoded = json.dumps(visible, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(encoded).hexdigest()


@dataclass(frozen=True)
class Revision:
    """One change to the public record, frozen as it was: feeds and partners render these."""

    seq: int
    statement_id: str
    change: Change
    tag_id: str
    title: str
    published: datetime
    updated: datetime
    lang: str
    author: str
    canonical_url: str
    summary: str
    body_html: str
    body_text: str
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scan:
    """What a source found: statements it read, and problems with the rest.

    ``complete`` says the source saw everything it holds, so a statement it no
    longer has was removed (a folder); a feed shows only its newest items, so
    absence there means nothing. ``unreadable`` refs are still there but did
    not parse this time: their last good state stands.
    """

    statements: list[Statement] = field(default_factory=list)
    unchanged: set[str] = field(default_factory=set)
    unreadable: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    complete: bool = True
