"""Hearing back: 10,000 queued delivery status notifications processed, beside parsing them alone.

    .venv/bin/python benchmarks/inbound.py [--reports 10000] [--rounds 2]

A site mails one edition to --reports subscribers (file transport, SQLite),
each message with its signed return path. Then one report per delivery is
written as the receiving side writes it (tests/inbound_reports.py: Postfix,
Exim, Microsoft and Gmail DSNs, hard and soft, and a few ARF complaints and
auto-replies), stored raw in the inbound table (as the listener does), and
processed by the one processing path: classify, find the delivery by its
return path, act (suppress, count a soft bounce, unsubscribe), record.

Printed in the same run:
  (a) parsing alone: email.message_from_bytes (compat32) over the same reports;
  (b) syndicate: processing the stored reports, reports per second.
Each round measures (a) then (b) back to back; on a shared machine the median of the
rounds' ratios is the steadier figure, and the best of each is printed beside it.
Goal: (b) >= 50% of (a). A DSN is read from its machine-readable part alone (its
second part), so syndicate can take a report faster than parsing it whole.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the report builders, as the tests use them

from inbound_reports import arf_complaint, exim_dsn, gmail_dsn, microsoft_ndr, out_of_office, postfix_dsn  # noqa: E402
from sqlalchemy import select  # noqa: E402

from syndicate.app import build_app  # noqa: E402
from syndicate.config import load  # noqa: E402
from syndicate.pipeline import tick  # noqa: E402
from syndicate.store import subscribers as subscriber_store  # noqa: E402
from syndicate.store.schema import deliveries, subscribers  # noqa: E402
from syndicate.subscribers import Frequency, NewSubscriber  # noqa: E402

CONFIG = """
[site]
title = "IMKANDER"
url = "https://www.imkander.org"
timezone = "Europe/Istanbul"
rights = "All rights reserved; quote only with an active link."

[email]
transport = "file"
from_address = "news@imkander.org"
return_path = "bounces@bounces.imkander.org"
batch = 500
"""


def make_site(root: Path, count: int) -> Path:
    """A site that mailed one edition to ``count`` subscribers."""
    (root / "statements").mkdir(parents=True)
    shutil.copytree(ROOT / "templates", root / "templates")
    config_path = root / "config.toml"
    config_path.write_text(CONFIG, encoding="utf-8")
    app = build_app(load(config_path))
    try:
        tick(app)
        with app.db.write() as conn:
            people = [
                NewSubscriber(f"reader{i}@receiver.test", ("en",), (), Frequency.IMMEDIATE, True, "benchmark")
                for i in range(count)
            ]
            subscriber_store.add_many(conn, people, app.clock())
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        text = f'+++\ntitle = "News"\npublished = {now}\n+++\n\nBody.\n'
        (root / "statements" / "news.md").write_text(text, encoding="utf-8")
        tick(app)
    finally:
        app.close()
    return config_path


def reports(config_path: Path) -> list[tuple[bytes, str]]:
    """One report per delivery, in the common formats, each to its return path."""
    app = build_app(load(config_path))
    try:
        with app.db.read() as conn:
            rows = conn.execute(
                select(deliveries.c.id, subscribers.c.email).join(
                    subscribers, deliveries.c.target == subscribers.c.id.cast(deliveries.c.target.type)
                )
            ).all()
        return_path = app.email_composer.return_path
        assert return_path is not None
        made = []
        for n, (delivery, address) in enumerate(rows):
            path = return_path.sender(delivery)
            kind = n % 20
            if kind < 5:
                raw = postfix_dsn(path, address, delivery)
            elif kind < 9:
                raw = postfix_dsn(path, address, delivery, status="4.2.2", action="delayed",
                                  diagnostic="smtp; 452 4.2.2 Mailbox full")  # fmt: skip
            elif kind < 12:
                raw = exim_dsn(path, address, delivery)
            elif kind < 15:
                raw = microsoft_ndr(path, address, delivery)
            elif kind < 18:
                raw = gmail_dsn(path, address, delivery, "4.2.2", "delayed")
            elif kind < 19:
                raw = arf_complaint(path, address, delivery)
            else:
                raw = out_of_office(path, address)
            made.append((raw, path))
        return made
    finally:
        app.close()


def parse_alone(made: list[tuple[bytes, str]]) -> float:
    began = time.perf_counter()
    for raw, _ in made:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        for _part in message.walk():
            pass
    return len(made) / (time.perf_counter() - began)


def process(config_path: Path, made: list[tuple[bytes, str]]) -> tuple[float, Counter[str]]:
    app = build_app(load(config_path))
    try:
        receiver = app.receiver
        for raw, path in made:
            receiver.store(raw, "smtp", "", [path])
        began = time.perf_counter()
        done = receiver.process_waiting()
        seconds = time.perf_counter() - began
        with app.db.read() as conn:
            kinds = Counter(s.status.value for s in subscriber_store.iterate(conn))
        assert done["processed"] == len(made), done
        return len(made) / seconds, kinds
    finally:
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2, help="each case measured this many times, in turn")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # a line per suppressed address is the operator's, not the benchmark's
    parsed, processed = [], []
    kinds: Counter[str] = Counter()
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as folder:
            config_path = make_site(Path(folder) / "site", args.reports)
            made = reports(config_path)
            parsed.append(parse_alone(made))
            rate, kinds = process(config_path, made)
            processed.append(rate)
    a, b = max(parsed), max(processed)
    paired = sorted(y / x for x, y in zip(parsed, processed, strict=True))  # each round's (a) and (b), back to back
    print(f"reports: {args.reports:,}; {args.rounds} rounds; subscribers after: {dict(kinds)}")
    print(f"(a) parsing alone (email package):     {a:8,.0f} reports/s   {[round(x) for x in parsed]}")
    print(f"(b) syndicate (classify, match, act):   {b:8,.0f} reports/s   {[round(x) for x in processed]}")
    print(f"(b)/(a), best of each = {b / a:5.0%}; per round {[f'{r:.0%}' for r in paired]},"
          f" median {statistics.median(paired):.0%} (goal >= 50%)")  # fmt: skip


if __name__ == "__main__":
    main()
