"""Ingest: compare what a source holds with what the store knows, and record the changes.

Each change to the public record becomes a revision (published, updated,
retracted), appended in time order; feeds and partner events are made from
those revisions. Running ingest twice on the same input records nothing the
second time. Only one process ingests at a time (``exclusive``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from syndicate.config import SiteConfig
from syndicate.errors import SourceError
from syndicate.model import Change, Problem, Scan, Severity, State, Statement
from syndicate.sources import Source
from syndicate.store import statements as store
from syndicate.store.db import Database
from syndicate.store.statements import Known

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    """What one ingest found and did."""

    published: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    retracted: list[str] = field(default_factory=list)
    scheduled: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether the public record changed."""
        return bool(self.published or self.updated or self.retracted)


@dataclass
class Plan:
    """The writes one ingest makes, decided before any is made."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    revisions: list[dict[str, Any]] = field(default_factory=list)
    report: IngestReport = field(default_factory=IngestReport)


def ingest(source: Source, db: Database, site: SiteConfig, now: datetime) -> IngestReport:
    """Read the source and record what changed; a source that fails leaves the last good state."""
    with db.read() as conn:
        known_fingerprints = store.fingerprints(conn)
    try:
        scan = source.scan(known_fingerprints)
    except SourceError as exc:
        scan = Scan(problems=[Problem("source", f"{exc}; keeping the last good state")], complete=False)
    with db.exclusive("syndicate-ingest") as conn:
        known = store.index(conn)
        kept, duplicates = resolve_duplicates(scan, known, source.display)
        kept_ids = {s.id for s in kept}
        gone_ids = removed(known, kept_ids, scan)
        # An embargo that came due after its file was removed was never published: it is forgotten.
        due_ids = [i for i in store.due_embargoes(conn, now) if i not in kept_ids and i not in gone_ids]
        due = store.load(conn, due_ids)
        gone = store.load(conn, gone_ids)
        plan = decide(site, known, kept, due, gone, now)
        plan.report.problems = [*scan.problems, *duplicates]
        _apply(conn, plan)
    _log(plan.report)
    return plan.report


def resolve_duplicates(
    scan: Scan, known: dict[str, Known], display: Callable[[str], str] = str
) -> tuple[list[Statement], list[Problem]]:
    """Keep one statement per id: the file that already had it, else the first by path.

    ``display`` turns a source ref into the path the operator knows (``Source.display``).
    """
    held = scan.unchanged | scan.unreadable
    by_id: dict[str, list[Statement]] = defaultdict(list)
    for statement in sorted(scan.statements, key=lambda s: s.source_ref):
        by_id[statement.id].append(statement)
    kept: list[Statement] = []
    problems: list[Problem] = []
    for statement_id, group in by_id.items():
        owner = known[statement_id].source_ref if statement_id in known else None
        # The owner keeps its id while its file is unchanged or unreadable.
        winner = None if owner in held else next((s for s in group if s.source_ref == owner), group[0])
        if winner is not None:
            kept.append(winner)
        for loser in group:
            if loser is not winner:
                first = winner.source_ref if winner else str(owner)
                message = f"duplicate id '{statement_id}': already used by {display(first)}; skipped"
                problems.append(Problem(display(loser.source_ref), message, loser.id_line))
    return kept, problems


def removed(known: dict[str, Known], kept_ids: set[str], scan: Scan) -> list[str]:
    """Ids the source no longer holds (only a complete scan can tell).

    A retracted statement is already off the record, unless it never reached
    it (retracted before publication): that one is forgotten like a draft.
    """
    if not scan.complete:
        return []
    held = scan.unchanged | scan.unreadable
    return [
        k.id
        for k in known.values()
        if k.id not in kept_ids and k.source_ref not in held and (k.state != State.RETRACTED or k.revision == 0)
    ]


def decide(
    site: SiteConfig,
    known: dict[str, Known],
    kept: list[Statement],
    due: list[Statement],
    gone: list[Statement],
    now: datetime,
) -> Plan:
    """Everything ingest will write, from what was read and what was known (no I/O).

    ``due`` are unchanged statements whose embargo has passed; ``gone`` the last
    readings of statements whose file was removed.
    """
    plan = Plan()
    for statement in kept:
        old = known.get(statement.id)
        if old is None:
            _first_reading(plan, site, statement, now)
        else:
            _new_reading(plan, old, statement, old.content_hash != statement.content_hash, now)
    for statement in due:
        _new_reading(plan, known[statement.id], statement, False, now)
    for statement in gone:
        _removed(plan, known[statement.id], statement, now)
    plan.revisions.sort(key=lambda r: (r["updated"], r["published"], r["statement_id"]))
    return plan


def _first_reading(plan: Plan, site: SiteConfig, statement: Statement, now: datetime) -> None:
    state = statement.state(now)
    old = Known(statement.id, statement.source_ref, "", State.DRAFT, 0, tag_id(site, statement), None)
    values = {
        **store.row(statement, state, now),
        "tag_id": old.tag_id,
        "revision": 0,
        "first_seen": now,
        "entry_updated": None,
    }
    values.update(_record(plan, old, statement, state, True, now))
    plan.inserts.append(values)


def _new_reading(plan: Plan, old: Known, statement: Statement, content_changed: bool, now: datetime) -> None:
    state = statement.state(now)
    if not content_changed and state == old.state:
        # Read again but unchanged (a touched file, a renamed one): only where it is read from moved.
        plan.updates[statement.id] = {"source_ref": statement.source_ref, "fingerprint": statement.fingerprint}
        return
    values = store.row(statement, state, now)
    del values["id"]
    values.update(_record(plan, old, statement, state, content_changed, now))
    plan.updates[statement.id] = values


def _removed(plan: Plan, old: Known, last: Statement, now: datetime) -> None:
    if old.revision == 0:
        plan.deletes.append(old.id)
        return
    values: dict[str, Any] = {"state": State.RETRACTED.value, "changed_at": now}
    values.update(_record(plan, old, last, State.RETRACTED, False, now))
    plan.updates[old.id] = values


def _record(
    plan: Plan, old: Known, statement: Statement, state: State, content_changed: bool, now: datetime
) -> dict[str, Any]:
    """Plan the revision (if any) that this reading makes; return the columns it changes."""
    change = transition(old.state, state, content_changed)
    _note(plan.report, statement.id, state, change, old.state)
    if change is None:
        return {}
    updated = entry_updated(change, statement, old, now)
    revision = store.revision_row(
        statement, revision=old.revision + 1, change=change, tag_id=old.tag_id, updated=updated, now=now
    )
    plan.revisions.append(revision)
    return {"revision": old.revision + 1, "entry_updated": updated}


def transition(before: State, after: State, content_changed: bool) -> Change | None:
    """The change to the public record when a statement goes from ``before`` to ``after``."""
    if before == State.PUBLISHED:
        if after == State.PUBLISHED:
            return Change.UPDATED if content_changed else None
        return Change.RETRACTED
    return Change.PUBLISHED if after == State.PUBLISHED else None


def entry_updated(change: Change, statement: Statement, old: Known, now: datetime) -> datetime:
    """The real time of the change, as feeds show it: the author's when given, else when seen."""
    declared = statement.updated
    if change == Change.PUBLISHED and old.revision == 0:
        return max(statement.published, declared or statement.published)
    if change == Change.UPDATED and declared and (old.entry_updated is None or declared > old.entry_updated):
        return declared
    return now


def tag_id(site: SiteConfig, statement: Statement) -> str:
    """A ``tag:`` URI (RFC 4151) for the statement, fixed at first sight and never changed."""
    day = statement.published.astimezone(site.tz).date().isoformat()
    return f"tag:{site.host},{day}:statements/{statement.id}"


def _note(report: IngestReport, statement_id: str, state: State, change: Change | None, before: State) -> None:
    if change == Change.PUBLISHED:
        report.published.append(statement_id)
    elif change == Change.UPDATED:
        report.updated.append(statement_id)
    elif change == Change.RETRACTED:
        report.retracted.append(statement_id)
    elif state == State.SCHEDULED and before != State.SCHEDULED:
        report.scheduled.append(statement_id)


def _apply(conn: Connection, plan: Plan) -> None:
    store.insert(conn, plan.inserts)
    store.update_many(conn, plan.updates)
    store.delete(conn, plan.deletes)
    store.add_revisions(conn, plan.revisions)


def _log(report: IngestReport) -> None:
    for kind in ("published", "updated", "retracted", "scheduled"):
        for statement_id in getattr(report, kind):
            log.info("%s statement %s", kind, statement_id)
    for problem in report.problems:
        (log.warning if problem.severity == Severity.WARNING else log.error)("%s", problem)
