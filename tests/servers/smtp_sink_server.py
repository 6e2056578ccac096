"""A lean SMTP sink for syndicate's throughput benchmarks, run in its own process(es).

It runs the state machine of `servers.smtp_session` and keeps nothing but counters (and,
if asked, each message's Message-ID, to find duplicates). Start it with
`servers.smtp_sink.start_sink()`, or by hand (tests/ on PYTHONPATH):

    python -m servers.smtp_sink_server --port 0 --workers 2    # prints the port, then serves

`--workers N` forks N processes that accept on one shared listening socket, so a sender
in another process never shares a GIL with the sink. Counters live in shared memory, one
row per worker, and any connection can ask for the totals with the extra command `STATS`:

    250 messages=N recipients=N bytes=N sessions=N rejected=N cpu=S uptime=S workers=N

(`cpu` is the user+system seconds the workers spent since they started serving, from
getrusage, refreshed every 0.1 s for the workers not answering; `sessions` counts
connections that sent MAIL, so STATS probes don't count).
On SIGTERM/SIGINT, or EOF on stdin with `--stop-on-stdin-eof`, it prints the final
totals as one JSON line and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from .smtp_session import (
    OK,
    RECEIVE_BUFFER,
    UNRECOGNIZED,
    Envelope,
    LiveSessions,
    Settings,
    SMTPSession,
    serve_until,
    unstuff,
)

HOST = "127.0.0.1"
SIZE_LIMIT = 50 * 1024 * 1024
TICK = 0.1
STOP_TIMEOUT = 10.0
SLOTS = ("messages", "recipients", "bytes", "sessions", "rejected", "cpu_us")
MESSAGES, RECIPIENTS, BYTES, SESSIONS, REJECTED, CPU_US = range(len(SLOTS))


def cpu_seconds() -> float:
    """User plus system CPU seconds of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def add_up(counters: memoryview, workers: int, started: float) -> dict[str, float]:
    """The counters summed over the workers' rows, as STATS and the final line show them."""
    sums = [sum(counters[slot :: len(SLOTS)]) for slot in range(len(SLOTS))]
    totals: dict[str, float] = dict(zip(SLOTS[:CPU_US], sums[:CPU_US], strict=True))
    totals["cpu"] = round(sums[CPU_US] / 1e6, 3)
    totals["uptime"] = round(time.monotonic() - started, 3)
    totals["workers"] = workers
    return totals


def message_id(buf: bytes | bytearray, start: int, end: int) -> str | None:
    """The Message-ID header value of the message framed as for `SMTPSession.deliver`."""
    head_end = buf.find(b"\r\n\r\n", start, end + 2)
    head = bytes(buf[start : (end if head_end < 0 else head_end) + 2])
    at = head.lower().find(b"\r\nmessage-id:")
    if at < 0:
        return None
    value_end = head.find(b"\r\n", at + 13)
    while head[value_end + 2 : value_end + 3] in (b" ", b"\t"):  # folded header
        value_end = head.find(b"\r\n", value_end + 2)
    value = unstuff(head[at + 13 : value_end] + b"\r\n")
    return value.replace(b"\r\n", b"").strip().decode("utf-8", "replace")


class Worker:
    """One process's share of the sink: its row of counters and its Message-ID file."""

    def __init__(
        self, counters: memoryview, index: int, workers: int, ids_dir: str | None, size_limit: int = SIZE_LIMIT
    ) -> None:
        self.counters = counters
        self.row = index * len(SLOTS)
        self.workers = workers
        self.settings = Settings(hostname="sink", size_limit=size_limit)
        self.started = time.monotonic()
        self.cpu_at_start = cpu_seconds()  # leave the interpreter's start-up out
        self.receive = memoryview(bytearray(RECEIVE_BUFFER))  # one for all sessions: each read is taken at once
        self.ids: IO[str] | None = None
        if ids_dir:
            self.ids = open(Path(ids_dir, f"ids-{index}.txt"), "a", encoding="utf-8")  # noqa: SIM115

    def tick(self) -> None:
        """Publish this worker's CPU time and flush the Message-IDs seen so far."""
        self.counters[self.row + CPU_US] = int((cpu_seconds() - self.cpu_at_start) * 1e6)
        if self.ids is not None:
            self.ids.flush()

    def totals(self) -> dict[str, float]:
        """Counters summed over every worker."""
        self.tick()
        return add_up(self.counters, self.workers, self.started)

    def close(self) -> None:
        """Final tick; close the Message-ID file."""
        self.tick()
        if self.ids is not None:
            self.ids.close()


class SinkSession(SMTPSession):
    """An SMTP session that counts what it accepts, and answers STATS."""

    COMMANDS = (*SMTPSession.COMMANDS, "STATS")

    def __init__(self, worker: Worker, live: LiveSessions | None = None) -> None:
        super().__init__(worker.settings, live, worker.receive)
        self.worker = worker
        self.counters = worker.counters
        self.row = worker.row
        self.counted = False

    def check_mail(self, address: str) -> None:
        """Count the session once it sends mail."""
        if not self.counted:
            self.counted = True
            self.counters[self.row + SESSIONS] += 1

    def deliver(self, envelope: Envelope, start: int, end: int, size: int) -> bytes:
        """Count the message (and note its Message-ID if asked)."""
        counters, row = self.counters, self.row
        counters[row + MESSAGES] += 1
        counters[row + RECIPIENTS] += len(envelope.recipients)
        counters[row + BYTES] += size
        if self.worker.ids is not None:
            self.worker.ids.write(f"{message_id(self.buf, start, end)}\n")
        return OK

    def refuse(self, reply: bytes) -> bytes:
        """Count the refusal."""
        self.counters[self.row + REJECTED] += 1
        return reply

    def smtp_STATS(self, line: bytearray) -> bytes:
        """The totals of every worker, on one line."""
        if line.upper() != b"STATS":
            return UNRECOGNIZED
        totals = " ".join(f"{key}={value}" for key, value in self.worker.totals().items())
        return f"250 {totals}\r\n".encode()


def _stop_signals(stop_on_stdin_eof: bool) -> asyncio.Event:
    """An event set on SIGTERM or SIGINT (and EOF on stdin if asked)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 4096):
            stop.set()

    if stop_on_stdin_eof:
        loop.add_reader(sys.stdin.fileno(), on_stdin)
    return stop


async def _serve(sock: socket.socket, worker: Worker, stop_on_stdin_eof: bool) -> None:
    loop = asyncio.get_running_loop()
    live = LiveSessions()

    def tick() -> None:
        worker.tick()
        loop.call_later(TICK, tick)

    server = await loop.create_server(lambda: SinkSession(worker, live), sock=sock, backlog=1024)
    tick()
    await serve_until(server, live, _stop_signals(stop_on_stdin_eof), STOP_TIMEOUT)


def _run_worker(sock: socket.socket, counters: Any, index: int, args: argparse.Namespace) -> None:
    worker = Worker(memoryview(counters).cast("B").cast("q"), index, args.workers, args.ids_dir, args.size_limit)
    try:
        asyncio.run(_serve(sock, worker, args.stop_on_stdin_eof and args.workers == 1))
    finally:
        worker.close()


async def _until_stopped(stop_on_stdin_eof: bool) -> None:
    await _stop_signals(stop_on_stdin_eof).wait()


def _run_workers(sock: socket.socket, counters: Any, args: argparse.Namespace) -> None:
    forked = multiprocessing.get_context("fork")
    processes = [forked.Process(target=_run_worker, args=(sock, counters, i, args)) for i in range(args.workers)]
    for process in processes:
        process.start()
    try:
        asyncio.run(_until_stopped(args.stop_on_stdin_eof))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()


def serve_main(args: argparse.Namespace) -> int:
    """Bind, print the port, serve until told to stop, print the final totals as JSON."""
    started = time.monotonic()
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.create_server((args.host, args.port), family=family, backlog=1024)
    counters = multiprocessing.RawArray("q", args.workers * len(SLOTS))
    print(sock.getsockname()[1], flush=True)
    with sock:
        if args.workers == 1:
            _run_worker(sock, counters, 0, args)
        else:
            _run_workers(sock, counters, args)
    print(json.dumps(add_up(memoryview(counters).cast("B").cast("q"), args.workers, started)), flush=True)
    return 0


def worker_count(text: str) -> int:
    """The argparse type of --workers: a whole number, at least 1."""
    count = int(text)
    if count < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return count


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: serve until stopped."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--workers", type=worker_count, default=1, help="sink processes (default 1)")
    parser.add_argument("--size-limit", type=int, default=SIZE_LIMIT, help="SIZE advertised and enforced")
    parser.add_argument("--ids-dir", help="append each message's Message-ID to files here")
    parser.add_argument("--stop-on-stdin-eof", action="store_true", help="exit when stdin closes")
    return serve_main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
