"""End to end on each engine: statements in, feeds out, ingest idempotent."""

from __future__ import annotations

import feedparser

from syndicate.pipeline import build


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
