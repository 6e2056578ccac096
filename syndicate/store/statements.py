"""Statements and their revisions in the store."""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar, get_origin

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection, Row

from syndicate.model import Change, Content, Revision, State, Statement, field_types, stored_fields
from syndicate.store.schema import feed_documents, revisions, statements
from syndicate.text import sanitise_html, xml_clean

# Text columns that came from a source; cleaned as sources clean them now (schema version 5).
# An upgrade does what it did at its version: this list stays as it was, whatever fields come later.
_SOURCE_TEXT = ("title", "author", "canonical_url", "summary", "body_text")
_CLEAN_BATCH = 500
T = TypeVar("T")


@dataclass(frozen=True)
class Known:
    """What the store holds of a statement, enough to decide what a new reading means."""

    id: str
    source_ref: str
    content_hash: str
    state: State
    revision: int
    tag_id: str
    entry_updated: datetime | None


def fingerprints(conn: Connection) -> dict[str, str]:
    """ref -> fingerprint of every statement a source still holds (retracted ones are read again)."""
    query = select(statements.c.source_ref, statements.c.fingerprint).where(statements.c.state != State.RETRACTED)
    return {ref: fingerprint for ref, fingerprint in conn.execute(query)}


def index(conn: Connection) -> dict[str, Known]:
    """Every statement the store knows, by id."""
    cols = [statements.c[f.name] for f in fields(Known)]
    return {row.id: _from_row(Known, row) for row in conn.execute(select(*cols))}


def load(conn: Connection, ids: Iterable[str]) -> list[Statement]:
    """Full statements for ``ids``, as last read."""
    wanted = list(ids)
    if not wanted:
        return []
    rows = conn.execute(select(statements).where(statements.c.id.in_(wanted)))
    return [_from_row(Statement, row) for row in rows]


def due_embargoes(conn: Connection, now: datetime) -> list[str]:
    """Ids of scheduled statements whose time has come."""
    query = select(statements.c.id).where(statements.c.state == State.SCHEDULED, statements.c.published <= now)
    return list(conn.scalars(query))


def embargo_times(conn: Connection) -> list[datetime]:
    """Every future publication time, for the daemon's one-off jobs."""
    query = select(statements.c.published).where(statements.c.state == State.SCHEDULED).distinct()
    return sorted(conn.scalars(query))


def counts_by_state(conn: Connection) -> dict[str, int]:
    """How many statements stand in each state (every state listed, zeros included)."""
    counts = {state.value: 0 for state in State}
    for state, count in conn.execute(select(statements.c.state, func.count()).group_by(statements.c.state)):
        counts[state] = count
    return counts


def insert(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Add new statements (rows as made by :func:`row`)."""
    if rows:
        conn.execute(statements.insert(), list(rows))


def update_many(conn: Connection, changes: Mapping[str, dict[str, Any]]) -> None:
    """Change many stored statements (id -> columns): one executemany per set of columns changed."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for statement_id, values in changes.items():
        groups[tuple(sorted(values))].append({"_id": statement_id, **values})
    for columns, rows in groups.items():
        query = statements.update().where(statements.c.id == bindparam("_id"))
        conn.execute(query.values({name: bindparam(name) for name in columns}), rows)


def delete(conn: Connection, ids: Iterable[str]) -> None:
    """Forget statements that never reached the public."""
    wanted = list(ids)
    if wanted:
        conn.execute(statements.delete().where(statements.c.id.in_(wanted)))


def row(statement: Statement, state: State, now: datetime) -> dict[str, Any]:
    """The columns a statement is stored as (everything a later reading is compared with)."""
    return {**_columns(statement), "content_hash": statement.content_hash, "state": state.value, "changed_at": now}


def revision_row(
    statement: Statement, *, revision: int, change: Change, tag_id: str, updated: datetime, now: datetime
) -> dict[str, Any]:
    """The columns of the revision ``change`` makes: the statement's content, frozen, and the change."""
    return {
        **_columns(statement, Content),
        "statement_id": statement.id,
        "revision": revision,
        "change": change.value,
        "recorded_at": now,
        "tag_id": tag_id,
        "updated": updated,
    }


def _columns(value: Any, shape: type | None = None) -> dict[str, Any]:
    """The stored fields of dataclass ``value`` (those of ``shape``, one of its bases, if given) as column values."""
    return {f.name: _to_column(getattr(value, f.name)) for f in stored_fields(shape or type(value))}


def _from_row(cls: type[T], r: Row[Any], **given: Any) -> T:
    """A ``cls`` made from a stored row: each stored field from the column of its name, unless ``given``."""
    types = field_types(cls)
    read = {f.name: _from_column(types[f.name])(getattr(r, f.name)) for f in stored_fields(cls) if f.name not in given}
    return cls(**read, **given)


def _to_column(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    return list(value) if isinstance(value, tuple) else value


def _from_column(kind: Any) -> Callable[[Any], Any]:
    """What turns a column value back into a field of type ``kind``: JSON lists into tuples, text into enums."""
    if get_origin(kind) is tuple:
        return tuple
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind
    return _as_is


def _as_is(value: Any) -> Any:
    return value


def add_revisions(conn: Connection, new: Sequence[dict[str, Any]]) -> None:
    """Append revisions in the order given; their ``seq`` follows that order."""
    if new:
        conn.execute(revisions.insert(), list(new))


def revision_heads(conn: Connection) -> list[Row[Any]]:
    """(seq, statement_id, change, lang, categories) of every revision, oldest first: what feeds are cut from."""
    cols = (revisions.c.seq, revisions.c.statement_id, revisions.c.change, revisions.c.lang, revisions.c.categories)
    return list(conn.execute(select(*cols).order_by(revisions.c.seq)))


def load_revisions(conn: Connection, seqs: Iterable[int]) -> dict[int, Revision]:
    """Full revisions by seq."""
    wanted = sorted(set(seqs))
    found: dict[int, Revision] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for r in conn.execute(select(revisions).where(revisions.c.seq.in_(chunk))):
            found[r.seq] = revision_from_row(r)
    return found


def revisions_since(conn: Connection, seq: int, limit: int = 1000) -> list[Revision]:
    """Revisions after ``seq``, oldest first, for planners that follow the record."""
    query = select(revisions).where(revisions.c.seq > seq).order_by(revisions.c.seq).limit(limit)
    return [revision_from_row(r) for r in conn.execute(query)]


def revision_from_row(r: Row[Any]) -> Revision:
    """A stored revision as a value."""
    return _from_row(Revision, r)


def newest_published(conn: Connection, limit: int, offset: int = 0) -> list[Revision]:
    """The newest revision of each statement still published, newest publication first (a page of them)."""
    newest = select(func.max(revisions.c.seq)).group_by(revisions.c.statement_id).scalar_subquery()
    query = (
        select(revisions)
        .where(revisions.c.seq.in_(newest), revisions.c.change != Change.RETRACTED.value)
        .order_by(revisions.c.published.desc(), revisions.c.statement_id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [revision_from_row(r) for r in conn.execute(query)]


def published_count(conn: Connection) -> int:
    """How many statements are published now (their newest revision is no retraction)."""
    newest = select(func.max(revisions.c.seq)).group_by(revisions.c.statement_id).scalar_subquery()
    query = select(func.count()).where(revisions.c.seq.in_(newest), revisions.c.change != Change.RETRACTED.value)
    return int(conn.execute(query).scalar_one())


def last_seq(conn: Connection) -> int:
    """The seq of the newest revision (0 when there is none)."""
    return int(conn.execute(select(func.coalesce(func.max(revisions.c.seq), 0))).scalar_one())


def latest_revision(conn: Connection, statement_id: str) -> Revision | None:
    """The newest revision of a statement, if it ever reached the public."""
    query = select(revisions).where(revisions.c.statement_id == statement_id).order_by(revisions.c.seq.desc()).limit(1)
    row = conn.execute(query).first()
    return revision_from_row(row) if row else None


def as_revision(conn: Connection, statement_id: str) -> Revision | None:
    """The statement as a revision would show it now, even if it is not published yet (for previews)."""
    row = conn.execute(select(statements).where(statements.c.id == statement_id)).first()
    if row is None:
        return None
    updated = row.entry_updated or row.updated or row.published
    return _from_row(Revision, row, seq=0, statement_id=row.id, change=Change.PUBLISHED, updated=updated)


def clean_stored_text(conn: Connection) -> None:
    """Clean what entered before sources cleaned text: what XML cannot carry, HTML off the allow-list.

    A character XML cannot carry, kept in a revision, failed every build that
    rendered it, even after its file was fixed; a script kept there went into
    every feed. Both tables are cleaned as a source cleans what it reads now,
    and a statement's content hash is made again from its clean text, so a
    file read later as it was makes no update. Every feed document is then
    rendered once more, archive pages included.
    """
    for table, key in ((revisions, revisions.c.seq), (statements, statements.c.id)):
        after: Any = None
        while rows := conn.execute(_page(table, key, after)).all():
            after = getattr(rows[-1], key.name)
            for row in rows:
                if changes := _cleaned(row, table is statements):
                    conn.execute(table.update().where(key == getattr(row, key.name)).values(**changes))
    conn.execute(feed_documents.delete())


def _page(table: Any, key: Any, after: Any) -> Any:
    query = select(table).order_by(key).limit(_CLEAN_BATCH)
    return query if after is None else query.where(key > after)


def _cleaned(row: Row[Any], is_statement: bool) -> dict[str, Any]:
    """The columns of ``row`` that cleaning changes, with their clean values (and the new content hash)."""
    clean: dict[str, Any] = {name: xml_clean(getattr(row, name))[0] for name in _SOURCE_TEXT}
    clean["body_html"] = sanitise_html(row.body_html)[0]
    clean["categories"] = [xml_clean(str(c))[0] for c in row.categories]
    changes = {name: value for name, value in clean.items() if value != getattr(row, name)}
    if changes and is_statement:
        state = State(row.state)
        clean_fields = {**changes, "categories": tuple(clean["categories"])}
        flags = {"draft": state == State.DRAFT, "retracted": state == State.RETRACTED}
        # A field added after version 5 has no column yet when this runs: it stands at its default (unhashed).
        later = {f.name: f.default for f in stored_fields(Statement) if f.name not in row._fields}
        read = _from_row(Statement, row, **clean_fields, **flags, **later)
        changes["content_hash"] = read.content_hash
    return changes
