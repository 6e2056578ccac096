"""What the store remembers of the site's written pages, and the revisions the pages are cut from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from syndicate.model import RevisionHead
from syndicate.store.schema import revisions, site_pages, statements


@dataclass(frozen=True)
class Written:
    """A page as last written: the digest of its inputs and of its bytes, its size, and whether it says "gone"."""

    path: str
    inputs: str
    digest: str
    size: int
    gone: bool = False


def written(conn: Connection) -> dict[str, Written]:
    """Every page written so far, by path."""
    cols = (site_pages.c.path, site_pages.c.inputs, site_pages.c.digest, site_pages.c.size, site_pages.c.gone)
    return {r.path: Written(r.path, r.inputs, r.digest, r.size, bool(r.gone)) for r in conn.execute(select(*cols))}


def record_written(conn: Connection, pages: Iterable[Written], now: datetime) -> None:
    """Remember what each page was made from (replacing what was known)."""
    rows = [{"path": p.path, "inputs": p.inputs, "digest": p.digest, "size": p.size, "gone": p.gone,
             "written_at": now} for p in pages]  # fmt: skip
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        conn.execute(delete(site_pages).where(site_pages.c.path.in_([r["path"] for r in chunk])))
        conn.execute(site_pages.insert(), chunk)


def forget(conn: Connection, paths: Iterable[str]) -> None:
    """Forget pages the site no longer has."""
    wanted = list(paths)
    for start in range(0, len(wanted), 500):
        conn.execute(delete(site_pages).where(site_pages.c.path.in_(wanted[start : start + 500])))


def status_of(conn: Connection, path: str) -> int | None:
    """How the page the build wrote at ``path`` is served: 200, or 410 for a withdrawn statement's notice;
    None when the build wrote no page there (whatever else the folder holds)."""
    gone = conn.execute(select(site_pages.c.gone).where(site_pages.c.path == path)).scalar()
    return None if gone is None else 410 if gone else 200


def heads(conn: Connection) -> list[RevisionHead]:
    """The newest revision of every statement that reached the public, with what it translates."""
    newest = select(func.max(revisions.c.seq)).group_by(revisions.c.statement_id).scalar_subquery()
    cols = (revisions.c.seq, revisions.c.statement_id, revisions.c.change, revisions.c.lang, revisions.c.categories,
            revisions.c.published, statements.c.translation_of)  # fmt: skip
    # What a statement translates is no part of a revision (a reader does not see it): the statement says.
    joined = revisions.outerjoin(statements, statements.c.id == revisions.c.statement_id)
    query = select(*cols).select_from(joined).where(revisions.c.seq.in_(newest))
    return [RevisionHead(r.seq, r.statement_id, r.change, r.lang, tuple(r.categories or ()), r.published, r.translation_of)
            for r in conn.execute(query)]  # fmt: skip
