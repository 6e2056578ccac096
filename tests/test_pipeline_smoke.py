"""End to end on each engine: statements in, feeds out, ingest idempotent; what a tick hands its stages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import feedparser

from syndicate.pipeline import build, tick


def test_build_publishes_and_second_build_changes_nothing(site, make_app):
    site.statement("a.md", "First", "2026-11-01T10:00:00+03:00", categories=["News"])
    site.statement("b.md", "Second", "2026-11-02T10:00:00+03:00", lang="tr")
    app = make_app(site)
    first = build(app)
    assert sorted(first.ingest.published) == ["a", "b"]
    parsed = feedparser.parse((site.feeds / "atom.xml").read_bytes())
    assert parsed.bozo == 0
    assert [e.title for e in parsed.entries] == ["Second", "First"]
    second = build(make_app(site))
    assert second.ingest.published == [] and second.feeds.written == []


def test_tick_hands_the_progress_bar_to_the_mail_sender_and_to_no_other_stage(site, make_app, monkeypatch):
    app = make_app(site)
    handed: list[object] = []

    def mail_run(now, stop, progress=None):
        handed.append(progress)
        return {}

    monkeypatch.setattr(app.email_sender, "run", mail_run)

    @contextmanager
    def bar(total: int) -> Iterator[Callable[[int], None]]:
        yield lambda n: None

    report = tick(app, progress=bar)
    assert handed == [bar]
    assert report.failed == {}  # every other stage ran as ever, on run(now, stop)
    assert set(report.stages) == {stage.name for stage in app.stages}
    tick(app)
    assert handed == [bar, None]
