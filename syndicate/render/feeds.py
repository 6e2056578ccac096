"""Render every feed document whose inputs changed, and write the ones whose bytes changed.

Work grows with the change, not with the archive: a document is rendered only
when the records it shows (or the settings that shape it) differ from what it
was last made from, and a sealed archive page is never rendered again.

One document that cannot be rendered (a revision stored before its text was
clean, a bug) is reported, naming the statements it could not render, and
skipped: its file keeps its last good bytes, it is tried again next build,
and every other document is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from syndicate.config import Config
from syndicate.model import Problem, Revision
from syndicate.render.documents import DocumentRenderer
from syndicate.render.layout import Document, FeedSpec, Record, build_logs, documents
from syndicate.render.writer import write_if_changed
from syndicate.store import feeds as feed_store
from syndicate.store import statements as statement_store
from syndicate.store.db import Database
from syndicate.store.feeds import Written

log = logging.getLogger(__name__)

# Bump when the rendering code changes what it writes, so every open document is made again.
RENDER_VERSION = 4


@dataclass
class FeedReport:
    """What a build did: files written, documents left as they were, and feeds that changed."""

    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: int = 0
    changed_topics: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class Job:
    """One document in one format that must be rendered."""

    doc: Document
    fmt: str
    path: str
    inputs: str
    digest: str | None  # of the bytes last written there, if any


class FeedBuilder:
    """Keeps the files under ``feeds.dir`` in step with the revision log."""

    def __init__(self, config: Config, db: Database, renderer: DocumentRenderer) -> None:
        self.config = config
        self.db = db
        self.renderer = renderer
        self.settings = settings_digest(config, renderer)

    def build(self, now: datetime) -> FeedReport:
        """Bring every feed document up to date; owe hubs a ping for each changed feed.

        Two nodes never build at once: the second waits, then finds the files
        already made from the newest revisions.
        """
        with self.db.lock("syndicate-feeds-build"):
            return self._build(now)

    def _build(self, now: datetime) -> FeedReport:
        # This build's own entries: each made once for all its documents, and gone when it returns.
        renderer = replace(self.renderer, entries=self.renderer.entries.for_build())
        report = FeedReport()
        with self.db.read() as conn:
            heads = statement_store.revision_heads(conn)
            known = feed_store.written(conn)
        logs = build_logs(heads, self.config.feeds.by_language, self.config.feeds.by_category)
        jobs = [job for feed in logs.feeds() for job in self._jobs(logs.records[feed.key], feed, known, report)]
        with self.db.read() as conn:
            revisions = statement_store.load_revisions(
                conn, {r.seq for job in jobs for r in job.doc.records + job.doc.context}
            )
        done = [written for job in jobs if (written := self._try(job, renderer, revisions, report)) is not None]
        with self.db.exclusive("syndicate-feeds") as conn:
            feed_store.record_written(conn, done, now)
            feed_store.owe_pings(conn, self.config.feeds.hubs, report.changed_topics, now)
        return report

    def _jobs(self, records: list[Record], feed: FeedSpec, known: dict[str, Written], report: FeedReport) -> list[Job]:
        jobs = []
        for doc in documents(feed, records, self.config.feeds.items):
            for fmt in self.config.feeds.formats:
                path = doc.path(fmt)
                inputs = self._inputs(doc, fmt)
                before = known.get(path)
                if before and before.inputs == inputs and self._on_disk(path, before):
                    report.skipped += 1
                else:
                    jobs.append(Job(doc, fmt, path, inputs, before.digest if before else None))
        return jobs

    def _on_disk(self, path: str, before: Written) -> bool:
        try:
            return (self.config.feeds.dir / path).stat().st_size == before.size
        except FileNotFoundError:
            return False

    def _inputs(self, doc: Document, fmt: str) -> str:
        """Digest of what a document is made from; a sealed page's leaves settings out, so it is made once.

        A page that was open when last written has other inputs once sealed,
        so it is made again, this time for good.
        """
        shape: list[object] = [fmt, doc.kind, doc.page, doc.prev_page, doc.next_page, doc.feed.key]
        shape.append([(r.seq, r.tombstone) for r in doc.records])
        shape.append([r.seq for r in doc.context])
        if doc.kind != "sealed":
            shape.append(self.settings)
        return hashlib.sha256(json.dumps(shape).encode()).hexdigest()

    def _try(
        self, job: Job, renderer: DocumentRenderer, revisions: dict[int, Revision], report: FeedReport
    ) -> Written | None:
        """Render and write one document; a failure is reported and leaves its file as it was."""
        try:
            return self._run(job, renderer, revisions, report)
        except Exception as exc:
            problem = Problem(self._shown(job.path), self._failure(job, renderer, revisions, exc))
            log.error("%s", problem)
            log.debug("rendering %s failed", job.path, exc_info=True)
            report.problems.append(problem)
            return None

    def _failure(self, job: Job, renderer: DocumentRenderer, revisions: dict[int, Revision], exc: Exception) -> str:
        """Why ``job`` failed, naming each statement whose entry cannot be rendered on its own."""
        culprits = []
        for record in job.doc.records:
            try:
                renderer.entries.fragment(revisions[record.seq], job.fmt, tombstone=record.tombstone)
            except Exception:
                culprits.append(revisions[record.seq].statement_id)
        cause = f"statement(s) {', '.join(sorted(set(culprits)))} cannot be rendered" if culprits else "it"
        return f"not written: {cause} ({type(exc).__name__}: {exc}); the file keeps its last good version"

    def _shown(self, path: str) -> str:
        """A feed file as the operator finds it: under ``feeds.dir``."""
        return str(self.config.feeds.dir / path)

    def _run(self, job: Job, renderer: DocumentRenderer, revisions: dict[int, Revision], report: FeedReport) -> Written:
        data = renderer.render(job.doc, job.fmt, revisions)
        digest = hashlib.sha256(data).hexdigest()
        if write_if_changed(self.config.feeds.dir / job.path, data):
            report.written.append(job.path)
            log.info("wrote %s", job.path)
            # A file restored as it was is no news to subscribers: hubs hear only of new bytes.
            if job.doc.kind == "subscription" and digest != job.digest:
                report.changed_topics.append(renderer.url(job.path))
        else:
            report.unchanged += 1
        return Written(job.path, job.inputs, digest, len(data))


def settings_digest(config: Config, renderer: DocumentRenderer) -> str:
    """Digest of every setting and template that shapes a feed document's bytes."""
    feeds = config.feeds
    shape = {
        "version": RENDER_VERSION,
        "site": [config.site.title, config.site.url, config.site.language, config.site.timezone],
        "more": [config.site.author, config.site.rights, config.feeds_base_url],
        "feeds": [feeds.items, feeds.full_content, list(feeds.hubs)],
        "templates": [renderer.entries.attribution_html.filename, renderer.entries.attribution_text.filename],
    }
    text = json.dumps(shape, sort_keys=True)
    for template in (renderer.entries.attribution_html, renderer.entries.attribution_text):
        if template.filename:
            with open(template.filename, "rb") as handle:
                text += hashlib.sha256(handle.read()).hexdigest()
    return hashlib.sha256(text.encode()).hexdigest()
