"""The files source reads only regular files inside its folder, and never a file half-written.

Real files, links, FIFOs and an in-place rewriter on a thread: what an editor,
a careless operator or an attacker with a shell in ``statements/`` can do.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from syndicate.config import SiteConfig
from syndicate.model import Severity
from syndicate.sources.files import SETTLE_NS, FilesSource
from syndicate.sources.reader import Reader

pytestmark = pytest.mark.timeout(60)

SITE = SiteConfig(title="Org", url="https://example.org", language="en", timezone="UTC", author="", rights="")
STATEMENT = '+++\ntitle = "{title}"\npublished = 2013-09-12T10:00:00Z\n+++\n\n{body}\n'


def write(path: Path, title: str = "T", body: str = "Body.", age_seconds: float = 10) -> Path:
    """A statement file saved ``age_seconds`` ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STATEMENT.format(title=title, body=body), encoding="utf-8")
    saved = time.time_ns() - int(age_seconds * 1e9)
    os.utime(path, ns=(saved, saved))
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "statements"
    folder.mkdir()
    return folder


def source(root: Path, max_bytes: int = 1_000_000, **options: object) -> FilesSource:
    return FilesSource(root, Reader(SITE), max_bytes, **options)  # type: ignore[arg-type]


def messages(scan: object) -> dict[str, str]:
    return {Path(p.path).name: p.message for p in scan.problems}  # type: ignore[attr-defined]


# -- special files --


def test_a_link_to_a_file_outside_the_folder_is_not_read(root, tmp_path):
    secret = write(tmp_path / "private" / "secret.md", "Not for publication")
    (root / "leak.md").symlink_to(secret)
    write(root / "fine.md")
    scan = source(root).scan({})
    assert [s.source_ref for s in scan.statements] == ["fine.md"]
    assert messages(scan) == {"leak.md": "is a link to outside the statements folder; not read"}
    assert "leak.md" in scan.unreadable


def test_a_link_to_a_device_is_not_read(root):
    (root / "zero.md").symlink_to("/dev/zero")
    scan = source(root).scan({})
    assert scan.statements == []
    assert messages(scan) == {"zero.md": "is a link to outside the statements folder; not read"}


def test_a_fifo_never_hangs_the_scan(root):
    os.mkfifo(root / "pipe.md")
    write(root / "fine.md")
    scan = source(root).scan({})  # nobody writes to the FIFO: opening it to read would block for ever
    assert [s.source_ref for s in scan.statements] == ["fine.md"]
    assert messages(scan) == {"pipe.md": "is not a regular file; not read"}


def test_links_inside_the_folder_are_followed_and_each_folder_read_once(root, tmp_path):
    write(root / "2013" / "a.md", "A")
    (root / "latest.md").symlink_to(root / "2013" / "a.md")  # a file link inside: read
    (root / "mirror").symlink_to(root / "2013")  # a folder link inside: its files are read once
    (root / "2013" / "loop").symlink_to(root)  # a cycle: never walked into
    outside = tmp_path / "elsewhere"
    write(outside / "b.md", "B")
    (root / "away").symlink_to(outside)  # a folder link out: refused like a file link out
    scan = source(root).scan({})
    assert sorted(s.source_ref for s in scan.statements) == ["2013/a.md", "latest.md"]
    assert messages(scan) == {"away": "is a link to outside the statements folder; not read"}


def test_the_folder_itself_may_be_a_link(tmp_path, root):
    write(root / "a.md")
    linked = tmp_path / "linked"
    linked.symlink_to(root)
    scan = source(linked).scan({})
    assert [s.source_ref for s in scan.statements] == ["a.md"]
    assert scan.problems == []


def test_the_size_limit_holds_for_what_is_read(root):
    write(root / "big.md", body="x" * 5000)
    scan = source(root, max_bytes=1000).scan({})
    assert scan.statements == []
    assert messages(scan)["big.md"].startswith("file is 5,")
    assert "over source.max_bytes (1,000)" in messages(scan)["big.md"]


def too_deep_to_list(parent: Path) -> None:
    """Folders nested past PATH_MAX: the walk cannot list the deepest (ENAMETOOLONG), even as root."""
    fd = os.open(parent, os.O_RDONLY)
    try:
        for _ in range(20):
            name = "d" * 250
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)


def test_a_folder_that_cannot_be_listed_retracts_nothing(root):
    write(root / "a.md")
    too_deep_to_list(root)
    scan = source(root).scan({})
    assert [s.source_ref for s in scan.statements] == ["a.md"]
    assert not scan.complete  # what that folder holds is not known: nothing counts as removed
    assert any("folder cannot be read" in p.message for p in scan.problems)


# -- half-written files --


def test_a_file_still_being_written_is_read_once_it_settles(root):
    path = write(root / "s.md", "Draft title", "Half", age_seconds=0)
    full = STATEMENT.format(title="Final title", body="The whole body.")
    waits: list[float] = []

    def editor_finishes(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:
            path.write_text(full, encoding="utf-8")  # the editor's last write, during the wait
        time.sleep(seconds)

    scan = source(root, sleep=editor_finishes).scan({})
    (statement,) = scan.statements
    assert statement.title == "Final title"
    # One wait, or two when the first ended just inside the settle window (how long a sleep takes is the machine's).
    assert 1 <= len(waits) <= 2 and all(0 < w <= SETTLE_NS / 1e9 for w in waits)


def test_a_file_that_keeps_changing_is_left_for_the_next_scan(root):
    path = write(root / "s.md", age_seconds=0)
    count = iter(range(100))

    def editor_keeps_writing(seconds: float) -> None:
        path.write_text(STATEMENT.format(title=f"T{next(count)}", body="more " * next(count)), encoding="utf-8")

    scan = source(root, sleep=editor_keeps_writing).scan({})
    assert scan.statements == []
    assert "s.md" in scan.unreadable  # the last good state stands
    (problem,) = scan.problems
    assert (problem.severity, problem.message) == (Severity.WARNING, "is still being written; read again next time")


def test_an_in_place_rewrite_is_never_read_half_way(root):
    """An editor rewriting a file in place (truncate, write, pause, write) while scans run: no scan keeps a
    torn read. Bounded: a fixed number of rewrites, each with a quiet spell in which a scan can read it."""
    bodies = [" ".join([f"version{v}"] * 4000) for v in range(2)]
    texts = [STATEMENT.format(title=f"V{v}", body=bodies[v]).encode() for v in range(2)]
    path = root / "s.md"
    path.write_bytes(texts[0])
    done = threading.Event()

    def editor() -> None:
        for round_ in range(12):
            data = texts[round_ % 2]
            with path.open("r+b") as handle:
                handle.truncate(0)
                handle.write(data[: len(data) // 2])
                handle.flush()
                time.sleep(0.03)  # the moment a careless reader reads half a file
                handle.write(data[len(data) // 2 :])
            time.sleep(SETTLE_NS / 1e9 * 1.5)  # quiet: a scan may read it whole now
        done.set()

    writer = threading.Thread(target=editor)
    writer.start()
    kept = []
    try:
        while not done.is_set():
            kept += source(root).scan({}).statements
    finally:
        writer.join()
    assert kept, "no scan read the file whole in any quiet spell"
    assert {s.body_text for s in kept} <= set(bodies)
