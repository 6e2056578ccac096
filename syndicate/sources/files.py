"""The ``files`` source: ``statements/**/*.md`` and ``*.html`` with front matter.

Only regular files inside the folder are read. A symbolic link, to a file or
to a folder, is followed only when where it leads is inside the folder too
(each folder is read once, however many links lead to it); one leading out,
a FIFO, a device or a socket is reported and not read. The size limit holds
for what is read, not for what ``stat`` said.

A file whose size and modification time match what the store last saw is not
read again, so a rebuild costs a ``stat`` per file, not a parse. A file
modified moments before the scan is the exception: file system timestamps are
coarse (a few milliseconds, up to two seconds), so a second save within that
tick, of the same size, would look unchanged. Such a file's fingerprint is not
trusted and it is read again next time (git calls these entries "racy").

A file is never published half-written. One changed in the last
:data:`SETTLE_NS` is given that long to settle before it is read (an editor may
still be writing it), and a read is kept only if the file's size and time
were the same before and after it; a file that keeps changing is left as it
was and read again at the next scan.
"""

from __future__ import annotations

import logging
import os
import stat as stat_mode
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from syndicate.model import Problem, Scan, Severity, Statement
from syndicate.sources.reader import Reader

log = logging.getLogger(__name__)

SUFFIXES = (".md", ".html")
RACY_NS = 2_000_000_000
SETTLE_NS = 200_000_000
SETTLE_ROUNDS = 5
UNTRUSTED = ""  # the fingerprint stored for a racy file: it matches no stat, so the file is read again
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC  # a FIFO put in place never blocks


class Unreadable(Exception):
    """One file is not to be read now; the message says why."""

    def __init__(self, message: str, severity: Severity = Severity.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.severity = severity


@dataclass(frozen=True)
class Found:
    """A statement file: where it is read from (links resolved) and its ref (as it is named in the folder)."""

    path: Path
    ref: str


class FilesSource:
    """Statements kept as files in one folder tree."""

    def __init__(
        self,
        root: Path,
        reader: Reader,
        max_bytes: int,
        wall: Callable[[], int] = time.time_ns,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.root = root
        self.reader = reader
        self.max_bytes = max_bytes
        self.wall = wall
        self.sleep = sleep

    def scan(self, known: Mapping[str, str]) -> Scan:
        """Read every file that is new or changed since ``known``."""
        if not self.root.is_dir():
            return Scan(problems=[Problem(str(self.root), "statements folder does not exist")], complete=False)
        listing = Scan()
        files, listed_all = self._files(listing)
        # A folder that cannot be listed may hold published statements: then nothing counts as removed.
        scan = Scan(problems=listing.problems, unreadable=listing.unreadable, complete=listed_all)
        for found in files:
            try:
                self._visit(found, known.get(found.ref), scan)
            except Unreadable as exc:
                scan.problems.append(Problem(self.display(found.ref), exc.message, severity=exc.severity))
                scan.unreadable.add(found.ref)
            except OSError as exc:  # removed while we looked, or not ours to read
                scan.problems.append(Problem(self.display(found.ref), f"cannot be read: {exc.strerror or exc}"))
                scan.unreadable.add(found.ref)
        return scan

    def _visit(self, found: Found, last: str | None, scan: Scan) -> None:
        """Read one file, unless its size and time say it is as ``last`` saw it."""
        info = self._settled(found.path)
        if last and last == _fingerprint(info, self.wall() - RACY_NS):
            scan.unchanged.add(found.ref)
            return
        data, info = self._read(found.path, info)
        statement, problems = self._parse(found.ref, data, _fingerprint(info, self.wall() - RACY_NS))
        scan.problems.extend(Problem(self.display(p.path), p.message, p.line, p.severity) for p in problems)
        if statement is None:
            scan.unreadable.add(found.ref)
        else:
            scan.statements.append(statement)

    def _settled(self, path: Path) -> os.stat_result:
        """The file's ``stat`` once it has not changed for :data:`SETTLE_NS` (waiting a moment if need be)."""
        info = _regular(path)
        for _ in range(SETTLE_ROUNDS):
            quiet_for = self.wall() - info.st_mtime_ns
            if quiet_for >= SETTLE_NS:
                return info
            self.sleep((SETTLE_NS - quiet_for) / 1e9)
            again = _regular(path)
            if _same(again, info):
                return again
            info = again
        raise Unreadable("is still being written; read again next time", Severity.WARNING)

    def _read(self, path: Path, expected: os.stat_result) -> tuple[bytes, os.stat_result]:
        """The file's bytes (at most ``max_bytes``), and its ``stat``, unchanged before and after the read."""
        fd = os.open(path, _OPEN_FLAGS)
        try:
            before = os.fstat(fd)
            if not stat_mode.S_ISREG(before.st_mode):
                raise Unreadable("is not a regular file; not read")
            self._within_limit(before.st_size)
            data = _read_at_most(fd, self.max_bytes + 1)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        self._within_limit(max(after.st_size, len(data)))
        if not (_same(before, expected) and _same(after, before) and len(data) == after.st_size):
            raise Unreadable("changed while it was read; read again next time", Severity.WARNING)
        return data, after

    def _within_limit(self, size: int) -> None:
        if size > self.max_bytes:
            raise Unreadable(f"file is {size:,} bytes, over source.max_bytes ({self.max_bytes:,}); skipped")

    def _files(self, scan: Scan) -> tuple[list[Found], bool]:
        """Every statement file, by ref, and whether every folder could be listed.

        Hidden files and folders are left out; links are followed only where they stay inside.
        """
        root = self.root.resolve()
        seen = {root}
        found: dict[str, Path] = {}
        unlisted: list[OSError] = []

        def report(exc: OSError) -> None:
            unlisted.append(exc)
            scan.problems.append(Problem(str(exc.filename), f"folder cannot be read: {exc.strerror or exc}"))

        def enter(folder: Path) -> bool:
            try:
                return self._enter(root, folder, seen, scan)
            except OSError as exc:  # a name too long to look at, a folder gone meanwhile
                report(exc)
                return False

        for folder, subfolders, names in os.walk(root, onerror=report, followlinks=True):
            base = Path(folder)
            subfolders[:] = [name for name in subfolders if enter(base / name)]
            for name in filter(_is_statement, names):
                try:
                    path = self._inside(root, base / name, scan)
                except OSError as exc:
                    report(exc)
                    continue
                if path is not None:
                    found[(base / name).relative_to(root).as_posix()] = path
        return [Found(found[ref], ref) for ref in sorted(found)], not unlisted

    def _enter(self, root: Path, folder: Path, seen: set[Path], scan: Scan) -> bool:
        """Whether to read ``folder``: not hidden, inside the root once links are resolved, not read already."""
        if folder.name.startswith("."):
            return False
        real = self._inside(root, folder, scan)
        if real is None or real in seen:
            return False
        seen.add(real)
        return True

    def _inside(self, root: Path, path: Path, scan: Scan) -> Path | None:
        """Where ``path`` leads, if that is inside ``root``; a link leading out is reported.

        Only a link needs resolving: the walk starts inside and enters only folders that are.
        """
        if not path.is_symlink():
            return path
        real = path.resolve()
        if real.is_relative_to(root):
            return real
        ref = path.relative_to(root).as_posix()
        scan.problems.append(Problem(self.display(ref), "is a link to outside the statements folder; not read"))
        scan.unreadable.add(ref)
        return None

    def _parse(self, ref: str, data: bytes, fingerprint: str) -> tuple[Statement | None, list[Problem]]:
        """The reader's verdict on one file; a bug it meets there is that file's problem, not the scan's."""
        try:
            return self.reader.read(ref, data, fingerprint)
        except Exception as exc:
            log.exception("reading %s failed", self.display(ref))
            return None, [Problem(ref, f"could not be read ({type(exc).__name__}: {exc}); skipped")]

    def display(self, ref: str) -> str:
        """The path an operator recognises: relative to the working folder when possible."""
        path = self.root / ref
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)


def _regular(path: Path) -> os.stat_result:
    """``stat`` of ``path``, which must be a regular file (a FIFO or a device is never opened)."""
    info = path.stat()
    if not stat_mode.S_ISREG(info.st_mode):
        raise Unreadable("is not a regular file; not read")
    return info


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_size, b.st_mtime_ns)


def _fingerprint(info: os.stat_result, racy_after: int) -> str:
    """Size and time of a file, or :data:`UNTRUSTED` when it changed too recently to tell a second save."""
    return f"{info.st_size}:{info.st_mtime_ns}" if info.st_mtime_ns < racy_after else UNTRUSTED


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _is_statement(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in SUFFIXES
