"""`syndicate run` as a real process: embargoes lift on the minute, signals stop it cleanly.

These tests use the real clock (the daemon is another process), with short,
bounded waits; they measure nothing and assert no timings.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest

DAEMON_CONFIG = """
[scheduler]
poll_seconds = 3600
lease_seconds = 6

[web]
serve_in_run = false
"""


def start(site, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "syndicate", "--config", str(site.root / "config.toml"), *args]
    return subprocess.Popen(command, cwd=site.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def stop(process: subprocess.Popen[str], how: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
    process.send_signal(how)
    _, err = process.communicate(timeout=30)
    return process.returncode, err


def titles(site) -> list[str]:
    path = site.feeds / "atom.xml"
    return [e.title for e in feedparser.parse(path.read_bytes()).entries] if path.exists() else []


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


@pytest.mark.slow
def test_an_embargoed_statement_appears_at_its_time_not_at_the_next_poll(sqlite_site):
    site = sqlite_site
    site.extra = DAEMON_CONFIG
    site.config()
    now = datetime.now(UTC).replace(microsecond=0)
    site.statement("old.md", "Already out", iso(now - timedelta(days=1)))
    site.statement("embargoed.md", "Out at its minute", iso(now + timedelta(seconds=4)))
    daemon = start(site, "run")
    try:
        wait_for(lambda: titles(site) == ["Already out"], 20, "the first tick")
        assert "Out at its minute" not in titles(site)
        # The next poll is an hour away: only the one-off job at the embargo time can publish it.
        wait_for(lambda: "Out at its minute" in titles(site), 30, "the embargo to lift")
    finally:
        code, log = stop(daemon)
    assert code == 0, log
    assert "embargo: a tick is scheduled at" in log
    assert "published statement embargoed" in log


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_daemon_cleanly_and_marks_the_node_stopped(sqlite_site, how):
    site = sqlite_site
    site.extra = DAEMON_CONFIG
    site.config()
    site.statement("one.md", "One", iso(datetime.now(UTC) - timedelta(hours=1)))
    daemon = start(site, "run", "--role", "all")
    try:
        wait_for(lambda: titles(site) == ["One"], 20, "the first tick")
        running = _status(site)
        assert [n["role"] for n in running["nodes"]] == ["all"]
    finally:
        code, log = stop(daemon, how)
    assert code == 0, log
    assert f"received {how.name}" in log
    assert "daemon stopped" in log
    assert _status(site)["nodes"] == []
    lines = [line for line in log.splitlines() if line.strip()]
    assert all(" INFO " in line or " WARNING " in line for line in lines), "one log line per event, no tracebacks"


@pytest.mark.slow
def test_stopping_in_the_middle_of_a_big_build_leaves_no_half_written_file(sqlite_site):
    site = sqlite_site
    site.extra = DAEMON_CONFIG
    site.config()
    start_at = datetime.now(UTC) - timedelta(days=400)
    for i in range(800):
        site.statement(f"s{i:04d}.md", f"Statement {i}", iso(start_at + timedelta(hours=i)), body="Text. " * 80)
    daemon = start(site, "run")
    try:
        wait_for(lambda: (site.feeds / "archive").exists(), 120, "the build to start writing")
    finally:
        code, log = stop(daemon)
    assert code == 0, log
    leftovers = [p for p in site.feeds.rglob(".*") if p.is_file()]
    assert leftovers == [], "no temporary file is left behind"
    for path in site.feeds.rglob("*.xml"):
        assert feedparser.parse(path.read_bytes()).bozo == 0, path


def _status(site) -> dict:
    output = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(Path(site.root) / "config.toml"), "status", "--json"],
        capture_output=True, text=True, check=True, cwd=site.root,
    )  # fmt: skip
    return json.loads(output.stdout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_a_scheduler_and_workers_start_side_by_side_on_one_host(sqlite_site):
    site = sqlite_site
    port = free_port()
    site.extra = DAEMON_CONFIG.replace("serve_in_run = false", f'bind = "127.0.0.1:{port}"')  # the pages are on
    site.config()
    site.statement("one.md", "One", iso(datetime.now(UTC) - timedelta(hours=1)))
    scheduler = start(site, "run", "--role", "scheduler")
    workers = []
    try:
        wait_for(lambda: titles(site) == ["One"], 20, "the scheduler's first tick")
        workers = [start(site, "run", "--role", "worker") for _ in range(2)]
        wait_for(
            lambda: sorted(n["role"] for n in _status(site)["nodes"]) == ["scheduler", "worker", "worker"],
            20,
            "the workers",
        )
        assert all(worker.poll() is None for worker in workers), "a worker died"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            assert response.status == 200, "the scheduler serves the pages"
        second = subprocess.run(
            [sys.executable, "-m", "syndicate", "--config", str(site.root / "config.toml"), "run", "--role", "scheduler"],
            cwd=site.root, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        results = [stop(process) for process in (*workers, scheduler)]
    assert [code for code, _ in results] == [0] * len(results), results
    assert second.returncode != 0
    assert f"web.bind: cannot listen on 127.0.0.1:{port}" in second.stderr
    assert "--no-web" in second.stderr and "web.serve_in_run = false" in second.stderr
    assert "Traceback" not in second.stderr
