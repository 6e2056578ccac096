"""``/healthz`` and ``/metrics``, and the web server inside ``syndicate run`` with a scheduler /healthz can see."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Clock, Site
from web_support import WebSite, make_web, sqlite_only

from syndicate.app import App
from syndicate.daemon import Daemon
from syndicate.errors import ConfigError
from syndicate.pipeline import ROLES, tick
from syndicate.plan.confirmations import queue_confirmation
from syndicate.store import subscribers as store
from syndicate.store.db import Database
from syndicate.subscribers import Frequency, NewSubscriber
from syndicate.web.metrics import LATENCY_BUCKETS
from syndicate.web.server import listening_socket


@pytest.fixture
def web(site: Site, make_app: Callable[[Site], App]) -> WebSite:
    return make_web(make_app(site))


def plan_confirmation(app: App, email: str) -> None:
    """A pending subscriber with its confirmation mail planned now."""
    now = app.clock()
    with app.db.write() as conn:
        subscriber_id = store.add(conn, NewSubscriber(email, ("en",), (), Frequency.IMMEDIATE), now)
        queue_confirmation(conn, app.email, subscriber_id, "en", now)


def health(response: Any) -> dict[str, Any]:
    assert response.mimetype == "application/json"
    body: dict[str, Any] = json.loads(response.data)
    return body


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.02)


# -- /healthz --


def test_healthz_is_200_when_the_database_answers(web: WebSite) -> None:
    response = web.client.get("/healthz")
    body = health(response)
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["scheduler"] == {"ok": True, "in_process": False}
    assert body["checks"]["outbox"] == {"ok": True, "backlog": {}, "oldest_due_seconds": 0.0}
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_is_503_when_the_database_cannot_be_reached(sqlite_site: Site, make_app: Callable[[Site], App]) -> None:
    app = make_app(sqlite_site)
    cut_off = dataclasses.replace(app, db=Database(f"sqlite:///{sqlite_site.root}/no/such/folder/syndicate.db"))

    response = make_web(cut_off).client.get("/healthz")

    body = health(response)
    assert response.status_code == 503
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"] == {"ok": False, "error": "unreachable (OperationalError)"}
    assert "outbox" not in body["checks"]


@sqlite_only
def test_healthz_sees_the_feeds_site_and_mail_folders_writable(web: WebSite) -> None:
    checks = health(web.client.get("/healthz"))["checks"]
    assert (checks["feeds_folder"], checks["site_folder"], checks["mail_folder"]) == ({"ok": True},) * 3
    assert [p.name for p in web.app.config.feeds.dir.parent.rglob(".healthz-*")] == [], "the probe cleans up"


@pytest.mark.parametrize(
    ("blocked", "check", "key"),
    [
        ("feeds", "feeds_folder", "feeds.dir"),  # the folder itself replaced by a file
        ("site", "site_folder", "site.dir"),
        ("spool", "mail_folder", "email.outbox"),  # its parent a file: it can never be made
    ],
)
def test_healthz_is_503_when_a_folder_the_pipeline_writes_cannot_be_written(
    sqlite_site: Site, make_app: Callable[[Site], App], blocked: str, check: str, key: str
) -> None:
    sqlite_site.extra = '[email]\ntransport = "file"\noutbox = "spool/outbox"\n'
    web = make_web(make_app(sqlite_site))
    assert web.client.get("/healthz").status_code == 200
    (sqlite_site.root / blocked).write_text("a file where a folder should be")

    response = web.client.get("/healthz")

    assert response.status_code == 503
    body = health(response)
    assert body["checks"][check] == {"ok": False, "error": f"{key} cannot be written (NotADirectoryError)"}
    assert str(sqlite_site.root) not in response.get_data(as_text=True), "no path is shown"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder: the file variants cover it")
def test_healthz_is_503_when_the_feeds_folder_is_read_only(sqlite_site: Site, make_app: Callable[[Site], App]) -> None:
    web = make_web(make_app(sqlite_site))
    folder = web.app.config.feeds.dir
    folder.mkdir()
    folder.chmod(0o555)
    try:
        response = web.client.get("/healthz")
    finally:
        folder.chmod(0o755)
    assert response.status_code == 503
    assert health(response)["checks"]["feeds_folder"]["error"] == "feeds.dir cannot be written (PermissionError)"


@sqlite_only
def test_the_mail_folder_is_not_checked_when_mail_goes_by_smtp(site: Site, make_app: Callable[[Site], App]) -> None:
    site.extra = '[email]\ntransport = "smtp"\noutbox = "spool/outbox"\n'
    (site.root / "spool").write_text("not a folder, and not needed")
    response = make_web(make_app(site)).client.get("/healthz")
    assert response.status_code == 200
    assert "mail_folder" not in health(response)["checks"]


def test_healthz_reports_the_backlog_and_fails_when_a_delivery_waits_too_long(web: WebSite, clock: Clock) -> None:
    plan_confirmation(web.app, "waiting@example.org")
    clock.advance(minutes=10)
    fresh = health(web.client.get("/healthz"))
    assert fresh["checks"]["outbox"] == {"ok": True, "backlog": {"email": 1}, "oldest_due_seconds": 600.0}

    clock.advance(hours=1)
    response = web.client.get("/healthz")

    assert response.status_code == 503
    assert health(response)["checks"]["outbox"]["ok"] is False


@sqlite_only
def test_a_backlog_never_fails_health_when_the_limit_is_off(
    site: Site, make_app: Callable[[Site], App], clock: Clock
) -> None:
    site.extra = "[web]\nhealth_overdue_seconds = 0\n"
    web = make_web(make_app(site))
    plan_confirmation(web.app, "waiting@example.org")
    clock.advance(days=2)
    assert web.client.get("/healthz").status_code == 200


def test_healthz_fails_while_the_scheduler_of_this_process_is_not_running(
    sqlite_site: Site, make_app: Callable[[Site], App]
) -> None:
    app = make_app(sqlite_site)
    daemon = Daemon(app, serve_web=False)
    web = make_web(app, scheduler=daemon.health)

    response = web.client.get("/healthz")

    assert response.status_code == 503
    scheduler = health(response)["checks"]["scheduler"]
    assert (scheduler["ok"], scheduler["in_process"], scheduler["alive"]) == (False, True, False)


def test_syndicate_run_serves_the_web_and_healthz_sees_its_scheduler(
    sqlite_site: Site, make_app: Callable[[Site], App]
) -> None:
    sqlite_site.extra = '[web]\nbind = "127.0.0.1:0"\n'
    daemon = Daemon(make_app(sqlite_site))  # web.serve_in_run is on by default
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        wait_until(lambda: bool(daemon.health()["alive"]))
        assert daemon.web is not None
        url = daemon.web.url
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as response:
            body = json.loads(response.read())
        assert response.status == 200
        assert body["checks"]["scheduler"]["alive"] is True
    finally:
        daemon.stop()
        runner.join(timeout=30)
    assert not runner.is_alive()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/healthz", timeout=10)


def run_briefly(daemon: Daemon) -> BaseException | None:
    """Run ``daemon`` in a thread (its signal handlers stay out of pytest) until it beats, then stop it."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            daemon.run()
        except BaseException as exc:  # returned to the test
            failure.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    wait_until(lambda: bool(failure) or bool(daemon.health()["alive"]))
    daemon.stop()
    runner.join(timeout=30)
    assert not runner.is_alive()
    return failure[0] if failure else None


def test_a_worker_serves_no_pages_and_starts_beside_a_server_on_web_bind(
    sqlite_site: Site, make_app: Callable[[Site], App]
) -> None:
    held = listening_socket("127.0.0.1:0")  # the scheduler's pages, say, on the same host
    held.listen()
    try:
        sqlite_site.extra = f'[web]\nbind = "127.0.0.1:{held.getsockname()[1]}"\n'
        app = make_app(sqlite_site)
        worker = Daemon(app, role="worker")
        assert worker.web is None
        assert run_briefly(worker) is None

        clash = run_briefly(Daemon(app, role="scheduler"))
    finally:
        held.close()
    assert isinstance(clash, ConfigError)
    assert clash.key == "web.bind"
    assert "--no-web" in str(clash) and "web.serve_in_run = false" in str(clash), str(clash)


@pytest.mark.parametrize(
    ("serve_in_run", "asked", "serving"),
    [
        (True, None, {"all", "scheduler"}),
        (False, None, set()),
        (True, False, set()),
        (False, True, {"all", "scheduler", "worker"}),
    ],
)
def test_who_serves_the_pages(
    sqlite_site: Site,
    make_app: Callable[[Site], App],
    serve_in_run: bool,
    asked: bool | None,
    serving: set[str],
) -> None:
    sqlite_site.extra = f'[web]\nbind = "127.0.0.1:0"\nserve_in_run = {str(serve_in_run).lower()}\n'
    app = make_app(sqlite_site)
    assert {role for role in ROLES if Daemon(app, asked, role).web is not None} == serving


# -- /metrics --


def test_metrics_are_valid_prometheus_text(web: WebSite, clock: Clock) -> None:
    plan_confirmation(web.app, "one@example.org")
    clock.advance(seconds=30)
    tick(web.app)
    plan_confirmation(web.app, "two@example.org")

    response = web.client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = parse_exposition(response.get_data(as_text=True))
    assert families["syndicate_subscribers"]["samples"][("syndicate_subscribers", (("status", "pending"),))] == 2
    assert families["syndicate_statements"]["type"] == "gauge"
    deliveries = families["syndicate_deliveries"]["samples"]
    assert deliveries[("syndicate_deliveries", (("channel", "email"), ("state", "sent")))] == 1
    assert deliveries[("syndicate_deliveries", (("channel", "email"), ("state", "pending")))] == 1


def test_send_latency_is_a_histogram_of_planning_to_sending(web: WebSite, clock: Clock) -> None:
    plan_confirmation(web.app, "one@example.org")
    clock.advance(seconds=30)
    tick(web.app)

    families = parse_exposition(web.client.get("/metrics").get_data(as_text=True))

    latency = families["syndicate_send_latency_seconds"]
    assert latency["type"] == "histogram"
    samples = latency["samples"]
    buckets = {
        float(dict(labels)["le"]): value for (name, labels), value in samples.items() if name.endswith("_bucket")
    }
    assert buckets == {**{b: (1 if b >= 30 else 0) for b in LATENCY_BUCKETS}, math.inf: 1}
    assert samples[("syndicate_send_latency_seconds_sum", (("channel", "email"),))] == pytest.approx(30, abs=0.01)
    assert samples[("syndicate_send_latency_seconds_count", (("channel", "email"),))] == 1


@sqlite_only
def test_metrics_of_an_empty_site_are_valid_too(web: WebSite) -> None:
    families = parse_exposition(web.client.get("/metrics").get_data(as_text=True))
    assert families["syndicate_send_latency_seconds"]["samples"] == {}


# -- the exposition format, line by line --

METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
SAMPLE = re.compile(rf"^({METRIC_NAME})(?:\{{(.*)\}})? (\S+)(?: (-?\d+))?$")
HELP = re.compile(rf"^# HELP ({METRIC_NAME}) (.*)$")
TYPE = re.compile(rf"^# TYPE ({METRIC_NAME}) (counter|gauge|histogram|summary|untyped)$")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", "")}


def parse_exposition(text: str) -> dict[str, dict[str, Any]]:
    """Check ``text`` against the Prometheus text format rules and return its families.

    Rules: every line ends in a newline; HELP and TYPE at most once per family,
    TYPE before the family's samples; a family's samples are together; names
    and labels are well formed; values are floats; no sample twice; histogram
    buckets are cumulative, end in +Inf, and +Inf equals _count.
    """
    assert text.endswith("\n"), "the exposition must end with a newline"
    families: dict[str, dict[str, Any]] = {}
    finished: set[str] = set()
    current: str | None = None
    for number, line in enumerate(text[:-1].split("\n"), 1):
        family = _parse_line(line, number, families)
        if family != current:
            assert family not in finished, f"line {number}: samples of {family} are not together"
            if current is not None:
                finished.add(current)
            current = family
    for name, info in families.items():
        if info["type"] == "histogram":
            _check_histogram(name, info["samples"])
    return families


def _parse_line(line: str, number: int, families: dict[str, dict[str, Any]]) -> str:
    if match := HELP.match(line):
        family = families.setdefault(match[1], {"type": None, "help": None, "samples": {}})
        assert family["help"] is None, f"line {number}: second HELP for {match[1]}"
        family["help"] = match[2]
        return str(match[1])
    if match := TYPE.match(line):
        family = families.setdefault(match[1], {"type": None, "help": None, "samples": {}})
        assert family["type"] is None, f"line {number}: TYPE twice"
        assert not family["samples"], f"line {number}: TYPE after samples"
        family["type"] = match[2]
        return str(match[1])
    assert not line.startswith(("# HELP", "# TYPE")), f"line {number}: malformed {line!r}"
    match = SAMPLE.match(line)
    assert match, f"line {number} is not a sample: {line!r}"
    name, labels, value = match[1], _labels(match[2] or "", number), _value(match[3], number)
    family_name = _family_of(name, families)
    assert family_name, f"line {number}: {name} has no TYPE before it"
    samples = families[family_name]["samples"]
    assert (name, labels) not in samples, f"line {number}: {name}{labels} twice"
    samples[(name, labels)] = value
    return family_name


def _family_of(name: str, families: dict[str, dict[str, Any]]) -> str | None:
    if name in families and families[name]["type"] not in SUFFIXES:
        return name
    for family, info in families.items():
        if any(name == family + suffix for suffix in SUFFIXES.get(info["type"], ())):
            return family
    return None


def _labels(text: str, number: int) -> tuple[tuple[str, str], ...]:
    pairs, rest = [], text
    while rest:
        match = LABEL.match(rest)
        assert match, f"line {number}: bad label set {text!r}"
        pairs.append((match[1], match[2]))
        rest = rest[match.end() :]
        assert rest == "" or rest.startswith(","), f"line {number}: bad label set {text!r}"
        rest = rest[1:]
    names = [n for n, _ in pairs]
    assert len(names) == len(set(names)), f"line {number}: a label twice"
    return tuple(pairs)


def _value(text: str, number: int) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf"))
    assert re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text), f"line {number}: bad value {text!r}"
    return float(text)


def _check_histogram(name: str, samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> None:
    series: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = defaultdict(list)
    for (sample, labels), value in samples.items():
        if sample == name + "_bucket":
            le = dict(labels)["le"]
            series[tuple(p for p in labels if p[0] != "le")].append((float(le.replace("Inf", "inf")), value))
    for labels, buckets in series.items():
        bounds = [b for b, _ in buckets]
        counts = [c for _, c in buckets]
        assert bounds == sorted(bounds), f"{name}{labels}: buckets out of order"
        assert bounds[-1] == math.inf, f"{name}{labels}: no +Inf bucket"
        assert counts == sorted(counts), f"{name}{labels}: buckets are not cumulative"
        assert samples[(name + "_count", labels)] == counts[-1], f"{name}{labels}: +Inf differs from _count"
        assert (name + "_sum", labels) in samples, f"{name}{labels}: no _sum"


def test_the_format_checker_catches_what_it_should() -> None:
    good = '# HELP m A metric.\n# TYPE m gauge\nm{a="x\\"y"} 1\n'
    assert parse_exposition(good)["m"]["samples"] == {("m", (("a", 'x\\"y'),)): 1.0}
    for bad in (
        "# TYPE m gauge\nm 1",  # no final newline
        "m 1\n",  # no TYPE
        "# TYPE m gauge\nm{a=x} 1\n",  # unquoted label
        "# TYPE m gauge\nm one\n",  # not a number
        "# TYPE m gauge\nm 1\nm 2\n",  # twice
        '# TYPE m gauge\n# TYPE n gauge\nm 1\nn 1\nm{a="b"} 1\n',  # not together
        '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',  # not cumulative
    ):
        with pytest.raises(AssertionError):
            parse_exposition(bad)
