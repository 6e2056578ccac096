"""The ``files`` source: ``statements/**/*.md`` and ``*.html`` with front matter.

A file whose size and modification time match what the store last saw is not
read again, so a rebuild costs a ``stat`` per file, not a parse.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from syndicate.model import Problem, Scan
from syndicate.sources.reader import Reader

SUFFIXES = (".md", ".html")


class FilesSource:
    """Statements kept as files in one folder tree."""

    def __init__(self, root: Path, reader: Reader, max_bytes: int) -> None:
        self.root = root
        self.reader = reader
        self.max_bytes = max_bytes

    def scan(self, known: Mapping[str, str]) -> Scan:
        """Read every file that is new or changed since ``known``."""
        scan = Scan(complete=True)
        if not self.root.is_dir():
            scan.problems.append(Problem(str(self.root), "statements folder does not exist"))
            return Scan(problems=scan.problems, complete=False)
        for path, ref in self._files():
            stat = path.stat()
            fingerprint = f"{stat.st_size}:{stat.st_mtime_ns}"
            if known.get(ref) == fingerprint:
                scan.unchanged.add(ref)
            else:
                self._read(path, ref, stat.st_size, fingerprint, scan)
        return scan

    def _files(self) -> Iterator[tuple[Path, str]]:
        for path in sorted(self.root.rglob("*")):
            if path.suffix in SUFFIXES and path.is_file() and not path.name.startswith("."):
                yield path, path.relative_to(self.root).as_posix()

    def _read(self, path: Path, ref: str, size: int, fingerprint: str, scan: Scan) -> None:
        if size > self.max_bytes:
            message = f"file is {size:,} bytes, over source.max_bytes ({self.max_bytes:,}); skipped"
            scan.problems.append(Problem(self.display(ref), message))
            scan.unreadable.add(ref)
            return
        statement, problems = self.reader.read(ref, path.read_bytes(), fingerprint)
        scan.problems.extend(Problem(self.display(p.path), p.message, p.line, p.severity) for p in problems)
        if statement is None:
            scan.unreadable.add(ref)
        else:
            scan.statements.append(statement)

    def display(self, ref: str) -> str:
        """The path an operator recognises: relative to the working folder when possible."""
        path = self.root / ref
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)
