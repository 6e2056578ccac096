"""Ingest on each engine: what a folder of statements becomes in the store, build after build.

The store is read back through SQL where that is what proves the guarantee:
the ``revisions`` table is the public record (feeds and partners are made
from it), so "nothing happened" means "no new row there".
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import feedparser
from sqlalchemy import func, select

from syndicate.app import App
from syndicate.ingest import IngestReport
from syndicate.ingest import ingest as run_ingest
from syndicate.model import Problem, Severity
from syndicate.pipeline import build
from syndicate.store.schema import revisions, statements

ISTANBUL = timezone(timedelta(hours=3))
ERROR, WARNING = Severity.ERROR, Severity.WARNING


# -- helpers --


def ingest(app: App) -> IngestReport:
    """One ingest at the app's clock, as a build runs it (without rendering feeds)."""
    return run_ingest(app.source, app.db, app.config.site, app.clock())


def history(app: App, statement_id: str | None = None) -> list[tuple[str, int, str]]:
    """(statement, revision, change) of every revision, oldest first."""
    query = select(revisions.c.statement_id, revisions.c.revision, revisions.c.change).order_by(revisions.c.seq)
    if statement_id is not None:
        query = query.where(revisions.c.statement_id == statement_id)
    with app.db.read() as conn:
        return [(r.statement_id, r.revision, r.change) for r in conn.execute(query)]


def revision_count(app: App) -> int:
    with app.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(revisions)).scalar_one())


def last_revision(app: App, statement_id: str) -> Any:
    query = select(revisions).where(revisions.c.statement_id == statement_id).order_by(revisions.c.seq.desc())
    with app.db.read() as conn:
        return conn.execute(query.limit(1)).one()


def states(app: App) -> dict[str, str]:
    """Every stored statement's state, by id."""
    with app.db.read() as conn:
        return {r.id: r.state for r in conn.execute(select(statements.c.id, statements.c.state))}


def stored(app: App, statement_id: str) -> Any:
    with app.db.read() as conn:
        return conn.execute(select(statements).where(statements.c.id == statement_id)).one()


def problems_for(report: IngestReport, path: Path) -> list[Problem]:
    """The problems reported for one file, whether named relative to the working folder or not."""
    return [p for p in report.problems if Path(p.path).resolve() == path.resolve()]


def feed_titles(app: App) -> list[str]:
    """Render the feeds from the store; the entry titles of the site-wide Atom feed, which must parse cleanly."""
    app.feeds.build(app.clock())
    parsed = feedparser.parse((app.config.feeds.dir / "atom.xml").read_bytes())
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return [entry.title for entry in parsed.entries]


def write_bytes(site: Any, name: str, data: bytes) -> Path:
    path = site.statements / name
    path.write_bytes(data)
    return path


# -- every bad input at once --

TEN_MB = b'+++\ntitle = "Huge"\npublished = 2026-11-01\n+++\n' + b"word " * 2_000_000

# name -> (bytes, line reported, message fragment); each of these is skipped.
SKIPPED = {
    "broken-toml.md": (
        b'+++\ntitle = "Broken"\npublished = 2026-11-01\nlist = [1,\n+++\nBody\n',
        5,
        "TOML front matter",
    ),
    "broken-yaml.md": (b"---\ntitle: Broken\n  published: 2026-11-01\n---\nBody\n", 3, "YAML front matter"),
    "never-closed.md": (b'+++\ntitle = "Open"\npublished = 2026-11-01\n\nBody\n', 1, "is never closed"),
    "no-title.md": (b"+++\npublished = 2026-11-01\n+++\nBody\n", 1, "title is required"),
    "bad-date.md": (b"---\ntitle: Bad date\npublished: 2026-11-31\n---\nBody\n", 3, "is not a valid timestamp"),
    "bad-date-text.md": (b'+++\ntitle = "Bad"\npublished = "next Tuesday"\n+++\nB\n', 3, "is not a date-time"),
    "latin5.md": ('+++\ntitle = "Çağrı"\npublished = 2026-11-01\n+++\nGörüş\n'.encode("iso-8859-9"), 2, "not UTF-8"),
    "empty.md": (b"", 1, "file is empty"),
    "huge.md": (TEN_MB, None, "over source.max_bytes"),
    "zz-same-id.md": (b'+++\nid = "good-toml"\ntitle = "Copy"\npublished = 2026-11-01\n+++\nB\n', 2, "duplicate id"),
}

# name -> (bytes, line reported, message fragment, title published); each is published with a warning.
WARNED = {
    "control.md": (b'+++\ntitle = "Bell\x07"\npublished = 2026-11-02\n+++\n\nNull\x00 char.\n', 2, "control", "Bell"),
    "title-break.md": (b'+++\ntitle = "Two\\nlines"\npublished = 2026-11-03\n+++\nB\n', 2, "line break", "Two lines"),
    "unknown-key.md": (b'+++\ntitle = "Odd"\npublished = 2026-11-04\ncolour = "red"\n+++\nB\n', 4, "colour", "Odd"),
}

GOOD = {
    "good-toml.md": '+++\ntitle = "Good TOML"\npublished = 2026-11-05T10:00:00+03:00\n+++\n\nFine.\n',
    "good-yaml.md": "---\ntitle: Good YAML\npublished: 2026-11-06 10:00\ncategories: Basın\n---\n\nFine.\n",
    "turkish.md": "---\ntitle: Şükrü Bey'in açıklaması\npublished: 2026-11-07\nlang: tr\n---\n\nİyi günler.\n",
    "russian.html": "+++\ntitle = 'Заявление'\npublished = 2026-11-08\nlang = 'ru'\n+++\n<p>Добрый день.</p>\n",
}


def write_every_case(site: Any) -> None:
    for name, text in GOOD.items():
        write_bytes(site, name, text.encode())
    for name, (data, *_) in {**SKIPPED, **WARNED}.items():
        write_bytes(site, name, data)


def test_every_bad_file_is_reported_and_every_other_statement_publishes(site, make_app):
    write_every_case(site)
    app = make_app(site)
    report = build(app).ingest

    assert sorted(report.published) == [
        "control", "good-toml", "good-yaml", "russian", "title-break", "turkish", "unknown-key",
    ]  # fmt: skip
    for name, (_, line, fragment) in SKIPPED.items():
        [problem] = problems_for(report, site.statements / name)
        assert (problem.line, problem.severity) == (line, ERROR), problem
        assert fragment in problem.message, problem
    for name, (_, line, fragment, _title) in WARNED.items():
        [problem] = problems_for(report, site.statements / name)
        assert (problem.line, problem.severity) == (line, WARNING), problem
        assert fragment in problem.message, problem
    assert len(report.problems) == len(SKIPPED) + len(WARNED)
    good_titles = {"Good TOML", "Good YAML", "Şükrü Bey'in açıklaması", "Заявление"}
    assert set(feed_titles(app)) == good_titles | {title for *_, title in WARNED.values()}
    assert set(states(app).values()) == {"published"}


def test_duplicate_id_report_names_both_files(site, make_app):
    write_every_case(site)
    report = ingest(make_app(site))
    [problem] = problems_for(report, site.statements / "zz-same-id.md")
    owner = Path(problem.path).with_name("good-toml.md")
    assert problem.message == f"duplicate id 'good-toml': already used by {owner}; skipped"


def test_bad_files_are_reported_again_while_nothing_else_happens(site, make_app):
    write_every_case(site)
    app = make_app(site)
    first = ingest(app)
    count = revision_count(app)
    second = ingest(make_app(site))
    assert (second.published, second.updated, second.retracted, second.scheduled) == ([], [], [], [])
    assert sorted(map(str, second.problems)) == sorted(map(str, first.problems))
    assert revision_count(app) == count


# -- idempotence --


def test_second_build_records_nothing(site, make_app):
    site.statement("a.md", "First", "2026-11-01T10:00:00+03:00")
    site.statement("b.md", "Second", "2026-11-02T10:00:00+03:00", categories=["News"])
    app = make_app(site)
    assert sorted(ingest(app).published) == ["a", "b"]
    rows = {i: tuple(stored(app, i)) for i in ("a", "b")}
    assert history(app) == [("a", 1, "published"), ("b", 1, "published")]

    site.clock.advance(minutes=5)
    again = ingest(make_app(site))
    assert again == IngestReport()
    assert history(app) == [("a", 1, "published"), ("b", 1, "published")]
    assert {i: tuple(stored(app, i)) for i in ("a", "b")} == rows


def test_touching_a_file_without_changing_it_records_nothing(site, make_app):
    path = site.statement("a.md", "First", "2026-11-01T10:00:00+03:00")
    app = make_app(site)
    ingest(app)
    an_hour_ago = datetime.now(UTC).timestamp() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))
    assert ingest(app) == IngestReport()
    assert history(app) == [("a", 1, "published")]


# -- updates --


def test_changed_body_is_an_update_dated_by_the_clock(site, make_app):
    site.statement("a.md", "First", "2026-11-01T10:00:00+03:00", body="Version one.")
    app = make_app(site)
    ingest(app)
    changed_at = site.clock.advance(hours=2)
    site.statement("a.md", "First", "2026-11-01T10:00:00+03:00", body="Version two, longer.")

    report = ingest(app)
    assert report.updated == ["a"]
    assert history(app) == [("a", 1, "published"), ("a", 2, "updated")]
    revision = last_revision(app, "a")
    assert revision.updated == changed_at
    assert revision.body_html == "<p>Version two, longer.</p>\n"
    assert revision.published == datetime(2026, 11, 1, 7, 0, tzinfo=UTC)


def test_first_publication_is_dated_by_the_statement_not_the_build(site, make_app):
    site.statement("a.md", "First", "2026-11-01T10:00:00+03:00")
    app = make_app(site)
    ingest(app)
    assert last_revision(app, "a").updated == datetime(2026, 11, 1, 7, 0, tzinfo=UTC)


def test_declared_updated_time_is_the_updates_time(site, make_app):
    site.statement("a.md", "First", "2026-11-01T10:00:00+03:00", body="One.")
    app = make_app(site)
    ingest(app)
    site.clock.advance(hours=2)
    site.statement("a.md", "First", "2026-11-01T10:00:00+03:00", body="Two.", updated="2026-11-26T14:30:00")

    assert ingest(app).updated == ["a"]
    assert last_revision(app, "a").updated == datetime(2026, 11, 26, 14, 30, tzinfo=ISTANBUL)


def test_same_size_edit_within_one_timestamp_tick_is_seen(site, make_app):
    # Coarse file systems give two saves in the same tick the same mtime; pin it to show that.
    path = site.statement("a.md", "First", "2026-11-01T10:00:00+03:00", body="Version one.")
    stamp = path.stat().st_mtime_ns
    app = make_app(site)
    ingest(app)
    site.statement("a.md", "First", "2026-11-01T10:00:00+03:00", body="Version two.")
    os.utime(path, ns=(stamp, stamp))

    assert ingest(app).updated == ["a"]
    assert last_revision(app, "a").body_html == "<p>Version two.</p>\n"


# -- retraction --


def test_retracted_flag_records_a_retraction(site, make_app):
    site.statement("a.md", "First", "2026-11-01T10:00:00+03:00")
    site.statement("b.md", "Second", "2026-11-02T10:00:00+03:00")
    app = make_app(site)
    ingest(app)
    retracted_at = site.clock.advance(hours=1)
    site.statement("a.md", "First", "2026-11-01T10:00:00+03:00", retracted=True)

    report = ingest(app)
    assert report.retracted == ["a"]
    assert history(app, "a") == [("a", 1, "published"), ("a", 2, "retracted")]
    assert last_revision(app, "a").updated == retracted_at
    assert states(app) == {"a": "retracted", "b": "published"}
    assert ingest(app) == IngestReport()
    assert feed_titles(app) == ["Second"]


def test_removed_file_records_a_retraction(site, make_app):
    path = site.statement("a.md", "First", "2026-11-01T10:00:00+03:00")
    site.statement("b.md", "Second", "2026-11-02T10:00:00+03:00")
    app = make_app(site)
    ingest(app)
    path.unlink()

    assert ingest(app).retracted == ["a"]
    assert history(app, "a") == [("a", 1, "published"), ("a", 2, "retracted")]
    assert states(app) == {"a": "retracted", "b": "published"}
    assert ingest(app) == IngestReport()


def test_file_put_back_after_removal_is_published_again(site, make_app):
    path = site.statement("a.md", "First", "2026-11-01T10:00:00+03:00")
    app = make_app(site)
    ingest(app)
    path.unlink()
    ingest(app)
    site.statement("a.md", "First", "2026-11-01T10:00:00+03:00")

    assert ingest(app).published == ["a"]
    assert history(app, "a") == [("a", 1, "published"), ("a", 2, "retracted"), ("a", 3, "published")]


def test_good_file_turning_bad_keeps_its_last_good_state(site, make_app):
    path = site.statement("a.md", "First", "2026-11-01T10:00:00+03:00", body="Good body.")
    app = make_app(site)
    ingest(app)
    path.write_text('+++\ntitle = "First"\npublished = 2026-11-01T10:00:00+03:00\nbroken = \n+++\nNew body.\n')

    report = ingest(app)
    [problem] = problems_for(report, path)
    assert (problem.line, problem.severity) == (4, ERROR)
    assert (report.published, report.updated, report.retracted) == ([], [], [])
    assert history(app) == [("a", 1, "published")]
    assert stored(app, "a").state == "published"
    assert stored(app, "a").body_html == "<p>Good body.</p>\n"
    assert feed_titles(app) == ["First"]


def test_bad_file_fixed_again_is_an_update(site, make_app):
    path = site.statement("a.md", "First", "2026-11-01T10:00:00+03:00", body="Good body.")
    app = make_app(site)
    ingest(app)
    path.write_bytes(b"")
    assert problems_for(ingest(app), path)[0].message == "file is empty"
    site.statement("a.md", "First", "2026-11-01T10:00:00+03:00", body="Better body.")

    report = ingest(app)
    assert (report.updated, report.problems) == (["a"], [])
    assert history(app) == [("a", 1, "published"), ("a", 2, "updated")]


def test_file_grown_over_the_size_limit_keeps_its_last_good_state(site, make_app):
    path = site.statement("a.md", "First", "2026-11-01T10:00:00+03:00")
    app = make_app(site)
    ingest(app)
    path.write_bytes(path.read_bytes() + b"word " * 2_000_000)

    report = ingest(app)
    assert "over source.max_bytes" in problems_for(report, path)[0].message
    assert states(app) == {"a": "published"}
    assert history(app) == [("a", 1, "published")]


# -- embargo --


def test_future_statement_is_scheduled_then_published_at_its_time(site, make_app):
    site.statement("now.md", "Now", "2026-11-26T10:00:00+03:00")
    site.statement("later.md", "Later", "2026-11-26T16:00:00+03:00")  # 13:00 UTC, an hour ahead
    app = make_app(site)

    report = ingest(app)
    assert (report.published, report.scheduled) == (["now"], ["later"])
    assert states(app) == {"now": "published", "later": "scheduled"}
    assert history(app) == [("now", 1, "published")]
    assert feed_titles(app) == ["Now"]

    site.clock.advance(minutes=59)
    assert ingest(app) == IngestReport()
    site.clock.advance(minutes=1)
    assert ingest(app).published == ["later"]
    assert history(app, "later") == [("later", 1, "published")]
    assert last_revision(app, "later").updated == datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
    assert feed_titles(app) == ["Later", "Now"]


def test_embargo_is_published_by_a_fresh_process_too(site, make_app):
    site.statement("later.md", "Later", "2026-11-26T16:00:00+03:00")
    ingest(make_app(site))
    site.clock.advance(hours=5)
    assert ingest(make_app(site)).published == ["later"]


def test_scheduled_statement_whose_file_is_removed_is_forgotten(site, make_app):
    path = site.statement("later.md", "Later", "2026-11-27T10:00:00+03:00")
    app = make_app(site)
    assert ingest(app).scheduled == ["later"]
    path.unlink()

    assert ingest(app) == IngestReport()
    assert states(app) == {}
    assert history(app) == []


def test_embargo_passed_after_its_file_was_removed_is_not_published(site, make_app):
    path = site.statement("later.md", "Later", "2026-11-26T16:00:00+03:00")
    app = make_app(site)
    ingest(app)
    path.unlink()
    site.clock.advance(hours=2)

    assert ingest(app) == IngestReport()
    assert states(app) == {}
    assert history(app) == []


def test_embargo_moved_later_stays_scheduled(site, make_app):
    site.statement("later.md", "Later", "2026-11-26T16:00:00+03:00")
    app = make_app(site)
    ingest(app)
    site.statement("later.md", "Later", "2026-11-26T18:00:00+03:00")
    site.clock.advance(hours=2)

    assert ingest(app) == IngestReport()
    assert states(app) == {"later": "scheduled"}
    site.clock.advance(hours=1)
    assert ingest(app).published == ["later"]


# -- drafts --


def test_draft_is_stored_but_not_published(site, make_app):
    site.statement("d.md", "Draft", "2026-11-01T10:00:00+03:00", draft=True)
    app = make_app(site)
    assert ingest(app) == IngestReport()
    assert states(app) == {"d": "draft"}
    assert history(app) == []


def test_never_published_draft_whose_file_is_removed_is_forgotten(site, make_app):
    path = site.statement("d.md", "Draft", "2026-11-01T10:00:00+03:00", draft=True)
    app = make_app(site)
    ingest(app)
    path.unlink()

    assert ingest(app) == IngestReport()
    assert states(app) == {}
    assert history(app) == []


def test_never_published_retracted_statement_whose_file_is_removed_is_forgotten(site, make_app):
    path = site.statement("r.md", "Withdrawn", "2026-11-01T10:00:00+03:00", retracted=True)
    app = make_app(site)
    assert ingest(app) == IngestReport()
    path.unlink()

    assert ingest(app) == IngestReport()
    assert states(app) == {}
    assert history(app) == []


def test_draft_becoming_final_is_published(site, make_app):
    site.statement("d.md", "Draft", "2026-11-01T10:00:00+03:00", draft=True)
    app = make_app(site)
    ingest(app)
    site.statement("d.md", "Draft", "2026-11-01T10:00:00+03:00")

    assert ingest(app).published == ["d"]
    assert history(app) == [("d", 1, "published")]


# -- duplicate ids and renames --


def test_duplicate_ids_in_a_new_pair_keep_the_first_by_path(site, make_app):
    site.statement("a.md", "From A", "2026-11-01T10:00:00+03:00", id="same")
    loser = site.write("b.md", '+++\ntitle = "From B"\n\nid = "same"\npublished = 2026-11-01T10:00:00+03:00\n+++\nB\n')
    app = make_app(site)

    report = ingest(app)
    assert report.published == ["same"]
    assert stored(app, "same").title == "From A"
    [problem] = problems_for(report, loser)
    assert (problem.line, problem.severity) == (4, ERROR)  # the line of its id key
    assert problem.message.startswith("duplicate id 'same': already used by ")
    assert problem.message.endswith("a.md; skipped")


def test_duplicate_id_stays_with_the_file_that_already_had_it(site, make_app):
    site.statement("z.md", "From Z", "2026-11-01T10:00:00+03:00", id="same")
    app = make_app(site)
    ingest(app)
    newcomer = site.statement("a.md", "From A", "2026-11-02T10:00:00+03:00", id="same")

    report = ingest(app)
    [problem] = problems_for(report, newcomer)
    assert problem.line == 4  # the line of its id key
    assert problem.message.endswith("z.md; skipped")
    assert (report.published, report.updated) == ([], [])
    assert stored(app, "same").title == "From Z"
    assert history(app) == [("same", 1, "published")]


def test_duplicate_id_owner_keeps_it_while_being_edited(site, make_app):
    site.statement("z.md", "From Z", "2026-11-01T10:00:00+03:00", id="same")
    app = make_app(site)
    ingest(app)
    site.statement("a.md", "From A", "2026-11-02T10:00:00+03:00", id="same")
    site.statement("z.md", "From Z, edited", "2026-11-01T10:00:00+03:00", id="same")

    report = ingest(app)
    assert report.updated == ["same"]
    assert stored(app, "same").title == "From Z, edited"
    assert len(report.problems) == 1


def test_duplicate_id_owner_that_turned_bad_keeps_it(site, make_app):
    owner = site.statement("z.md", "From Z", "2026-11-01T10:00:00+03:00", id="same")
    app = make_app(site)
    ingest(app)
    owner.write_bytes(b"+++\nbroken")
    newcomer = site.statement("a.md", "From A", "2026-11-02T10:00:00+03:00", id="same")

    report = ingest(app)
    assert len(problems_for(report, owner)) == 1
    assert "duplicate id" in problems_for(report, newcomer)[0].message
    assert stored(app, "same").title == "From Z"
    assert history(app) == [("same", 1, "published")]


def test_renaming_a_file_with_an_explicit_id_changes_nothing_public(site, make_app):
    old = site.statement("draft-name.md", "Stable", "2026-11-01T10:00:00+03:00", id="stable")
    app = make_app(site)
    ingest(app)
    new = site.statements / "2026" / "final-name.md"
    new.parent.mkdir()
    old.rename(new)

    assert ingest(app) == IngestReport()
    assert history(app) == [("stable", 1, "published")]
    assert stored(app, "stable").source_ref == "2026/final-name.md"
    assert ingest(app) == IngestReport()


def test_renaming_a_file_without_an_id_retracts_the_old_id(site, make_app):
    old = site.statement("old-name.md", "Moved", "2026-11-01T10:00:00+03:00")
    app = make_app(site)
    ingest(app)
    old.rename(site.statements / "new-name.md")

    report = ingest(app)
    assert (report.published, report.retracted) == (["new-name"], ["old-name"])


def test_id_is_stable_across_edits_of_everything_else(site, make_app):
    site.statement("a.md", "Title", "2026-11-01T10:00:00+03:00")
    app = make_app(site)
    ingest(app)
    tag = stored(app, "a").tag_id
    site.statement("a.md", "New title", "2026-11-03T10:00:00+03:00", categories=["X"], lang="tr")

    assert ingest(app).updated == ["a"]
    assert stored(app, "a").tag_id == tag == last_revision(app, "a").tag_id
