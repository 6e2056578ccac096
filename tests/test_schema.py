"""The schema is versioned and upgraded in place: every older version becomes the newest, on both engines."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import inspect

from syndicate.errors import StoreError
from syndicate.store.db import Database
from syndicate.store.schema import VERSION, current_version, meta, metadata, migrate, tables_at


def shape(db: Database) -> dict[str, tuple[list[tuple[str, str]], set[str]]]:
    """Every table's columns (name, type) and index names, as the database reports them."""
    with db.read() as conn:
        found = inspect(conn)
        return {
            name: (
                [(c["name"], str(c["type"])) for c in found.get_columns(name)],
                {i["name"] for i in found.get_indexes(name)},
            )
            for name in found.get_table_names()
        }


@pytest.fixture
def fresh(tmp_path, db_url):
    db = Database(db_url)
    yield db
    db.dispose()


@pytest.mark.parametrize("version", range(1, VERSION))
def test_an_older_database_is_upgraded_to_the_same_schema_as_a_new_one(fresh, tmp_path, version):
    with fresh.write() as conn:
        for table in tables_at(version):
            table.create(conn)
        conn.execute(meta.insert().values(key="schema_version", value=str(version)))
    assert migrate(fresh) == version
    with fresh.read() as conn:
        assert current_version(conn) == VERSION
    upgraded = shape(fresh)
    reference = Database(f"sqlite:///{tmp_path / 'reference.db'}")
    try:
        migrate(reference)
        expected = shape(reference)
    finally:
        reference.dispose()
    assert set(upgraded) == set(expected) == set(metadata.tables)
    for name, (columns, _) in expected.items():
        assert [c for c, _ in upgraded[name][0]] == [c for c, _ in columns], name


def test_migrating_twice_changes_nothing(fresh):
    assert migrate(fresh) == 0
    before = shape(fresh)
    assert migrate(fresh) == VERSION
    assert shape(fresh) == before


def test_a_database_newer_than_this_syndicate_is_refused_with_a_clear_error(fresh):
    migrate(fresh)
    with fresh.write() as conn:
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(VERSION + 1)))
    with pytest.raises(StoreError, match=f"schema version {VERSION + 1}.*upgrade syndicate"):
        migrate(fresh)


def test_two_processes_starting_together_upgrade_once(fresh, db_url):
    errors: list[BaseException] = []

    def start() -> None:
        db = Database(db_url)
        try:
            migrate(db)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with fresh.read() as conn:
        assert current_version(conn) == VERSION
