"""A lean SMTP sink for syndicate's throughput benchmarks, run in its own process(es).

Plain asyncio protocols, no aiosmtpd: it speaks just enough ESMTP (EHLO with PIPELINING,
8BITMIME, SMTPUTF8 and SIZE; HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), answers pipelined
commands in order with one write per segment received, frames DATA by the final dot and
counts the unstuffed bytes, and keeps nothing but counters (and, if asked, each message's
Message-ID, to find duplicates).

    python benchmarks/smtp_sink.py --port 0 --workers 2    # prints the port, then serves

`--workers N` forks N processes that accept on one shared listening socket, so a sender
in another process never shares a GIL with the sink. Counters live in shared memory, one
row per worker, and any connection can ask for the totals with the extra command `STATS`:

    250 messages=N recipients=N bytes=N sessions=N rejected=N cpu=S uptime=S workers=N

(`cpu` is the user+system seconds the workers spent since they started serving, from
getrusage, refreshed every 0.1 s for the workers not answering; `sessions` counts
connections that sent MAIL, so STATS probes don't count).
On SIGTERM/SIGINT, or EOF on stdin with `--stop-on-stdin-eof`, it prints the final
totals as one JSON line and exits.

From Python, `start_sink()` runs it as a subprocess:

    with start_sink(workers=1, track_ids=True) as sink:
        ...send to ("127.0.0.1", sink.port)...
        print(sink.stats().messages)
        final = sink.stop()              # exact totals
        assert not sink.duplicates()

`python benchmarks/smtp_sink.py --selftest` blasts pre-rendered messages at a sink from
this process over pipelined connections and prints messages/s and the CPU each side used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

HOST = "127.0.0.1"
SIZE_LIMIT = 50 * 1024 * 1024
MAX_COMMAND_LINE = 64 * 1024
TICK = 0.1
RECEIVE_BUFFER = 256 * 1024
SLOTS = ("messages", "recipients", "bytes", "sessions", "rejected", "cpu_us")
MESSAGES, RECIPIENTS, BYTES, SESSIONS, REJECTED, CPU_US = range(len(SLOTS))

GREETING = b"220 sink ESMTP ready\r\n"
OK = b"250 2.0.0 Ok\r\n"


# --------------------------------------------------------------------------- the sink


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


def unstuffed_size(buf: bytes | bytearray, start: int, end: int) -> int:
    """Size of the content framed by `buf[start:end]` once transparency dots are removed.

    `start` is the CRLF that ended the DATA command line (so every content line, the
    first included, follows a CRLF) and `end` the CRLF of the final `CRLF.CRLF`.
    """
    return end - start - buf.count(b"\r\n.", start, end + 2)


def unstuff(content: bytes) -> bytes:
    """Remove the transparency dots of RFC 5321 section 4.5.2 from CRLF-framed content."""
    return (b"\r\n" + content).replace(b"\r\n.", b"\r\n")[2:]


def message_id(buf: bytes | bytearray, start: int, end: int) -> str | None:
    """The Message-ID header value of the message framed as for `unstuffed_size`."""
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

    def __init__(self, counters: memoryview, index: int, workers: int, ids_dir: str | None) -> None:
        self.counters = counters
        self.row = index * len(SLOTS)
        self.workers = workers
        self.started = time.monotonic()
        self.cpu_at_start = cpu_seconds()  # leave the interpreter's start-up out
        # one receive buffer for all sessions: asyncio fills it and calls buffer_updated()
        # before the next read; plain Protocols get a fresh recv(256 KiB) per read, which
        # cost more system time here (page faults) than all the parsing
        self.receive = memoryview(bytearray(RECEIVE_BUFFER))
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


class SinkProtocol(asyncio.BufferedProtocol):
    """One SMTP session. Replies to everything parsed from one segment go out in one write."""

    def __init__(self, worker: Worker, size_limit: int = SIZE_LIMIT) -> None:
        self.worker = worker
        self.counters = worker.counters
        self.row = worker.row
        self.size_limit = size_limit
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.in_data = False
        self.scan = 0  # where the search for the final dot resumes
        self.mail = False
        self.rcpts = 0
        self.counted = False
        self.closing = False
        self.ehlo = b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE %d\r\n" % size_limit

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Greet."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(GREETING)

    def get_buffer(self, sizehint: int) -> memoryview:
        """The worker's shared receive buffer."""
        return self.worker.receive

    def buffer_updated(self, nbytes: int) -> None:
        """Take what was received into the shared buffer."""
        self.feed(self.worker.receive[:nbytes])

    def feed(self, data: bytes | memoryview) -> None:
        """Parse as many commands and messages as arrived; answer them in one write."""
        self.buf += data
        replies: list[bytes] = []
        pos = self._consume(replies)
        if pos:
            del self.buf[:pos]
            self.scan = max(0, self.scan - pos)
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))
            if self.closing:
                self.transport.close()

    def _consume(self, replies: list[bytes]) -> int:
        buf, pos = self.buf, 0
        while not self.closing:
            if self.in_data:
                end = buf.find(b"\r\n.\r\n", max(pos, self.scan))
                if end < 0:
                    self.scan = max(pos, len(buf) - 4)
                    break
                replies.append(self._message(pos, end))
                pos = end + 5
                continue
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                if len(buf) - pos > MAX_COMMAND_LINE:
                    replies.append(b"500 5.5.2 Line too long\r\n")
                    self.closing = True
                break
            replies.append(self._command(buf[pos:eol]))
            # the body is framed from the CRLF ending "DATA" on: see unstuffed_size()
            pos = eol if self.in_data else eol + 2
        return pos

    def _message(self, start: int, end: int) -> bytes:
        self.in_data = False
        size = unstuffed_size(self.buf, start, end)
        rcpts, self.mail, self.rcpts = self.rcpts, False, 0
        counters, row = self.counters, self.row
        if size > self.size_limit:
            counters[row + REJECTED] += 1
            return b"552 5.3.4 Message too big\r\n"
        counters[row + MESSAGES] += 1
        counters[row + RECIPIENTS] += rcpts
        counters[row + BYTES] += size
        if self.worker.ids is not None:
            self.worker.ids.write(f"{message_id(self.buf, start, end)}\n")
        return OK

    def _command(self, line: bytearray) -> bytes:
        handler = _COMMANDS.get(bytes(line[:4]).upper())
        if handler is None:
            return b"500 5.5.2 Command not recognized\r\n"
        return handler(self, line)

    def _reset(self) -> None:
        self.mail, self.rcpts = False, 0

    def _mail(self, line: bytearray) -> bytes:
        if self.mail:
            return b"503 5.5.1 Nested MAIL command\r\n"
        upper = line.upper()
        if not upper.startswith(b"MAIL FROM:"):
            return b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
        at = upper.find(b" SIZE=")
        declared = upper[at + 6 :].split(b" ", 1)[0] if at >= 0 else b""
        if declared.isdigit() and int(declared) > self.size_limit:
            return b"552 5.3.4 Message size exceeds fixed limit\r\n"
        if not self.counted:
            self.counted = True
            self.counters[self.row + SESSIONS] += 1
        self.mail, self.rcpts = True, 0
        return OK

    def _rcpt(self, line: bytearray) -> bytes:
        if not self.mail:
            return b"503 5.5.1 Need MAIL command\r\n"
        if line[:8].upper() != b"RCPT TO:":
            return b"501 5.5.4 Syntax: RCPT TO:<address>\r\n"
        self.rcpts += 1
        return OK

    def _data(self, line: bytearray) -> bytes:
        if not self.rcpts:
            return b"503 5.5.1 Need RCPT command\r\n"
        self.in_data = True
        return b"354 End data with <CR><LF>.<CR><LF>\r\n"

    def _ehlo(self, line: bytearray) -> bytes:
        self._reset()
        return self.ehlo

    def _helo(self, line: bytearray) -> bytes:
        self._reset()
        return b"250 sink\r\n"

    def _rset(self, line: bytearray) -> bytes:
        self._reset()
        return OK

    def _noop(self, line: bytearray) -> bytes:
        return OK

    def _quit(self, line: bytearray) -> bytes:
        self.closing = True
        return b"221 2.0.0 Bye\r\n"

    def _stats(self, line: bytearray) -> bytes:
        totals = " ".join(f"{key}={value}" for key, value in self.worker.totals().items())
        return f"250 {totals}\r\n".encode()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the transport so nothing writes to it."""
        self.transport = None


_COMMANDS: dict[bytes, Callable[[SinkProtocol, bytearray], bytes]] = {
    b"MAIL": SinkProtocol._mail,
    b"RCPT": SinkProtocol._rcpt,
    b"DATA": SinkProtocol._data,
    b"EHLO": SinkProtocol._ehlo,
    b"HELO": SinkProtocol._helo,
    b"RSET": SinkProtocol._rset,
    b"NOOP": SinkProtocol._noop,
    b"QUIT": SinkProtocol._quit,
    b"STAT": SinkProtocol._stats,
}


# --------------------------------------------------------------------------- processes


async def _wait_for_stop(stop_on_stdin_eof: bool) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 4096):
            stop.set()

    if stop_on_stdin_eof:
        loop.add_reader(sys.stdin.fileno(), on_stdin)
    await stop.wait()


async def _serve(sock: socket.socket, worker: Worker, size_limit: int, stop_on_stdin_eof: bool) -> None:
    loop = asyncio.get_running_loop()
    sessions: set[SinkProtocol] = set()

    def factory() -> SinkProtocol:
        protocol = SinkProtocol(worker, size_limit)
        sessions.add(protocol)
        return protocol

    def tick() -> None:
        worker.tick()
        loop.call_later(TICK, tick)

    server = await loop.create_server(factory, sock=sock, backlog=1024)
    tick()
    await _wait_for_stop(stop_on_stdin_eof)
    server.close()
    for protocol in sessions:
        if protocol.transport is not None:
            protocol.transport.abort()
    await server.wait_closed()
    await asyncio.sleep(0)  # let the aborted transports call connection_lost


def _run_worker(sock: socket.socket, counters: Any, index: int, args: argparse.Namespace) -> None:
    worker = Worker(memoryview(counters).cast("B").cast("q"), index, args.workers, args.ids_dir)
    try:
        asyncio.run(_serve(sock, worker, args.size_limit, args.stop_on_stdin_eof and args.workers == 1))
    finally:
        worker.close()


def _run_workers(sock: socket.socket, counters: Any, args: argparse.Namespace) -> None:
    forked = multiprocessing.get_context("fork")
    processes = [forked.Process(target=_run_worker, args=(sock, counters, i, args)) for i in range(args.workers)]
    for process in processes:
        process.start()
    try:
        asyncio.run(_wait_for_stop(args.stop_on_stdin_eof))
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


# --------------------------------------------------------------------------- the helper


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
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            reader = sock.makefile("rb")
            with reader:
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


def _read_port(process: subprocess.Popen[bytes], timeout: float) -> int:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError("the sink did not print its port")
    line = process.stdout.readline()
    if not line.strip().isdigit():
        raise RuntimeError(f"the sink did not start: {line!r}")
    return int(line)


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
    command = [sys.executable, str(Path(__file__).resolve()), "--host", host, "--port", str(port)]
    command += ["--workers", str(workers), "--size-limit", str(size_limit), "--stop-on-stdin-eof"]
    if ids_dir:
        command += ["--ids-dir", ids_dir]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        return SinkProcess(process, host, _read_port(process, timeout), ids_dir)
    except BaseException:
        _finish(process, 1.0)
        if ids_dir:
            shutil.rmtree(ids_dir, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- selftest


@dataclass
class BlastPlan:
    """What the selftest's connections send: message numbers are drawn from one iterator."""

    numbers: Iterator[int]
    head: bytes
    body: bytes
    envelope: bytes
    rcpts: int
    greedy: bool

    def message(self, number: int) -> bytes:
        """Message `number`, dot-stuffed, with its final dot."""
        return self.head + str(number).encode() + self.body + b".\r\n"


def render_message(size: int) -> tuple[bytes, bytes]:
    """A dot-stuffed message of about `size` bytes, split where its Message-ID number goes."""
    head = b"From: Bench <bench@example.org>\r\nTo: reader@example.org\r\nSubject: Benchmark\r\n"
    head += b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nMessage-ID: <"
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    body = b"@bench.example.org>\r\n\r\n..A line that began with a dot.\r\n"
    body += line * max(1, (size - len(head) - len(body)) // len(line))
    return head, body


def blast_plan(messages: int, *, rcpts: int = 1, size: int = 2000, greedy: bool = False) -> BlastPlan:
    """Pre-render everything the selftest sends."""
    head, body = render_message(size)
    envelope = b"MAIL FROM:<bench@example.org>\r\n"
    envelope += b"".join(b"RCPT TO:<r%d@example.org>\r\n" % i for i in range(rcpts)) + b"DATA\r\n"
    return BlastPlan(iter(range(messages)), head, body, envelope, rcpts, greedy)


class BlastClient(asyncio.BufferedProtocol):
    """A pipelining client: one write carries a body, its dot and the next MAIL/RCPT/DATA.

    It waits for the 354 as RFC 2920 requires, so each message costs one round trip. In
    `greedy` mode it does not (the sink copes), which measures the sink's parser alone.
    """

    def __init__(self, plan: BlastPlan, done: asyncio.Future[None]) -> None:
        self.plan = plan
        self.done = done
        self.transport: asyncio.Transport | None = None
        self.lines = 1  # reply lines still expected before the next write: the greeting
        self.greeted = False
        self.pending: int | None = None  # the message whose 354 is awaited
        self.finished = False
        self.paused = False
        self.receive = memoryview(bytearray(65536))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport; the greeting comes first."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where asyncio puts the replies."""
        return self.receive

    def buffer_updated(self, nbytes: int) -> None:
        """Replies arrived."""
        self.replies(bytes(self.receive[:nbytes]))

    def replies(self, data: bytes) -> None:
        """Count reply lines; send the next write when all expected ones are in."""
        if data[:1] in (b"4", b"5") or b"\n4" in data or b"\n5" in data:
            self._fail(RuntimeError(f"sink refused: {data[:200]!r}"))
            return
        self.lines -= data.count(b"\n")
        if self.lines <= 0 and not self.finished:
            self._next()

    def _next(self) -> None:
        if not self.greeted:
            self.greeted = True
            self._write(b"HELO blast\r\n", 1)
        elif self.plan.greedy:
            self._pump()
        else:
            self._send_one()

    def _write(self, data: bytes, replies: int) -> None:
        assert self.transport is not None
        self.lines += replies
        self.transport.write(data)

    def _send_one(self) -> None:
        number = next(self.plan.numbers, None)
        body = b"" if self.pending is None else self.plan.message(self.pending)
        self.pending = number
        if number is None:
            self.finished = True
            self._write(body + b"QUIT\r\n", bool(body) + 1)
        else:
            self._write(body + self.plan.envelope, bool(body) + self.plan.rcpts + 2)

    def _pump(self) -> None:
        while not self.paused and not self.finished:
            numbers = [n for _, n in zip(range(64), self.plan.numbers, strict=False)]
            batch = b"".join(self.plan.envelope + self.plan.message(n) for n in numbers)
            if len(numbers) < 64:
                self.finished = True
                batch += b"QUIT\r\n"
            self._write(batch, len(numbers) * (self.plan.rcpts + 3) + self.finished)

    def pause_writing(self) -> None:
        """Stop pumping until the socket drains."""
        self.paused = True

    def resume_writing(self) -> None:
        """Pump again (greedy mode)."""
        self.paused = False
        if self.plan.greedy and self.greeted:
            self._pump()

    def _fail(self, error: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(error)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        """Done when the sink hung up after QUIT with every reply in."""
        if self.done.done():
            return
        if self.finished and self.lines <= 0:
            self.done.set_result(None)
        else:
            self.done.set_exception(exc or ConnectionError(f"closed with {self.lines} replies missing"))


async def blast(host: str, port: int, plan: BlastPlan, connections: int = 4, timeout: float = 600.0) -> None:
    """Send every message of `plan` over `connections` pipelining connections."""
    loop = asyncio.get_running_loop()
    clients: list[BlastClient] = []
    for _ in range(connections):
        client = BlastClient(plan, loop.create_future())
        await loop.create_connection(lambda c=client: c, host, port)  # type: ignore[misc]
        clients.append(client)
    try:
        await asyncio.wait_for(asyncio.gather(*(c.done for c in clients)), timeout)
    finally:
        for client in clients:
            if client.transport is not None and not client.transport.is_closing():
                client.transport.abort()
        await asyncio.sleep(0)


def selftest(args: argparse.Namespace) -> int:
    """Blast a sink subprocess and print messages/s and both sides' CPU."""
    plan = blast_plan(args.messages, rcpts=args.rcpts, size=args.size, greedy=args.greedy)
    with start_sink(args.workers, track_ids=args.track_ids) as sink:
        before = sink.stats()
        wall, cpu = time.perf_counter(), time.process_time()
        asyncio.run(blast(sink.host, sink.port, plan, args.connections))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        used = sink.stats().since(before)
        sink.stop()
        dups = len(sink.duplicates()) if args.track_ids else 0
    mode = "greedy (no wait for 354)" if args.greedy else "RFC 2920 (waits for 354)"
    print(f"sink: {args.workers} worker(s); client: {args.connections} connection(s), {args.rcpts} rcpt(s), "
          f"{len(plan.message(0))}-byte messages, {mode}")  # fmt: skip
    print(f"{used.messages:,} messages in {wall:.2f} s = {used.messages / wall:,.0f} msg/s; duplicates {dups}")
    print(f"sink CPU {used.cpu:.2f} s ({used.cpu / wall:.2f} cores); client CPU {cpu:.2f} s ({cpu / wall:.2f} cores)")
    return 0 if used.messages == args.messages and not dups else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: serve (default) or --selftest."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--workers", type=int, default=1, help="sink processes (default 1)")
    parser.add_argument("--size-limit", type=int, default=SIZE_LIMIT, help="SIZE advertised and enforced")
    parser.add_argument("--ids-dir", help="append each message's Message-ID to files here")
    parser.add_argument("--stop-on-stdin-eof", action="store_true", help="exit when stdin closes")
    parser.add_argument("--selftest", action="store_true", help="blast a sink subprocess and report")
    parser.add_argument("--messages", type=int, default=100_000, help="selftest: messages (default 100000)")
    parser.add_argument("--connections", type=int, default=4, help="selftest: connections (default 4)")
    parser.add_argument("--rcpts", type=int, default=1, help="selftest: recipients per message (default 1)")
    parser.add_argument("--size", type=int, default=2000, help="selftest: message bytes (default 2000)")
    parser.add_argument("--greedy", action="store_true", help="selftest: do not wait for 354")
    parser.add_argument("--track-ids", action="store_true", help="selftest: check for duplicate Message-IDs")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return selftest(args) if args.selftest else serve_main(args)


if __name__ == "__main__":
    sys.exit(main())
