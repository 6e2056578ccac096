"""Keep the files under ``site.dir`` in step with the revision log and the mailed editions.

As with the feeds, work grows with the change: a page is rendered only when
what it is made from (its ``inputs``, and the settings and templates that
shape every page) differs from the last build's, so one new statement
rewrites its page, its neighbours' and the index pages it appears in. Files
are replaced atomically, and only when their bytes change. A page that cannot
be rendered is reported and skipped; its file keeps its last good bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from syndicate.config import Config
from syndicate.model import Problem, Revision
from syndicate.render.site.archive import Unarchivable, archive_copy
from syndicate.render.site.layout import EditionListing, EditionPage, Listing, Site, StatementPage, plan
from syndicate.render.site.pages import REQUIRED_TEMPLATES, SiteRenderer
from syndicate.render.site.words import words_for
from syndicate.render.writer import write_if_changed
from syndicate.store import editions as edition_store
from syndicate.store import site as site_store
from syndicate.store import statements as statement_store
from syndicate.store.db import Database
from syndicate.store.site import Written

log = logging.getLogger(__name__)

# Bump when the code changes what it writes, so every page is made again.
SITE_VERSION = 1

Page = StatementPage | Listing | EditionPage | EditionListing


@dataclass
class SiteReport:
    """What a build of the site did."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # pages the site no longer has (an index left empty)
    unchanged: int = 0
    skipped: int = 0
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class Job:
    """One file to make: where, from what, and how."""

    path: str
    inputs: str
    gone: bool
    make: Callable[[], bytes]


class SiteBuilder:
    """Writes the statements' pages, the indexes, the newsletter archive, the sitemap and robots.txt."""

    def __init__(self, config: Config, db: Database, renderer: SiteRenderer) -> None:
        self.config = config
        self.db = db
        self.renderer = renderer
        self.root = config.site.dir
        self.settings = settings_digest(config)

    def build(self, now: datetime) -> SiteReport:
        """Bring every page up to date (two nodes never build at once: the second finds it done)."""
        if not self.config.site.pages:
            return SiteReport()
        with self.db.lock("syndicate-site-build"):
            return self._build(now)

    def _build(self, now: datetime) -> SiteReport:
        self.renderer.templates  # noqa: B018 - a template missing or broken fails the stage once, not each page
        report = SiteReport()
        with self.db.read() as conn:
            heads = site_store.heads(conn)
            mailed = edition_store.mailed(conn)
            known = site_store.written(conn)
        site = plan(heads, mailed, self.config.site.per_page, self.config.feeds.by_language,
                    self.config.feeds.by_category)  # fmt: skip
        pages = site.pages()
        inputs = {page.path: self._inputs(page.inputs, site) for page in pages}  # each digest made once a build
        pending = [page for page in pages if self._stale(page.path, inputs[page.path], known)]
        extra = self._extra(site)
        pending_extra = [(p, i) for p, i in extra.items() if self._stale(p, i, known)]
        report.skipped = len(pages) + len(extra) - len(pending) - len(pending_extra)
        with self.db.read() as conn:
            revisions = statement_store.load_revisions(conn, self._seqs(pending, bool(pending_extra), site))
            messages = edition_store.messages(conn, [p.edition.id for p in pending if isinstance(p, EditionPage)])
        jobs = [self._job(page, inputs[page.path], site, revisions, messages) for page in pending]
        jobs += [self._extra_job(path, inputs, site, revisions) for path, inputs in pending_extra]
        done = [written for job in jobs if (written := self._run(job, report)) is not None]
        obsolete = sorted(set(known) - set(inputs) - set(extra))
        for path in obsolete:  # the files first: a crash before the rows go only means finding them again
            self._remove(path)
            report.removed.append(path)
        with self.db.write() as conn:
            site_store.record_written(conn, done, now)
            site_store.forget(conn, obsolete)
        return report

    def _remove(self, path: str) -> None:
        """Take away a page the site no longer has, and the folders it leaves empty."""
        target = self.root / path
        target.unlink(missing_ok=True)
        log.info("removed %s", target)
        folder = target.parent
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:  # not empty (or not there): the folders above it stay too
                return
            folder = folder.parent

    def _inputs(self, shape: list[object], site: Site) -> str:
        """Digest of what a page is made from: its own inputs, the settings, and what every page shows of the
        whole site (the languages its footer links)."""
        return hashlib.sha256(json.dumps([shape, self.settings, site.languages]).encode()).hexdigest()

    def _stale(self, path: str, inputs: str, known: dict[str, Written]) -> bool:
        before = known.get(path)
        if before is None or before.inputs != inputs:
            return True
        try:
            return (self.root / path).stat().st_size != before.size
        except FileNotFoundError:
            return True

    def _extra(self, site: Site) -> dict[str, str]:
        """sitemap.xml and robots.txt, with the inputs of each."""
        heads = [(h.seq, h.statement_id) for h in site.live]
        groups = [list(p.translations) for p in site.statements]
        fronts = [(listing.path, listing.seqs[:1]) for listing in site.listings if listing.page is None]
        return {"sitemap.xml": self._inputs(["sitemap", heads, groups, fronts], site),
                "robots.txt": self._inputs(["robots"], site)}  # fmt: skip

    @staticmethod
    def _seqs(pending: list[Page], sitemap: bool, site: Site) -> set[int]:
        seqs: set[int] = set()
        for page in pending:
            if isinstance(page, StatementPage):
                seqs.update(s for s in (page.seq, page.older, page.newer, *page.translations) if s)
            elif isinstance(page, Listing):
                seqs.update(page.seqs)
        if sitemap:
            seqs.update(h.seq for h in site.live)
        return seqs

    def _job(
        self, page: Page, inputs: str, site: Site, revisions: dict[int, Revision], messages: dict[int, bytes]
    ) -> Job:
        if isinstance(page, StatementPage):
            return Job(page.path, inputs, page.gone, lambda: self.renderer.statement(page, revisions, site))
        if isinstance(page, Listing):
            return Job(page.path, inputs, False, lambda: self.renderer.listing(page, revisions, site))
        if isinstance(page, EditionListing):
            return Job(page.path, inputs, False, lambda: self.renderer.editions(page, site))
        return Job(page.path, inputs, page.gone, lambda: self._edition(page, messages, site))

    def _edition(self, page: EditionPage, messages: dict[int, bytes], site: Site) -> bytes:
        if page.gone:
            return self.renderer.edition_notice(page, site)
        say = words_for(self.config.site.language)
        when = self.renderer.local_date(page.edition.created_at)
        banner = say("mailed_banner", organisation=self.config.site.title, date=when)
        try:
            return archive_copy(messages[page.edition.id], banner, self.renderer.archive_href, say("all_editions"))
        except Unarchivable as exc:  # the archive lists it: its page says it is withheld, and why is logged
            log.error("%s: edition %d is withheld from the archive: %s", self.root / page.path, page.edition.id, exc)
            return self.renderer.edition_notice(page, site, withheld=True)

    def _extra_job(self, path: str, inputs: str, site: Site, revisions: dict[int, Revision]) -> Job:
        if path == "sitemap.xml":
            return Job(path, inputs, False, lambda: self.renderer.sitemap(site, revisions))
        return Job(path, inputs, False, self.renderer.robots)

    def _run(self, job: Job, report: SiteReport) -> Written | None:
        """Render and write one file; a failure is reported and leaves the file as it was."""
        try:
            data = job.make()
        except Exception as exc:
            problem = Problem(str(self.root / job.path), f"not written ({type(exc).__name__}: {exc}); "
                                                         "the file keeps its last good version")  # fmt: skip
            log.error("%s", problem)
            log.debug("rendering %s failed", job.path, exc_info=True)
            report.problems.append(problem)
            return None
        if write_if_changed(self.root / job.path, data):
            report.written.append(job.path)
            log.info("wrote %s", self.root / job.path)
        else:
            report.unchanged += 1
        return Written(job.path, job.inputs, hashlib.sha256(data).hexdigest(), len(data), job.gone)


def settings_digest(config: Config) -> str:
    """Digest of every setting and template that shapes a page's bytes."""
    site, feeds = config.site, config.feeds
    shape = {
        "version": SITE_VERSION,
        "site": [site.title, site.url, site.language, site.timezone, site.author, site.rights, site.per_page],
        "feeds": [config.feeds_base_url, list(feeds.formats), feeds.by_language, feeds.by_category],
        "web": config.web_base_url,
        "fediverse": [config.fediverse.enabled, config.fediverse.username],
    }
    text = json.dumps(shape, sort_keys=True)
    for name in REQUIRED_TEMPLATES:
        path: Path = config.templates.dir / name
        if path.is_file():
            text += hashlib.sha256(path.read_bytes()).hexdigest()
    return hashlib.sha256(text.encode()).hexdigest()
