"""A farm of webhook partners in its own process, for syndicate's fan-out benchmark.

The farm (`tests.servers.http.PartnerFarm`: one loopback port per partner, a thread per
connection) runs in a child Python process (this file with `--serve`) so the sender under
test and the receivers never share a GIL; the parent talks to it with JSON lines over the
child's stdin and stdout. Being a plain subprocess, not multiprocessing, the caller's
script needs no `if __name__ == "__main__"` guard.

    from benchmarks.http_partners import start_farm

    with start_farm(100, hanging=10) as farm:
        started = time.monotonic()
        ...send one event to each of farm.urls, signed with farm.secrets[i]...
        times = farm.received_times()      # healthy url -> monotonic time of first delivery
        latencies = {url: at - started for url, at in times.items()}

Times are `time.monotonic()` in the child: CLOCK_MONOTONIC, one clock for every process
on a Linux machine, so they compare with the parent's `time.monotonic()`.

`python benchmarks/http_partners.py --selftest` fires one signed POST at every endpoint
at once from a thread pool of `requests` and prints how fast the healthy ones got it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Self, TextIO

ROOT = Path(__file__).resolve().parents[1]
REPLY_TIMEOUT = 30.0


def _servers_module(name: str) -> ModuleType:
    """Import tests/servers/`name`.py as `servers.<name>`, as the tests do, whatever the caller's path.

    Not as `tests.servers.http`: a package of the test extra (flask-websub) installs a top-level
    `tests` of its own, which would win.
    """
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    return importlib.import_module(f"servers.{name}")


# --------------------------------------------------------------------------- child process


def serve(stdin: TextIO, stdout: TextIO) -> None:
    """Child side: read a JSON config line, run the farm, answer commands until `stop` or EOF.

    Config: {"n", "hanging", "secrets", "hang_seconds"}. The first line written back is
    {"ready": {"urls", "secrets", "hanging"}}; then each command line `times` or `counts`
    is answered with one JSON line, and `stop` (or EOF) stops the farm.
    """
    config = json.loads(stdin.readline())
    farm_class = _servers_module("http").PartnerFarm
    farm = farm_class(
        config["n"], config["hanging"], secrets=config["secrets"], hang_seconds=config["hang_seconds"]
    ).start()
    try:
        _send_line(stdout, {"ready": {"urls": farm.urls, "secrets": farm.secrets, "hanging": farm.hanging_urls}})
        answers = {"times": farm.received_times, "counts": farm.request_counts}
        for line in stdin:
            if line.strip() == "stop":
                break
            _send_line(stdout, {"ok": answers[line.strip()]()})
    finally:
        farm.stop()


def _send_line(stream: TextIO, message: dict[str, Any]) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


# --------------------------------------------------------------------------- parent side


class RemoteFarm:
    """Handle on a partner farm running in a child process; see `start_farm`."""

    def __init__(self, process: subprocess.Popen[str], startup_timeout: float) -> None:
        self._process: subprocess.Popen[str] | None = process
        self._lock = threading.Lock()
        info = self._read("ready", startup_timeout)
        self.urls: list[str] = info["urls"]
        self.secrets: list[str] = info["secrets"]
        self.hanging_urls: list[str] = info["hanging"]
        hanging = set(self.hanging_urls)
        self.healthy_urls: list[str] = [url for url in self.urls if url not in hanging]

    def _read(self, key: str, timeout: float) -> Any:
        """Read one JSON line from the child and return its `key` entry."""
        process = self._process
        if process is None or process.stdout is None:
            raise RuntimeError("partner farm stopped")
        # One command is outstanding at a time, so the answer is never stuck in the buffer.
        line = _servers_module("child").read_line(process, f"the partner farm's {key!r} line", timeout)
        return json.loads(line)[key]

    def _ask(self, command: str) -> Any:
        with self._lock:
            if self._process is None or self._process.stdin is None:
                raise RuntimeError("partner farm stopped")
            self._process.stdin.write(command + "\n")
            self._process.stdin.flush()
            return self._read("ok", REPLY_TIMEOUT)

    def received_times(self) -> dict[str, float]:
        """Monotonic time each healthy partner received its first valid event, by URL."""
        times: dict[str, float] = self._ask("times")
        return times

    def request_counts(self) -> dict[str, int]:
        """How many requests each partner received (retries included), by URL."""
        counts: dict[str, int] = self._ask("counts")
        return counts

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the farm and wait for its process; safe to call twice."""
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return
        with suppress(OSError):
            process.communicate("stop\n", timeout=timeout)
        if process.poll() is None:
            process.kill()
            process.communicate()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_farm(
    n: int = 100,
    hanging: int | Iterable[int] = 10,
    *,
    secrets: str | Sequence[str] | None = None,
    hang_seconds: float | None = None,
    startup_timeout: float = REPLY_TIMEOUT,
) -> RemoteFarm:
    """Start `n` partner endpoints in a child process, `hanging` of them hanging.

    `hanging` is a count (spread evenly over the endpoints) or explicit indices.
    `secrets` is one `whsec_` secret for all, one per endpoint, or None for a fresh
    secret each (read them back from `.secrets`). Hanging endpoints answer nothing
    until `hang_seconds` (None: until stopped).
    """
    config = {
        "n": n,
        "hanging": hanging if isinstance(hanging, int) else list(hanging),
        "secrets": secrets if secrets is None or isinstance(secrets, str) else list(secrets),
        "hang_seconds": hang_seconds,
    }
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdin is not None
        process.stdin.write(json.dumps(config) + "\n")
        process.stdin.flush()
        return RemoteFarm(process, startup_timeout)
    except BaseException:
        process.kill()
        process.communicate()
        raise


# --------------------------------------------------------------------------- self-test


@dataclass(frozen=True)
class SignedPost:
    """One ready-to-send Standard Webhooks POST."""

    url: str
    body: bytes
    headers: dict[str, str]


def signed_post(url: str, secret: str, payload: Any) -> SignedPost:
    """Sign `payload` for `url` with `secret` the Standard Webhooks way."""
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook

    body = json.dumps(payload)
    msg_id = f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time())
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, tz=UTC), body)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }
    return SignedPost(url, body.encode(), headers)


@dataclass(frozen=True)
class Outcome:
    """What the client saw for one POST: a status code or an exception name."""

    url: str
    result: int | str
    seconds: float


def _fire_all(posts: Sequence[SignedPost], timeout: float) -> tuple[float, list[Outcome]]:
    """POST everything at once from one thread each; return start time and outcomes."""
    import requests

    started: list[float] = []
    barrier = threading.Barrier(len(posts), action=lambda: started.append(time.monotonic()))

    def fire(post: SignedPost) -> Outcome:
        barrier.wait()
        began = time.monotonic()
        try:
            response = requests.post(post.url, data=post.body, headers=post.headers, timeout=timeout)
            result: int | str = response.status_code
        except requests.RequestException as error:
            result = type(error).__name__
        return Outcome(post.url, result, time.monotonic() - began)

    with ThreadPoolExecutor(max_workers=len(posts)) as pool:
        outcomes = list(pool.map(fire, posts))
    return started[0], outcomes


def _ms(values: Sequence[float]) -> str:
    """min / median / p95 / max of `values` (seconds) in milliseconds."""
    if not values:
        return "n/a"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    parts = (ordered[0], statistics.median(ordered), p95, ordered[-1])
    return " / ".join(f"{1000 * v:.1f}" for v in parts) + " ms (min/median/p95/max)"


def selftest(n: int = 100, hanging: int = 10, timeout: float = 2.0) -> int:
    """Fire one signed POST at every endpoint concurrently and report; 0 if all as expected."""
    with start_farm(n, hanging) as farm:
        payload = {"type": "selftest.ping", "data": {}}
        posts = [signed_post(u, s, payload) for u, s in zip(farm.urls, farm.secrets, strict=True)]
        started, outcomes = _fire_all(posts, timeout)
        times = farm.received_times()
        healthy, stuck = set(farm.healthy_urls), set(farm.hanging_urls)
    received = [times[url] - started for url in healthy if url in times]
    answered = [o.seconds for o in outcomes if o.url in healthy and o.result == 200]
    timed_out = [o for o in outcomes if o.url in stuck and o.result == "ReadTimeout"]
    print(f"partner farm: {n} endpoints, {len(stuck)} hanging, client timeout {timeout}s")
    print(f"healthy received first event: {len(received)}/{len(healthy)} after {_ms(received)}")
    print(f"healthy answered 200:         {len(answered)}/{len(healthy)} in {_ms(answered)}")
    print(f"hanging timed out:            {len(timed_out)}/{len(stuck)}")
    ok = len(received) == len(answered) == len(healthy) and len(timed_out) == len(stuck)
    print("selftest", "passed" if ok else "FAILED")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: `--selftest [--n N] [--hanging K] [--timeout S]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--selftest", action="store_true", help="fire one POST at every endpoint and report")
    parser.add_argument("--serve", action="store_true", help="child mode: config and commands on stdin")
    parser.add_argument("--n", type=int, default=100, help="endpoints (default 100)")
    parser.add_argument("--hanging", type=int, default=10, help="endpoints that hang (default 10)")
    parser.add_argument("--timeout", type=float, default=2.0, help="client timeout in seconds (default 2)")
    args = parser.parse_args(argv)
    if args.serve:
        serve(sys.stdin, sys.stdout)
        return 0
    if not args.selftest:
        parser.print_help()
        return 2
    return selftest(args.n, args.hanging, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
