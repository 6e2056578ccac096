"""The values that flow through the pipeline: statements, revisions, problems, what the site is cut from."""

from __future__ import annotations

import enum
import functools
import hashlib
import json
from dataclasses import Field, dataclass, field, fields
from datetime import datetime
from typing import Any, get_type_hints


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


class Hashed(enum.Enum):
    """Whether a field is part of a statement's content hash, so that a change to it is an update."""

    NO = "no"
    # The fields hashed from the start: in the digest even at their default.
    ALWAYS = "always"
    # A field added since: left out of the digest at its default, so every hash stored before still matches.
    UNLESS_DEFAULT = "unless default"


@dataclass(frozen=True)
class FieldSpec:
    """How one field of a statement is set, hashed and stored (kept in the field's metadata)."""

    front_matter: bool = False
    hashed: Hashed = Hashed.NO
    stored: bool = True


def spec(*, front_matter: bool = False, hashed: Hashed = Hashed.NO, stored: bool = True) -> dict[str, FieldSpec]:
    """Field metadata: whether a file's front matter sets it (by its name), hashes it, stores it as a column."""
    return {"spec": FieldSpec(front_matter, hashed, stored)}


def spec_of(f: Field[Any]) -> FieldSpec:
    """The spec of a field; one declared without a spec is stored, unhashed, and no front-matter key."""
    found: FieldSpec = f.metadata.get("spec", FieldSpec())
    return found


def stored_fields(cls: type) -> tuple[Field[Any], ...]:
    """The fields of dataclass ``cls`` the store keeps, each as the column of the same name."""
    return tuple(f for f in fields(cls) if spec_of(f).stored)


def front_matter_fields() -> tuple[Field[Any], ...]:
    """The fields a statement file's front matter sets, each under its own name."""
    return tuple(f for f in fields(Statement) if spec_of(f).front_matter)


def field_types(cls: type) -> dict[str, Any]:
    """The type of each field of dataclass ``cls``, evaluated (``tuple[str, ...]``, ``datetime | None``)."""
    return _type_hints(cls)


# Evaluating the annotations of a class is not cheap, and rows are read by the thousand.
_type_hints = functools.cache(get_type_hints)


_KEY = spec(front_matter=True, hashed=Hashed.ALWAYS)


# Every field is declared once, here: the store's columns, the content hash and the front-matter
# keys are all derived from these declarations (a test checks each stored field has its column).
@dataclass(frozen=True, kw_only=True)
class Content:
    """What a reader sees of a statement; a revision freezes it as it was."""

    title: str = field(metadata=_KEY)
    published: datetime = field(metadata=_KEY)
    lang: str = field(metadata=_KEY)
    author: str = field(metadata=_KEY)
    canonical_url: str = field(metadata=_KEY)
    summary: str = field(metadata=_KEY)
    body_html: str = field(metadata=spec(hashed=Hashed.ALWAYS))
    # Written from the source with the HTML; a change to it alone is no update.
    body_text: str
    categories: tuple[str, ...] = field(default=(), metadata=_KEY)


@dataclass(frozen=True, kw_only=True)
class Statement(Content):
    """One statement as a source read it: what it says and how it is to be published."""

    id: str = field(metadata=spec(front_matter=True))
    updated: datetime | None = field(default=None, metadata=_KEY)
    # Kept as the statement's state, not as columns of their own.
    draft: bool = field(default=False, metadata=spec(front_matter=True, hashed=Hashed.ALWAYS, stored=False))
    retracted: bool = field(default=False, metadata=spec(front_matter=True, hashed=Hashed.ALWAYS, stored=False))
    translation_of: str | None = field(default=None, metadata=_KEY)
    source_ref: str = ""
    fingerprint: str = ""
    # Where the id was read, for messages only.
    id_line: int | None = field(default=None, metadata=spec(stored=False))

    def state(self, now: datetime) -> State:
        """Where this statement stands at ``now``."""
        if self.retracted:
            return State.RETRACTED
        if self.draft:
            return State.DRAFT
        return State.SCHEDULED if self.published > now else State.PUBLISHED

    @property
    def content_hash(self) -> str:
        """Digest of every hashed field (what a reader can see); a change of it is an update."""
        visible = {f.name: _plain(getattr(self, f.name)) for f in fields(self) if self._hashes(f)}
        encoded = json.dumps(visible, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(encoded).hexdigest()

    def _hashes(self, f: Field[Any]) -> bool:
        hashed = spec_of(f).hashed
        return hashed is Hashed.ALWAYS or (hashed is Hashed.UNLESS_DEFAULT and getattr(self, f.name) != f.default)


def _plain(value: Any) -> Any:
    """A field's value as the content hash has always encoded it in JSON."""
    if isinstance(value, datetime):
        return value.isoformat()
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True, kw_only=True)
class Revision(Content):
    """One change to the public record, frozen as it was: feeds and partners render these."""

    seq: int
    statement_id: str
    change: Change
    tag_id: str
    # When the change really happened, as feeds show it (not the statement's declared ``updated``).
    updated: datetime


@dataclass(frozen=True)
class RevisionHead:
    """The newest revision of one statement, as the site's layout needs it."""

    seq: int
    statement_id: str
    change: str
    lang: str
    categories: tuple[str, ...]
    published: datetime
    translation_of: str | None = None

    @property
    def gone(self) -> bool:
        """Retracted (or removed from its source): it leaves every index, and its page says so."""
        return self.change == Change.RETRACTED


@dataclass(frozen=True)
class MailedEdition:
    """An edition that went out to at least one subscriber, as the newsletter archive lists it."""

    id: int
    kind: str
    lang: str
    statement_id: str | None
    subject: str
    created_at: datetime
    holds: tuple[str, ...] | None = ()  # the statements a digest carries; None: not recorded (before schema 10)

    @property
    def statements(self) -> tuple[str, ...]:
        """Every statement the edition carries."""
        return (self.statement_id,) if self.statement_id else (self.holds or ())


@dataclass(frozen=True)
class RemoteActor:
    """What syndicate keeps of another server's actor (a follower's, or one whose activity it checks)."""

    id: str
    inbox: str
    shared_inbox: str | None
    key_id: str
    public_pem: str

    @property
    def delivers_to(self) -> str:
        """The inbox a delivery for this actor goes to: its server's shared inbox if it has one."""
        return self.shared_inbox or self.inbox


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
