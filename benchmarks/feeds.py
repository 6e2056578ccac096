"""Build cost of the feeds and the site's pages on 10,000 statements, beside the naive pipeline in the same run.

    .venv/bin/python benchmarks/feeds.py [--statements 10000] [--keep DIR]

Prints, from one run:
- full build: empty database, feeds and site folders; ingest and store every
  statement, render every feed (site-wide, per language, per category, three
  formats, RFC 5005 archives), then every page (a page per statement, the
  indexes and their archive pages, the sitemap), each stage timed;
- the feeds alone: the same build without the pages (``[site] pages = false``);
- rebuild with nothing changed;
- rebuild after adding one statement;
- the naive pipeline (the baseline): read every file, render its Markdown, and
  hand all entries to feedgen for one Atom and one RSS file.
Goals: the feeds alone <= 3x naive; the pages add <= 1x the feeds' cost; rebuild
after one new statement <= 10% of a full build.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feedgen.feed import FeedGenerator  # noqa: E402
from markdown_it import MarkdownIt  # noqa: E402

from syndicate.app import build_app  # noqa: E402
from syndicate.config import load  # noqa: E402
from syndicate.ingest import ingest  # noqa: E402
from syndicate.pipeline import build  # noqa: E402

WORDS = [
    "association",
    "immigrants",
    "statement",
    "council",
    "rights",
    "legal",
    "solidarity",
    "caucasus",
    "conference",
    "press",
    "declaration",
    "freedom",
    "civil",
    "society",
    "humanitarian",
    "widows",
    "orphans",
    "support",
    "agenda",
    "cause",
    "legitimacy",
    "member",
    "countries",
    "organisations",
    "agencies",
    "law",
    "diligence",
    "initiative",
    "activities",
    "region",
    "people",
]
LANGUAGES = ("en",) * 7 + ("tr",) * 2 + ("ru",)
CATEGORIES = ("Statements", "News", "Speeches", "United Nations", "Human Rights", "Press", "Events", "Reports")

CONFIG = """
[site]
title = "Benchmark Org"
url = "https://bench.example.org"
timezone = "Europe/Istanbul"
rights = "All rights reserved; quote only with an active link."

[feeds]
items = 50

[email]
transport = "file"
"""


def write_statement(folder: Path, index: int, rng: random.Random, published: datetime) -> None:
    """One statement file: front matter and a few Markdown paragraphs."""
    categories = rng.sample(CATEGORIES, rng.randint(1, 2))
    title = " ".join(rng.choice(WORDS) for _ in range(7)).capitalize()
    paragraphs = [" ".join(rng.choice(WORDS) for _ in range(60)) + "." for _ in range(5)]
    body = (
        f"**{title}**\n\n"
        + "\n\n".join(paragraphs)
        + f"\n\n- point one\n- point *two*\n\n[Source](https://bench.example.org/{index})\n"
    )
    front = (
        f'+++\ntitle = "{title} {index}"\npublished = {published.isoformat()}\n'
        f'lang = "{rng.choice(LANGUAGES)}"\ncategories = {categories!r}\n+++\n\n'.replace("'", '"')
    )
    (folder / f"s{index:05d}.md").write_text(front + body, encoding="utf-8")


def make_site(root: Path, count: int) -> Path:
    """A site folder with ``count`` statements and the project's templates."""
    (root / "statements").mkdir(parents=True)
    shutil.copytree(ROOT / "templates", root / "templates")
    (root / "config.toml").write_text(CONFIG, encoding="utf-8")
    rng = random.Random(20261126)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    for index in range(count):
        write_statement(root / "statements", index, rng, start + timedelta(hours=index * 3))
    return root / "config.toml"


def naive(root: Path) -> float:
    """The baseline: every file read, Markdown rendered, all entries into one Atom and one RSS file."""
    began = time.perf_counter()
    markdown = MarkdownIt("commonmark", {"html": True})
    fg = FeedGenerator()
    fg.id("https://bench.example.org/feeds/atom.xml")
    fg.title("Benchmark Org")
    fg.link(href="https://bench.example.org", rel="alternate")
    fg.description("Statements")
    for path in sorted((root / "statements").glob("*.md")):
        _, front, body = path.read_text(encoding="utf-8").split("+++", 2)
        meta = tomllib.loads(front)
        entry = fg.add_entry()
        entry.id(f"https://bench.example.org/{path.stem}")
        entry.title(meta["title"])
        entry.link(href=f"https://bench.example.org/{path.stem}")
        entry.published(meta["published"])
        entry.updated(meta["published"])
        entry.content(markdown.render(body), type="html")
    out = root / "naive"
    out.mkdir(exist_ok=True)
    fg.atom_file(str(out / "atom.xml"))
    fg.rss_file(str(out / "rss.xml"))
    return time.perf_counter() - began


def timed_build(config_path: Path) -> tuple[float, int]:
    """One `syndicate build` in this process: seconds, and files written (feeds and pages)."""
    began = time.perf_counter()
    app = build_app(load(config_path))
    try:
        report = build(app)
    finally:
        app.close()
    return time.perf_counter() - began, len(report.feeds.written) + len(report.site.written)


def timed_stages(config_path: Path) -> dict[str, tuple[float, int]]:
    """A full build stage by stage, as `syndicate build` runs them: seconds and files of each."""
    began = time.perf_counter()
    app = build_app(load(config_path))
    try:
        now = app.clock()
        wired = time.perf_counter()
        stored = ingest(app.source, app.db, app.config.site, now)
        ingested = time.perf_counter()
        feeds = app.feeds.build(now)
        rendered = time.perf_counter()
        pages = app.site.build(now)
        done = time.perf_counter()
    finally:
        app.close()
    return {
        "ingest": (ingested - began, len(stored.published)),
        "feeds": (rendered - ingested, len(feeds.written)),
        "pages": (done - rendered, len(pages.written)),
        "wiring": (wired - began, 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--statements", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="syndicate-bench-"))
    try:
        config_path = make_site(root, args.statements)
        naive_first = naive(root)
        stages = timed_stages(config_path)
        full = stages["ingest"][0] + stages["feeds"][0] + stages["pages"][0]
        full_files = stages["feeds"][1] + stages["pages"][1]
        alone, alone_files = feeds_alone(root)
        unchanged, unchanged_files = timed_build(config_path)
        write_statement(root / "statements", args.statements, random.Random(1), datetime(2025, 6, 1, tzinfo=UTC))
        one_more, one_more_files = timed_build(config_path)
        naive_second = naive(root)
        baseline = (naive_first + naive_second) / 2
        pages_add = full - alone
        print(f"statements: {args.statements:,}")
        print(f"naive pipeline (baseline, mean of 2): {baseline:8.2f} s   ({naive_first:.2f}, {naive_second:.2f})")
        print(f"feeds alone (pages = false):          {alone:8.2f} s   {alone_files:,} files   "
              f"{alone / baseline:5.2f}x naive (goal <= 3x)")  # fmt: skip
        print(f"full build, feeds and pages:          {full:8.2f} s   {full_files:,} files   "
              f"{full / baseline:5.2f}x naive")  # fmt: skip
        for name in ("ingest", "feeds", "pages"):
            seconds, count = stages[name]
            print(f"  {name:<7} {seconds:8.2f} s   {count:,} {'statements' if name == 'ingest' else 'files'}")
        print(f"the pages add:                        {pages_add:8.2f} s   {pages_add / alone:5.2f}x the feeds alone, "
              f"{stages['pages'][0] / stages['feeds'][0]:5.2f}x the feeds' own stage (goal <= 1x)")  # fmt: skip
        print(f"rebuild, nothing changed:             {unchanged:8.2f} s   {unchanged_files:,} files   "
              f"{unchanged / full:6.1%} of full")  # fmt: skip
        print(f"rebuild after one new statement:      {one_more:8.2f} s   {one_more_files:,} files   "
              f"{one_more / full:6.1%} of full (goal <= 10%)")  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


def feeds_alone(root: Path) -> tuple[float, int]:
    """A full build of the same statements with ``[site] pages = false``, in a folder of its own."""
    other = root / "feeds-alone"
    (other / "statements").mkdir(parents=True)
    for path in (root / "statements").glob("*.md"):
        shutil.copy2(path, other / "statements" / path.name)
    shutil.copytree(ROOT / "templates", other / "templates")
    text = CONFIG.replace('rights = "All rights', 'pages = false\nrights = "All rights')
    (other / "config.toml").write_text(text, encoding="utf-8")
    return timed_build(other / "config.toml")


if __name__ == "__main__":
    main()
