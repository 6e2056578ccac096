"""Partner fan-out: 100 partner endpoints on loopback, 10 of which hang until the timeout.

    .venv/bin/python benchmarks/partners.py [--partners 100] [--hanging 10] [--timeout 2] [--rounds 5]

Prints, from one run, the time for the healthy partners (90) to receive an
event when the others hang, beside the same with no partner hanging (the
baseline), and the ratio. Goal: at most 1.5x the baseline.

Each round is a fresh site (SQLite) and a fresh partner farm in its own
process (benchmarks/http_partners.py); one statement is published, planned,
and then the push stage runs. The clock starts as the push stage starts and
stops when the last healthy endpoint has verified (standardwebhooks) and
accepted its push. Rounds alternate between the two cases, and each case
reports its median; the baseline counts the same 90 endpoints.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.http_partners import RemoteFarm, start_farm  # noqa: E402
from syndicate.app import App, build_app  # noqa: E402
from syndicate.config import load  # noqa: E402
from syndicate.pipeline import build, never, tick  # noqa: E402

CONFIG = """
[site]
title = "Benchmark Org"
url = "https://bench.example.org"
timezone = "Europe/Istanbul"
rights = "All rights reserved; quote only with an active link."

[templates]
dir = "{templates}"

[feeds]
formats = ["atom"]
by_language = false
by_category = false

[database]
url = "sqlite:///syndicate.db"
"""
BODY = (
    "The association welcomes the decision of the council. It thanks every member for the work done this "
    "year, and the partners who carried the statement to their readers.\n\n"
    "Delegations from twelve countries took part in the conference, and their work goes on."
)


@dataclass(frozen=True)
class Round:
    """One measured push: when each healthy endpoint got it, and how long the stage ran."""

    healthy_received: float  # seconds from the start of the push stage to the last healthy receipt
    stage: float  # seconds the push stage ran (it waits for the hanging ones to time out)
    counts: dict[str, int]


def partner_tables(farm: RemoteFarm, timeout: float) -> str:
    """One [[partners]] table per endpoint; the secrets go in the environment."""
    tables = []
    for index, (url, secret) in enumerate(zip(farm.urls, farm.secrets, strict=True)):
        variable = f"BENCH_PARTNER_{index}_SECRET"
        os.environ[variable] = secret
        # The farm's receivers take JSON bodies only (tests/servers/http.py), so these partners ask for JSON.
        tables.append(
            f'[[partners]]\nname = "p{index}"\nurl = "{url}"\nsecret_env = "{variable}"\n'
            f'format = "json"\ntimeout_seconds = {timeout}\n'
        )
    return "\n".join(tables)


def site(folder: Path, farm: RemoteFarm, timeout: float) -> App:
    """A fresh site pushing to every endpoint of ``farm``, its planner started."""
    (folder / "statements").mkdir()
    config = CONFIG.format(templates=ROOT / "templates") + "\n" + partner_tables(farm, timeout)
    (folder / "config.toml").write_text(config, encoding="utf-8")
    app = build_app(load(folder / "config.toml"))
    tick(app)  # a new installation: the planner's cursor starts here
    return app


def measure(partners: int, hanging: list[int], watched: list[int], timeout: float) -> Round:
    """Publish one statement to a fresh farm; time the push stage and the healthy receipts."""
    with tempfile.TemporaryDirectory(prefix="syndicate-partners-") as tmp, start_farm(partners, hanging) as farm:
        app = site(Path(tmp), farm, timeout)
        try:
            # Just published: an older statement would be a backfill, which partners are not pushed.
            published = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
            statement = f'+++\ntitle = "Statement"\npublished = {published}\n+++\n\n' + BODY + "\n"
            (Path(tmp) / "statements" / "statement.md").write_text(statement, encoding="utf-8")
            build(app)
            app.stage("plan-partners").run(app.clock(), never)
            started = time.monotonic()
            counts = app.stage("send-webhooks").run(app.clock(), never)
            stage = time.monotonic() - started
            received = farm.received_times()
        finally:
            app.close()
    missing = [i for i in watched if farm.urls[i] not in received]
    if missing:
        raise SystemExit(f"healthy endpoints {missing} never received the push (counts: {counts})")
    return Round(max(received[farm.urls[i]] for i in watched) - started, stage, counts)


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--partners", type=int, default=100, help="endpoints (default 100)")
    parser.add_argument("--hanging", type=int, default=10, help="endpoints that hang (default 10)")
    parser.add_argument("--timeout", type=float, default=2.0, help="partners' timeout_seconds (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each case (default 5)")
    args = parser.parse_args(argv)
    hanging = [i * args.partners // args.hanging for i in range(args.hanging)] if args.hanging else []
    watched = [i for i in range(args.partners) if i not in hanging]
    with_hangs: list[Round] = []
    baseline: list[Round] = []
    for _ in range(args.rounds):
        baseline.append(measure(args.partners, [], watched, args.timeout))
        with_hangs.append(measure(args.partners, hanging, watched, args.timeout))
    report(args, watched, baseline, with_hangs)
    return 0


def report(args: argparse.Namespace, watched: list[int], baseline: list[Round], with_hangs: list[Round]) -> None:
    """Print both cases and their ratio."""
    base = statistics.median(r.healthy_received for r in baseline)
    hung = statistics.median(r.healthy_received for r in with_hangs)
    print(f"partners: {args.partners} endpoints on loopback, timeout {args.timeout:g} s, {args.rounds} rounds each")
    print(f"counts of the last round: baseline {baseline[-1].counts}, with hangs {with_hangs[-1].counts}")
    print(f"{len(watched)} healthy endpoints received the event (median of rounds; all rounds in brackets):")
    print(f"  baseline, none hanging:  {1000 * base:8.1f} ms   {_all(baseline)}")
    print(f"  {args.hanging} hanging:             {1000 * hung:8.1f} ms   {_all(with_hangs)}")
    print(f"  ratio:                   {hung / base:8.2f}x (goal <= 1.5x)")
    stage = statistics.median(r.stage for r in with_hangs)
    print(f"  (the push stage itself ran {stage:.2f} s with hangs: the hanging partners' timeout, in parallel)")


def _all(rounds: list[Round]) -> str:
    return "[" + ", ".join(f"{1000 * r.healthy_received:.0f}" for r in rounds) + "] ms"


if __name__ == "__main__":
    sys.exit(main())
