"""A database that cannot be reached or written is one line naming its setting; looking never writes.

Real failures: a port nobody listens on, a PostgreSQL role whose transactions
are read-only, a database at an older schema version.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy
from click.testing import CliRunner
from conftest import PG_URL, ROOT, Site
from sqlalchemy import inspect, select

from syndicate.cli import main
from syndicate.store.db import Database
from syndicate.store.schema import VERSION, meta, metadata, tables_at


def run(site: Site, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(site.root / "config.toml"), *args], env=env)
    return result.exit_code, result.output


def schema_version(url: str) -> str | None:
    db = Database(url)
    try:
        with db.read() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    finally:
        db.dispose()


@pytest.mark.parametrize("command", ["once", "build", "status", "subscribers"])
def test_an_unreachable_database_is_one_line_naming_its_setting_without_the_password(sqlite_site, command):
    sqlite_site.db_url = "postgresql+psycopg://bob:s3cret@127.0.0.1:1/nodb"  # nothing listens on port 1
    sqlite_site.config()
    args = [command, "list"] if command == "subscribers" else [command]
    code, output = run(sqlite_site, *args)
    assert code == 1
    assert output.startswith(
        "Error: database.url: the database postgresql+psycopg://bob:***@127.0.0.1:1/nodb cannot be used:"
    )
    assert "Connection refused" in output or "connection failed" in output
    assert "s3cret" not in output and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1


def test_the_url_from_the_environment_is_named_by_its_key(sqlite_site, monkeypatch):
    monkeypatch.setenv("SYNDICATE_DATABASE_URL", "postgresql+psycopg://bob:s3cret@127.0.0.1:1/nodb")
    text = sqlite_site.config_text().replace(f'url = "{sqlite_site.db_url}"', 'url_env = "SYNDICATE_DATABASE_URL"')
    (sqlite_site.root / "config.toml").write_text(text, encoding="utf-8")
    code, output = run(sqlite_site, "once")
    assert code == 1
    assert output.startswith("Error: database.url_env: the database postgresql+psycopg://bob:***@")
    assert "s3cret" not in output


def test_status_reads_an_older_database_without_upgrading_it(site):
    site.config()
    assert run(site, "once")[0] == 0
    db = Database(site.db_url)
    try:
        with db.write() as conn:  # as the version before left it
            for table in set(metadata.sorted_tables) - set(tables_at(VERSION - 1)):
                table.drop(conn)
            conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(VERSION - 1)))
    finally:
        db.dispose()
    code, output = run(site, "status")
    assert code == 1
    assert f"is at schema version {VERSION - 1}, this syndicate uses {VERSION}" in output
    assert "run `syndicate once`" in output
    assert schema_version(site.db_url) == str(VERSION - 1)  # looked at, not upgraded
    assert run(site, "once")[0] == 0
    assert schema_version(site.db_url) == str(VERSION)


def test_a_version_7_database_gains_the_delivery_each_subscriber_change_followed(site):
    site.config()
    assert run(site, "once")[0] == 0
    db = Database(site.db_url)
    try:
        with db.write() as conn:  # as version 7 left it: changes without their delivery, none of the later tables
            for table in set(metadata.sorted_tables) - set(tables_at(7)):
                table.drop(conn)
            conn.exec_driver_sql("ALTER TABLE subscriber_changes DROP COLUMN delivery_id")
            conn.execute(meta.update().where(meta.c.key == "schema_version").values(value="7"))
            conn.exec_driver_sql(
                "INSERT INTO subscriber_changes (subscriber_id, status, cause, at) VALUES (1, 'bounced', 'kept', '2026-11-01 00:00:00')"
            )
    finally:
        db.dispose()
    assert run(site, "once")[0] == 0
    assert schema_version(site.db_url) == str(VERSION)
    db = Database(site.db_url)
    try:
        with db.read() as conn:
            assert "delivery_id" in {c["name"] for c in inspect(conn).get_columns("subscriber_changes")}
            assert conn.exec_driver_sql("SELECT cause, delivery_id FROM subscriber_changes").all() == [("kept", None)]
    finally:
        db.dispose()


def test_status_before_any_database_exists_creates_none(sqlite_site):
    sqlite_site.config()
    code, output = run(sqlite_site, "status")
    assert code == 1 and "does not exist yet: run `syndicate once` first" in output
    assert not (sqlite_site.root / "syndicate.db").exists()


@pytest.fixture
def read_only_role(pg_url: str) -> Iterator[str]:
    """A PostgreSQL role that may read the test schema and whose every transaction is read-only."""
    role = f"ro_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(PG_URL)
    schema = pg_url.rsplit("%3D", 1)[1]
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f"ALTER ROLE {role} SET default_transaction_read_only = on")
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.exec_driver_sql(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role}")
    yield pg_url.replace("postgres@", f"{role}@", 1)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP OWNED BY {role}")
        conn.exec_driver_sql(f"DROP ROLE {role}")
    admin.dispose()


@pytest.mark.postgres
def test_a_read_only_database_still_answers_status_and_refuses_writes_in_one_line(
    tmp_path, pg_url, read_only_role, clock
):
    site = Site(tmp_path, pg_url, clock)
    (tmp_path / "statements").mkdir()
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    site.statement("a.md", "A", "2026-11-20T10:00:00+03:00")
    site.config()
    assert run(site, "once")[0] == 0  # the owner made the schema
    site.db_url = read_only_role
    site.config()
    code, output = run(site, "status")
    assert code == 0, output
    assert "statements: 1 published" in output
    site.statement("b.md", "B", "2026-11-21T10:00:00+03:00")
    code, output = run(site, "once")
    assert code == 1
    assert output.startswith("Error: database.url: the database postgresql+psycopg://ro_")
    assert "read-only transaction" in output and "Traceback" not in output
