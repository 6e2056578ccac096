"""The ``files`` source: ``statements/**/*.md`` and ``*.html`` with front matter.

A file whose size and modification time match what the store last saw is not
read again, so a rebuild costs a ``stat`` per file, not a parse. A file
modified moments before the scan is the exception: file system timestamps are
coarse (a few milliseconds, up to two seconds), so a second save within that
tick, of the same size, would look unchanged. Such a file's fingerprint is not
trusted and it is read again next time (git calls these entries "racy").
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from syndicate.model import Problem, Scan, Statement
from syndicate.sources.reader import Reader

log = logging.getLogger(__name__)

SUFFIXES = (".md", ".html")
RACY_NS = 2_000_000_000
UNTRUSTED = ""  # the fingerprint stored for a racy file: it matches no stat, so the file is read again


class FilesSource:
    """Statements kept as files in one folder tree."""

    def __init__(self, root: Path, reader: Reader, max_bytes: int, wall: Callable[[], int] = time.time_ns) -> None:
        self.root = root
        self.reader = reader
        self.max_bytes = max_bytes
        self.wall = wall

    def scan(self, known: Mapping[str, str]) -> Scan:
        """Read every file that is new or changed since ``known``."""
        if not self.root.is_dir():
            return Scan(problems=[Problem(str(self.root), "statements folder does not exist")], complete=False)
        scan = Scan(complete=True)
        racy_after = self.wall() - RACY_NS
        for path, ref in self._files():
            try:
                self._visit(path, ref, known.get(ref), racy_after, scan)
            except OSError as exc:  # removed while we looked, or not ours to read
                scan.problems.append(Problem(self.display(ref), f"cannot be read: {exc.strerror or exc}"))
                scan.unreadable.add(ref)
        return scan

    def _visit(self, path: Path, ref: str, last: str | None, racy_after: int, scan: Scan) -> None:
        """Read one file, unless its size and time say it is as ``last`` saw it."""
        stat = path.stat()
        trusted = stat.st_mtime_ns < racy_after
        fingerprint = f"{stat.st_size}:{stat.st_mtime_ns}" if trusted else UNTRUSTED
        if trusted and last == fingerprint:
            scan.unchanged.add(ref)
        else:
            self._read(path, ref, stat.st_size, fingerprint, scan)

    def _files(self) -> Iterator[tuple[Path, str]]:
        """(path, ref) of every statement file, by ref; hidden files and folders are left out."""
        found = []
        for folder, subfolders, names in os.walk(self.root):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            base = Path(folder).relative_to(self.root)
            found += [(base / name).as_posix() for name in names if _is_statement(name)]
        for ref in sorted(found):
            yield self.root / ref, ref

    def _read(self, path: Path, ref: str, size: int, fingerprint: str, scan: Scan) -> None:
        if size > self.max_bytes:
            message = f"file is {size:,} bytes, over source.max_bytes ({self.max_bytes:,}); skipped"
            scan.problems.append(Problem(self.display(ref), message))
            scan.unreadable.add(ref)
            return
        statement, problems = self._parse(ref, path.read_bytes(), fingerprint)
        scan.problems.extend(Problem(self.display(p.path), p.message, p.line, p.severity) for p in problems)
        if statement is None:
            scan.unreadable.add(ref)
        else:
            scan.statements.append(statement)

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


def _is_statement(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in SUFFIXES
