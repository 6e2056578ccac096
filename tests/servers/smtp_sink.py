"""The benchmarks' SMTP sink (`servers.smtp_sink_server`) as a subprocess: start it, read its counters.

From a test or a benchmark (tests/ on sys.path):

    with start_sink(workers=1, track_ids=True) as sink:
        ...send to ("127.0.0.1", sink.port)...
        print(sink.stats().messages)
        final = sink.stop()              # exact totals
        assert not sink.duplicates()
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from .child import wait_for_port
from .smtp_sink_server import HOST, SIZE_LIMIT

TESTS = Path(__file__).resolve().parents[1]  # on the child's path, so that it imports `servers`


@dataclass(frozen=True)
class SinkStats:
    """Totals over all workers; `cpu` and `uptime` in seconds."""

    messages: int
    recipients: int
    bytes: int
    sessions: int
    rejected: int
    cpu: float
    uptime: float
    workers: int

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> SinkStats:
        """Build from the STATS reply's or the final JSON line's keys."""
        typed: dict[str, Any] = {f.name: (float if f.type == "float" else int)(values[f.name]) for f in fields(cls)}
        return cls(**typed)

    @classmethod
    def parse(cls, line: str) -> SinkStats:
        """Parse a `250 key=value ...` STATS reply."""
        return cls.from_mapping(dict(item.split("=", 1) for item in line.split()[1:]))

    def since(self, earlier: SinkStats) -> SinkStats:
        """The difference from an earlier reading (workers unchanged)."""
        diff: dict[str, Any] = {f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)}
        diff["workers"] = self.workers
        return SinkStats(**diff)

    @property
    def cores(self) -> float:
        """Average number of cores busy over `uptime`."""
        return self.cpu / self.uptime if self.uptime else 0.0


class SinkProcess:
    """A running sink subprocess; stop it (or leave the `with` block) to reap it."""

    def __init__(self, process: subprocess.Popen[bytes], host: str, port: int, ids_dir: str | None) -> None:
        self.process = process
        self.host = host
        self.port = port
        self.final: SinkStats | None = None
        self._ids_dir = ids_dir
        self._final_ids: Counter[str] | None = None

    def stats(self, timeout: float = 5.0) -> SinkStats:
        """Ask the sink for its totals over a fresh connection."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock, sock.makefile("rb") as reader:
            reader.readline()
            sock.sendall(b"STATS\r\nQUIT\r\n")
            line = reader.readline().decode()
        if not line.startswith("250 "):
            raise RuntimeError(f"unexpected STATS reply {line!r}")
        return SinkStats.parse(line)

    def message_ids(self) -> Counter[str]:
        """How often each Message-ID arrived ("None" for none); needs `track_ids`.

        While running this lags by up to 0.1 s (the workers flush their files on a tick).
        """
        if self._final_ids is not None:
            return self._final_ids
        if self._ids_dir is None:
            raise RuntimeError("start_sink(track_ids=True) to keep Message-IDs")
        counts: Counter[str] = Counter()
        for path in Path(self._ids_dir).glob("ids-*.txt"):
            counts.update(path.read_text(encoding="utf-8").splitlines())
        return counts

    def duplicates(self) -> dict[str, int]:
        """Message-IDs that arrived more than once, with their counts."""
        return {mid: n for mid, n in self.message_ids().items() if n > 1}

    def stop(self, timeout: float = 10.0) -> SinkStats:
        """Stop the sink and return its final totals."""
        if self.final is not None:
            return self.final
        out = _finish(self.process, timeout)
        if self._ids_dir is not None:
            self._final_ids = self.message_ids()
            shutil.rmtree(self._ids_dir, ignore_errors=True)
        lines = out.decode().splitlines()
        if self.process.returncode != 0 or not lines:
            raise RuntimeError(f"sink exited with {self.process.returncode}: {out!r}")
        self.final = SinkStats.from_mapping(json.loads(lines[-1]))
        return self.final

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _finish(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    try:
        out, _ = process.communicate(timeout=timeout)  # closes stdin: the sink's cue to stop
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out


def start_sink(
    workers: int = 1,
    *,
    track_ids: bool = False,
    host: str = HOST,
    port: int = 0,
    size_limit: int = SIZE_LIMIT,
    timeout: float = 10.0,
) -> SinkProcess:
    """Run the sink as a subprocess and return once it listens."""
    ids_dir = tempfile.mkdtemp(prefix="smtp-sink-ids-") if track_ids else None
    command = [sys.executable, "-m", "servers.smtp_sink_server", "--host", host, "--port", str(port)]
    command += ["--workers", str(workers), "--size-limit", str(size_limit), "--stop-on-stdin-eof"]
    if ids_dir:
        command += ["--ids-dir", ids_dir]
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        return SinkProcess(process, host, wait_for_port(process, "the SMTP sink", timeout), ids_dir)
    except BaseException:
        _finish(process, 1.0)
        if ids_dir:
            shutil.rmtree(ids_dir, ignore_errors=True)
        raise
