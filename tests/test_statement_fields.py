"""A statement's fields are declared once, in the model: the store's columns and the content hash follow them."""

from __future__ import annotations

import types
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_origin

import pytest
from sqlalchemy import JSON, Table

from syndicate.model import Change, Hashed, Revision, State, Statement, field_types, spec, stored_fields
from syndicate.sources.reader import KNOWN_KEYS
from syndicate.store import statements as store
from syndicate.store.db import Database
from syndicate.store.schema import migrate, revisions, statements

# Columns that are the store's own (what ingest decided), not fields of the value kept in the row.
BOOKKEEPING = {
    "statements": {"tag_id", "content_hash", "state", "entry_updated", "revision", "first_seen", "changed_at"},
    "revisions": {"revision", "recorded_at"},
}
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
STATEMENT = Statement(
    id="geneva",
    title="Statement on Geneva",
    published=datetime(2026, 11, 20, 10, 0, tzinfo=timezone(timedelta(hours=3))),
    updated=datetime(2026, 11, 21, 7, 0, tzinfo=UTC),
    lang="tr",
    author="Press Office",
    canonical_url="https://example.org/statements/geneva",
    summary="The association welcomes the decision.",
    body_html="<p>The association welcomes the decision.</p>",
    body_text="The association welcomes the decision.",
    categories=("News", "United Nations"),
    translation_of="cenevre",
    source_ref="geneva.md",
    fingerprint="12:34",
)
# The digest stored for STATEMENT since the first version: every stored hash depends on it staying so.
STATEMENT_HASH = "2fdb9226e81da7e22493531580d8fda55ab7ed85077a65c0abf9004590b04ed8"


@pytest.mark.parametrize(("model", "table"), [(Statement, statements), (Revision, revisions)])
def test_every_stored_field_has_its_column_and_every_column_a_field(model: type, table: Table) -> None:
    fielded = {f.name for f in stored_fields(model)}
    columns = set(table.c.keys())
    assert fielded - columns == set(), f"fields of {model.__name__} with no column in {table.name}"
    assert columns - fielded - BOOKKEEPING[table.name] == set(), f"columns of {table.name} no field declares"
    assert fielded & BOOKKEEPING[table.name] == set()


@pytest.mark.parametrize(("model", "table"), [(Statement, statements), (Revision, revisions)])
def test_each_column_holds_its_fields_type_and_is_nullable_only_for_an_optional_field(
    model: type, table: Table
) -> None:
    for f in stored_fields(model):
        kind, column = field_types(model)[f.name], table.c[f.name]
        optional = isinstance(kind, types.UnionType) and type(None) in kind.__args__
        base = next(a for a in kind.__args__ if a is not type(None)) if optional else kind
        assert column.nullable == optional, f"{table.name}.{f.name}"
        if get_origin(base) is tuple:
            assert isinstance(column.type, JSON), f"{table.name}.{f.name}"
        else:
            assert issubclass(base, column.type.python_type), f"{table.name}.{f.name}"


def test_the_files_source_knows_every_front_matter_field_and_no_other() -> None:
    expected = {"id", "title", "published", "updated", "lang", "author", "summary", "canonical_url"}
    assert set(KNOWN_KEYS) == expected | {"categories", "draft", "retracted", "translation_of"}


def test_the_content_hash_is_the_one_stored_since_the_first_version() -> None:
    assert STATEMENT.content_hash == STATEMENT_HASH


def test_what_is_not_hashed_changes_no_hash_and_what_is_hashed_does() -> None:
    unseen = replace(STATEMENT, id="other", body_text="", source_ref="x.md", fingerprint="", id_line=3)
    assert unseen.content_hash == STATEMENT.content_hash
    for changed in ({"draft": True}, {"updated": None}, {"categories": ()}, {"translation_of": None}):
        assert replace(STATEMENT, **changed).content_hash != STATEMENT.content_hash, changed


@dataclass(frozen=True, kw_only=True)
class WithSubtitle(Statement):
    """A statement as it would be with a front-matter key added later."""

    subtitle: str = field(default="", metadata=spec(front_matter=True, hashed=Hashed.UNLESS_DEFAULT))


def test_a_field_added_later_keeps_every_stored_hash_until_it_is_set() -> None:
    values = {f.name: getattr(STATEMENT, f.name) for f in fields(STATEMENT)}
    assert WithSubtitle(**values).content_hash == STATEMENT_HASH
    assert WithSubtitle(**values, subtitle="In brief").content_hash != STATEMENT_HASH


@pytest.fixture
def db(db_url: str) -> Any:
    found = Database(db_url)
    migrate(found)
    yield found
    found.dispose()


def stored(statement: Statement) -> dict[str, Any]:
    return {**store.row(statement, State.PUBLISHED, NOW), "tag_id": "tag:t", "revision": 1, "first_seen": NOW}


def test_a_statement_and_its_revision_come_back_as_they_were_stored(db: Database) -> None:
    with db.write() as conn:
        store.insert(conn, [{**stored(STATEMENT), "entry_updated": NOW}])
        store.add_revisions(
            conn,
            [store.revision_row(STATEMENT, revision=1, change=Change.PUBLISHED, tag_id="tag:t", updated=NOW, now=NOW)],
        )
    with db.read() as conn:
        (loaded,) = store.load(conn, ["geneva"])
        known = store.index(conn)["geneva"]
        latest = store.latest_revision(conn, "geneva")
        preview = store.as_revision(conn, "geneva")
    assert loaded == STATEMENT
    assert (known.state, known.content_hash, known.entry_updated) == (State.PUBLISHED, STATEMENT_HASH, NOW)
    content = {f.name: getattr(STATEMENT, f.name) for f in stored_fields(Revision) if hasattr(STATEMENT, f.name)}
    expected = Revision(
        **{**content, "updated": NOW}, seq=1, statement_id="geneva", change=Change.PUBLISHED, tag_id="tag:t"
    )
    assert latest == expected
    assert preview == replace(expected, seq=0)
