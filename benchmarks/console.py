"""The console's API at scale: 200,000 subscribers and 2,000,000 deliveries, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/console.py [--subscribers 200000] [--deliveries 2000000] [--calls 20]
                                           [--engines sqlite,postgresql] [--pg postgresql+psycopg://...]

A database is filled as a year of a busy list leaves it: subscribers who
joined over 365 days (confirmed an hour later, one in ten unsubscribed
since), one edition a day mailed to up to 100,000 of them (most deliveries
sent, some failed or unknown, settled over the minutes after), a few
thousand bounces and complaints. The tick's rollup stage then counts what
settled (timed: it runs once over the whole outbox, then a little each tick).

Printed in the same run, per engine: the baseline, one ``SELECT COUNT(*)``
over the deliveries (the median of 5), and p50 and p95 of ``--calls`` calls
of each dashboard API operation through the web app with a bearer token.
Goal: every operation's p95 below that one count, and below 250 ms.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from syndicate.app import build_app  # noqa: E402
from syndicate.config import load  # noqa: E402
from syndicate.console.accounts import Accounts  # noqa: E402
from syndicate.outbox.rollups import Rollup  # noqa: E402
from syndicate.store.schema import deliveries, inbound, subscribers  # noqa: E402
from syndicate.web import create_app  # noqa: E402

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CALLS = [
    "/api/v1/overview",
    "/api/v1/subscribers/daily?days=30",
    "/api/v1/deliveries/hourly?hours=48",
    "/api/v1/editions?newest=10",
    "/api/v1/partners",
    "/api/v1/machinery",
    "/api/v1/deliveries?state=failed&limit=100",
    "/api/v1/deliveries/unknown/preview",
    "/api/v1/audit?limit=100",
]
CONFIG = """
[site]
title = "IMKANDER"
url = "https://www.imkander.org"
timezone = "Europe/Istanbul"

[database]
url = "{url}"

[email]
transport = "file"
from_address = "news@imkander.org"
"""
CHUNK = 20_000


def fill(engine: sqlalchemy.Engine, people: int, count: int) -> None:
    """Subscribers over a year, an edition a day to up to 100,000 of them, and some reports back."""
    with engine.begin() as conn:
        rows = []
        for n in range(1, people + 1):
            joined = NOW - timedelta(days=365 * n / people)
            rows.append({
                "id": n, "email": f"reader{n}@example.org", "status": "unsubscribed" if n % 10 == 0 else "active",
                "languages": ",en,", "categories": "", "frequency": "immediate", "consent_at": joined,
                "consent_method": "benchmark", "created_at": joined, "confirmed_at": joined + timedelta(hours=1),
                "unsubscribed_at": joined + timedelta(days=30) if n % 10 == 0 else None, "changed_at": joined,
            })  # fmt: skip
            if len(rows) == CHUNK:
                conn.execute(subscribers.insert(), rows)
                rows = []
        if rows:
            conn.execute(subscribers.insert(), rows)
    per_edition = min(100_000, people)
    editions = -(-count // per_edition)
    made = 0
    for edition in range(1, editions + 1):
        sent_at = NOW - timedelta(days=editions - edition, minutes=30)  # each run settled within 17 minutes
        rows = []
        with engine.begin() as conn:
            for n in range(min(per_edition, count - made)):
                state = "failed" if n % 500 == 1 else "unknown" if n % 2000 == 3 else "sent"
                finished = sent_at + timedelta(seconds=n / 100)
                rows.append({
                    "channel": "email", "source_kind": "edition", "source_id": edition, "target": str(n + 1),
                    "state": state, "attempts": 1, "due_at": sent_at, "created_at": sent_at, "finished_at": finished,
                    "last_error": "550 5.7.1 refused" if state == "failed" else None,
                })  # fmt: skip
                if len(rows) == CHUNK:
                    conn.execute(deliveries.insert(), rows)
                    rows = []
            if rows:
                conn.execute(deliveries.insert(), rows)
        made += per_edition
    with engine.begin() as conn:
        query = sqlalchemy.select(deliveries.c.id).where(deliveries.c.id % 400 == 7)
        ids = [int(i) for i in conn.execute(query).scalars()]
        reports = [{"digest": uuid.uuid4().hex, "source": "smtp", "received_at": NOW, "envelope_from": "",
                    "envelope_to": "", "kind": ("hard", "soft", "complaint")[i % 3], "delivery_id": i,
                    "processed_at": NOW} for i in ids]  # fmt: skip
        for start in range(0, len(reports), CHUNK):
            conn.execute(inbound.insert(), reports[start : start + CHUNK])


def measure(name: str, url: str, people: int, count: int, calls: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="syndicate-console-"))
    try:
        (folder / "statements").mkdir()
        shutil.copytree(ROOT / "templates", folder / "templates")
        (folder / "config.toml").write_text(CONFIG.format(url=url), encoding="utf-8")
        app = build_app(load(folder / "config.toml"), clock=lambda: NOW)
        began = time.perf_counter()
        fill(app.db.engine, people, count)
        filled = time.perf_counter() - began
        began = time.perf_counter()
        Rollup(app.db).run(NOW, lambda: False)
        rolled = time.perf_counter() - began
        with app.db.engine.connect() as conn:
            total = conn.execute(sqlalchemy.text("SELECT COUNT(*) FROM deliveries")).scalar_one()
            if app.db.engine.dialect.name == "postgresql":
                conn.exec_driver_sql("ANALYZE")
            counts = []
            for _ in range(5):
                began = time.perf_counter()
                conn.execute(sqlalchemy.text("SELECT COUNT(*) FROM deliveries")).scalar_one()
                counts.append(time.perf_counter() - began)
        baseline = statistics.median(counts)
        _, token = Accounts(app.db, app.config.admin, app.clock).create_token("benchmark", "viewer")
        client = create_app(app).test_client()
        headers = {"Authorization": f"Bearer {token}"}
        print(f"\n{name}: {people:,} subscribers, {total:,} deliveries (filled in {filled:.0f} s; "
              f"first rollup over all of them {rolled:.1f} s)")  # fmt: skip
        print(f"  baseline: one SELECT COUNT(*) over the deliveries  {baseline * 1000:8.1f} ms (median of 5)")
        worst = 0.0
        for path in CALLS:
            times = []
            for _ in range(calls):
                began = time.perf_counter()
                answer = client.get(path, headers=headers)
                times.append(time.perf_counter() - began)
                assert answer.status_code == 200, (path, answer.status_code, answer.get_data(as_text=True)[:200])
            times.sort()
            p50, p95 = statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]
            worst = max(worst, p95)
            print(f"  {path:44} p50 {p50 * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms  ({p95 / baseline:5.2f}x the count)")
        verdict = "met" if worst < baseline and worst < 0.25 else "NOT met"
        print(
            f"  worst p95 {worst * 1000:.1f} ms = {worst / baseline:.2f}x the count: goal (< 1x and < 250 ms) {verdict}"
        )
        app.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=200_000)
    parser.add_argument("--deliveries", type=int, default=2_000_000)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for engine in args.engines.split(","):
        if engine == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                measure("SQLite", f"sqlite:///{folder}/syndicate.db", args.subscribers, args.deliveries, args.calls)
        else:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            admin = sqlalchemy.create_engine(args.pg)
            with admin.begin() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            try:
                url = f"{args.pg}?options=-csearch_path%3D{schema}"
                measure("PostgreSQL", url, args.subscribers, args.deliveries, args.calls)
            finally:
                with admin.begin() as conn:
                    conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
                admin.dispose()


if __name__ == "__main__":
    main()
