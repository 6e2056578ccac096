"""Which feeds exist, what each one holds, and how it is cut into documents (no I/O).

Every feed (site-wide, per language, per category) is a filter over the one
log of revisions. A statement that leaves a feed (retracted, or moved to
another category) leaves a tombstone there. Each feed's log is cut into
archive pages of ``items`` entries (RFC 5005): a full page is sealed and never
changes; the page still filling is "open"; the subscription document carries
the newest ``items`` entries and links to the newest sealed page.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from syndicate.model import Change
from syndicate.text import slugify

FILE_NAMES = {"atom": "atom.xml", "rss": "rss.xml", "json": "feed.json"}
ARCHIVE_NAMES = {"atom": "atom-{page}.xml", "rss": "rss-{page}.xml", "json": "feed-{page}.json"}


@dataclass(frozen=True)
class FeedSpec:
    """One feed: a filter over the revision log and the folder its documents go to."""

    key: str
    folder: str
    lang: str | None = None
    category: str | None = None

    def path(self, fmt: str, page: int | None = None) -> str:
        """Path (relative to ``feeds.dir``) of the subscription document, or of archive ``page``."""
        name = FILE_NAMES[fmt] if page is None else "archive/" + ARCHIVE_NAMES[fmt].format(page=page)
        return f"{self.folder}/{name}" if self.folder else name


SITE = FeedSpec("site", "")


@dataclass(frozen=True)
class Record:
    """One line of a feed's log: a revision shown as an entry, or a tombstone."""

    seq: int
    statement_id: str
    tombstone: bool = False


@dataclass(frozen=True)
class Document:
    """One feed document to write: which records, and how it links to its neighbours."""

    feed: FeedSpec
    kind: str  # "subscription", "sealed" or "open"
    page: int | None
    records: tuple[Record, ...]
    prev_page: int | None = None
    next_page: int | None = None
    # Records not shown whose times still date the document: an open page that
    # is still empty is as new as the sealed page before it, not as old as 1970.
    context: tuple[Record, ...] = ()

    def path(self, fmt: str) -> str:
        """Where this document is written for ``fmt``."""
        return self.feed.path(fmt, self.page)


@dataclass
class Logs:
    """Every feed's log, built in one pass over the revision heads."""

    specs: dict[str, FeedSpec] = field(default_factory=dict)
    records: dict[str, list[Record]] = field(default_factory=dict)

    def feeds(self) -> list[FeedSpec]:
        """Feeds in a stable order: site first, then languages, then categories."""
        return sorted(self.specs.values(), key=lambda s: (s.key != "site", s.key))


def build_logs(heads: Iterable[Sequence[Any]], by_language: bool, by_category: bool) -> Logs:
    """Cut the revision log (seq, statement_id, change, lang, categories) into per-feed logs."""
    logs = Logs()
    logs.specs[SITE.key] = SITE
    logs.records[SITE.key] = []
    member_of: dict[str, tuple[str, ...]] = {}
    feeds_of = _FeedIndex(logs, by_language, by_category)
    for seq, statement_id, change, lang, categories in heads:
        now_in = () if change == Change.RETRACTED else feeds_of(lang, tuple(categories))
        for key in now_in:
            logs.records[key].append(Record(seq, statement_id))
        for key in sorted(set(member_of.get(statement_id, ())) - set(now_in)):
            logs.records[key].append(Record(seq, statement_id, tombstone=True))
        member_of[statement_id] = now_in
    return logs


class _FeedIndex:
    """The keys of the feeds a (language, categories) pair belongs to, registering new feeds as met."""

    def __init__(self, logs: Logs, by_language: bool, by_category: bool) -> None:
        self.logs = logs
        self.by_language = by_language
        self.by_category = by_category
        self.known: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}

    def __call__(self, lang: str, categories: tuple[str, ...]) -> tuple[str, ...]:
        found = self.known.get((lang, categories))
        if found is None:
            found = self.known[(lang, categories)] = self._register(lang, categories)
        return found

    def _register(self, lang: str, categories: tuple[str, ...]) -> tuple[str, ...]:
        specs = [SITE]
        if self.by_language:
            specs.append(FeedSpec(f"lang:{lang}", f"lang/{lang}", lang=lang))
        if self.by_category:
            specs.extend(FeedSpec(f"category:{slugify(c)}", f"category/{slugify(c)}", category=c) for c in categories)
        for spec in specs:
            if spec.key not in self.logs.specs:
                self.logs.specs[spec.key] = spec
                self.logs.records[spec.key] = []
        return tuple(sorted({spec.key for spec in specs}))


def documents(feed: FeedSpec, records: Sequence[Record], items: int) -> list[Document]:
    """The documents of one feed: sealed pages, the open page, and the subscription document."""
    sealed = len(records) // items
    docs = [
        Document(feed, "sealed", page, tuple(records[(page - 1) * items : page * items]), _prev(page), page + 1)
        for page in range(1, sealed + 1)
    ]
    if sealed:
        # The page still filling, reached by the newest sealed page's next-archive link.
        open_page = sealed + 1
        filling = tuple(records[sealed * items :])
        context = () if filling else docs[-1].records
        docs.append(Document(feed, "open", open_page, filling, _prev(open_page), context=context))
    newest = tuple(records[-items:])
    docs.append(Document(feed, "subscription", None, newest, sealed or None))
    return docs


def _prev(page: int) -> int | None:
    return page - 1 if page > 1 else None


def newest_first(records: Iterable[Record]) -> list[Record]:
    """One record per statement (its newest), newest first: what a document shows."""
    seen: set[str] = set()
    shown: list[Record] = []
    for record in sorted(records, key=lambda r: r.seq, reverse=True):
        if record.statement_id not in seen:
            seen.add(record.statement_id)
            shown.append(record)
    return shown
