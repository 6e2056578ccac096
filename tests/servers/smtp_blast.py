"""How fast the SMTP sink takes mail: pre-rendered messages blasted over pipelined connections.

    python -m servers.smtp_blast --messages 100000 --connections 4    # tests/ on PYTHONPATH

starts a sink (`servers.smtp_sink.start_sink`), sends to it from this process and prints
messages per second and the CPU each side used. With `--greedy` the client does not wait
for the 354 (the sink copes), which measures the sink's parser alone.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .smtp_sink import start_sink
from .smtp_sink_server import worker_count


@dataclass
class BlastPlan:
    """What the connections send: message numbers are drawn from one iterator."""

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
    """Pre-render everything the connections send."""
    head, body = render_message(size)
    envelope = b"MAIL FROM:<bench@example.org>\r\n"
    envelope += b"".join(b"RCPT TO:<r%d@example.org>\r\n" % i for i in range(rcpts)) + b"DATA\r\n"
    return BlastPlan(iter(range(messages)), head, body, envelope, rcpts, greedy)


class BlastClient(asyncio.BufferedProtocol):
    """A pipelining client: one write carries a body, its dot and the next MAIL/RCPT/DATA.

    It waits for the 354 as RFC 2920 requires, so each message costs one round trip. In
    `greedy` mode it does not.
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
    """Blast a sink subprocess and print messages/s and both sides' CPU; 0 if all arrived once."""
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
    """Command line: blast a fresh sink and report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", type=worker_count, default=1, help="sink processes (default 1)")
    parser.add_argument("--messages", type=int, default=100_000, help="messages (default 100000)")
    parser.add_argument("--connections", type=int, default=4, help="connections (default 4)")
    parser.add_argument("--rcpts", type=int, default=1, help="recipients per message (default 1)")
    parser.add_argument("--size", type=int, default=2000, help="message bytes (default 2000)")
    parser.add_argument("--greedy", action="store_true", help="do not wait for 354")
    parser.add_argument("--track-ids", action="store_true", help="check for duplicate Message-IDs")
    return selftest(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
