"""Deliveries per second with one and two worker nodes on PostgreSQL, beside one on SQLite; one run.

    .venv/bin/python benchmarks/scaleout.py [--deliveries 20000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

Each case plans one statement to N subscribers, starts `syndicate run --role
worker` processes against the same database and a lean SMTP sink
(tests/servers/smtp_sink_server.py, its own process), and times the deliveries from the
first to the last one recorded as sent (worker start-up is not counted). The
sink's CPU use is printed beside each case, to show it was not the limit.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the loopback servers: `servers.…`, as the tests import them

import sqlalchemy  # noqa: E402
from servers.smtp_sink import SinkProcess, start_sink  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from syndicate.app import build_app  # noqa: E402
from syndicate.config import load  # noqa: E402
from syndicate.pipeline import tick  # noqa: E402
from syndicate.store import subscribers as subscriber_store  # noqa: E402
from syndicate.store.schema import deliveries  # noqa: E402
from syndicate.subscribers import Frequency, NewSubscriber  # noqa: E402

CONFIG = """
[site]
title = "IMKANDER"
url = "https://www.imkander.org"

[database]
url = "{database}"

[scheduler]
poll_seconds = 1
lease_seconds = 30

[web]
serve_in_run = false

[email]
transport = "smtp"
from_address = "news@imkander.org"
batch = 100

[email.smtp]
host = "127.0.0.1"
port = {port}
connections = 4
"""


def planned_site(root: Path, database: str, port: int, count: int) -> Path:
    """A site whose outbox holds ``count`` email deliveries, due now."""
    (root / "statements").mkdir(parents=True)
    shutil.copytree(ROOT / "templates", root / "templates")
    config_path = root / "config.toml"
    config_path.write_text(CONFIG.format(database=database, port=port), encoding="utf-8")
    app = build_app(load(config_path))
    try:
        tick(app, role="scheduler")
        with app.db.write() as conn:
            people = [
                NewSubscriber(f"r{i}@example.org", ("en",), (), Frequency.IMMEDIATE, True, "bench")
                for i in range(count)
            ]
            subscriber_store.add_many(conn, people, app.clock())
        published = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        body = "The association continues its work with immigrants, war widows and orphans. " * 40
        (root / "statements" / "news.md").write_text(
            f'+++\ntitle = "News"\npublished = {published}\n+++\n\n{body}\n', encoding="utf-8"
        )
        tick(app, role="scheduler")
    finally:
        app.close()
    return config_path


def drain(config_path: Path, workers: int, count: int, timeout: float = 600) -> float:
    """Run ``workers`` worker processes until every delivery is sent; deliveries per second."""
    command = [sys.executable, "-m", "syndicate", "--config", str(config_path), "-q", "run", "--role", "worker"]
    processes = [
        subprocess.Popen(command, cwd=config_path.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    app = build_app(load(config_path))
    try:
        deadline = time.monotonic() + timeout
        while True:
            with app.db.read() as conn:
                sent = conn.execute(select(func.count()).where(deliveries.c.state == "sent")).scalar_one()
                first, last = conn.execute(
                    select(func.min(deliveries.c.finished_at), func.max(deliveries.c.finished_at))
                ).one()
            if sent >= count:
                return count / max((last - first).total_seconds(), 1e-6)
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {sent} of {count} sent in {timeout} s")
            time.sleep(0.2)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
        app.close()


def pg_schema(admin_url: str) -> tuple[str, str]:
    """A fresh schema on the server, and a URL whose search_path is it."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sqlalchemy.create_engine(admin_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine.dispose()
    return schema, f"{admin_url}?options=-csearch_path%3D{schema}"


def drop_schema(admin_url: str, schema: str) -> None:
    engine = sqlalchemy.create_engine(admin_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


def case(name: str, database: str, workers: int, count: int, port: int, sink: SinkProcess) -> tuple[str, float, float]:
    root = Path(tempfile.mkdtemp(prefix="syndicate-scaleout-"))
    try:
        config_path = planned_site(root, database, port, count)
        before = sink.stats()
        rate = drain(config_path, workers, count)
        used = sink.stats().since(before)
        return name, rate, used.cores
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=20_000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    results = []
    with start_sink() as sink:
        sqlite_root = Path(tempfile.mkdtemp(prefix="syndicate-scaleout-sqlite-"))
        try:
            results.append(
                case("SQLite, 1 worker", f"sqlite:///{sqlite_root / 'bench.db'}", 1, args.deliveries, sink.port, sink)
            )
        finally:
            shutil.rmtree(sqlite_root, ignore_errors=True)
        for workers in (1, 2):
            schema, url = pg_schema(args.pg)
            try:
                results.append(case(f"PostgreSQL, {workers} worker(s)", url, workers, args.deliveries, sink.port, sink))
            finally:
                drop_schema(args.pg, schema)
    baseline = results[0][1]
    print(f"deliveries per case: {args.deliveries:,}; 4 SMTP connections per worker; machine cores: 2")
    for name, rate, cores in results:
        print(f"{name:<26} {rate:8,.0f} deliveries/s   {rate / baseline:5.2f}x SQLite/1   sink used {cores:.2f} cores")


if __name__ == "__main__":
    main()
