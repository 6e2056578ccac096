"""Real HTTP servers on loopback for syndicate's tests and benchmarks.

- `LoopbackHTTPServer`: a threaded HTTP/1.1 server on 127.0.0.1 (ephemeral port) that
  records every request and answers from a script of `Reply` objects, then a default.
- `HubServer`: a WebSub hub stub that records publish pings.
- `PartnerServer`: a partner site receiving Standard Webhooks deliveries; it verifies
  signatures with the independent `standardwebhooks` library and de-duplicates by
  `webhook-id` like a real receiver.
- `PartnerFarm`: many partner servers, one port each, sharing one accept thread.
- `refused_url()`: a URL on which connections are refused.

Every server is a context manager. Stopping is fast even while handlers hang, trickle or
wait for a slow client: hanging handlers are woken, open connections are shut down and
every handler thread is joined, so no thread or socket outlives the `with` block.

Times are `time.monotonic()` values (CLOCK_MONOTONIC on Linux, the same clock in every
process on the machine); `RecordedRequest.wall` has the `time.time()` value too.
"""

from __future__ import annotations

import contextlib
import json
import secrets as _secrets
import selectors
import socket
import socketserver
import sys
import threading
import time
from base64 import b64encode
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

HOST = "127.0.0.1"
JOIN_TIMEOUT = 5.0
_NO_BODY_CODES = frozenset({204, 304})

ReplyKind = Literal["ok", "status", "redirect", "hang", "close", "trickle", "slow_read", "stream", "trickle_head"]


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Reply:
    """One scripted way to answer a request. Build one with the class methods.

    `ok` (the default) hands the request to the server's own processing (hub: record
    the ping; partner: verify, de-duplicate, accept). `trickle`, `slow_read` and a
    released `hang` also process the request; `status`, `redirect` and `close` do not.
    """

    kind: ReplyKind
    code: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    interval: float = 0.0
    chunk: int = 1
    seconds: float | None = None
    total: int = 0

    @classmethod
    def ok(cls) -> Reply:
        """Process the request normally."""
        return cls("ok")

    @classmethod
    def status(cls, code: int, headers: Mapping[str, str] | None = None, body: bytes = b"") -> Reply:
        """Answer `code` with optional headers and body, without processing the request."""
        return cls("status", code=code, headers=tuple((headers or {}).items()), body=body)

    @classmethod
    def retry_after(cls, code: int = 429, seconds: int | None = None, *, date: datetime | None = None) -> Reply:
        """Answer `code` with `Retry-After` as delay-seconds or as an HTTP date."""
        if (seconds is None) == (date is None):
            raise ValueError("give exactly one of seconds and date")
        value = str(seconds) if date is None else format_datetime(date, usegmt=True)
        return cls.status(code, {"Retry-After": value})

    @classmethod
    def redirect(cls, code: int = 301, location: str = "/moved") -> Reply:
        """Answer a redirect; a `location` path is made absolute on this same server."""
        return cls("redirect", code=code, headers=(("Location", location),))

    @classmethod
    def hang(cls, seconds: float | None = None) -> Reply:
        """Read the request, then answer nothing until `release()`, `seconds`, or stop.

        Released or timed out, the request is processed and answered normally (as a
        slow real server would, even if the client gave up); on stop the connection
        is closed without an answer.
        """
        return cls("hang", seconds=seconds)

    @classmethod
    def close(cls) -> Reply:
        """Read the request, then close the connection without answering."""
        return cls("close")

    @classmethod
    def trickle(cls, body: bytes = b'{"status": "received"}', interval: float = 0.05) -> Reply:
        """Process the request, send status and headers, then one body byte per `interval`."""
        return cls("trickle", body=body, interval=interval)

    @classmethod
    def stream(cls, chunk: bytes, total: int, headers: Mapping[str, str] | None = None) -> Reply:
        """Answer 200 with `headers`, then send `chunk` again and again until `total` bytes went or the client left.

        No Content-Length is added (give one in `headers` to declare a length): the body ends
        when the server closes the connection. The bytes that left are counted in the
        request's `sent`. The request is not processed.
        """
        return cls("stream", headers=tuple((headers or {}).items()), body=chunk, total=total)

    @classmethod
    def trickle_head(cls, interval: float = 0.05, total: int = 60_000) -> Reply:
        """Send a status line, then one header a byte per `interval`, never ending the head.

        It stops after `total` bytes (under http.client's limit of a header line), when the
        client leaves or the server stops. The request is not processed.
        """
        return cls("trickle_head", interval=interval, total=total)

    @classmethod
    def slow_read(cls, interval: float = 0.01, chunk: int = 1) -> Reply:
        """Read the request body `chunk` bytes per `interval`, then process it normally.

        The answer is delayed by about len(body) / chunk * interval. A client only feels
        back-pressure while sending if its body outgrows the socket buffers (~100 KB+).
        """
        return cls("slow_read", interval=interval, chunk=chunk)


@dataclass(frozen=True)
class Response:
    """What a server's own processing answers."""

    code: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass
class RecordedRequest:
    """One request as the server received it. Header names are lower-cased.

    `status` is the code answered, set just before the answer is sent; it stays None
    while the request hangs and when the server closed the connection instead. For a
    `stream` or `trickle_head` reply, `sent` counts the bytes sent after the head and
    `ended` turns true once the server stopped sending (all sent, the client left, or stop).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    wall: float
    reply: str
    status: int | None = None
    sent: int = 0
    ended: bool = False

    def header(self, name: str) -> str | None:
        """Return a header's value by case-insensitive name, or None."""
        return self.headers.get(name.lower())

    def form(self) -> dict[str, list[str]]:
        """Parse the body as `application/x-www-form-urlencoded`."""
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def json(self) -> Any:
        """Parse the body as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Ping:
    """A publish ping accepted by the hub."""

    topic: str
    at: float
    request: RecordedRequest


@dataclass(frozen=True)
class Delivery:
    """A webhook whose signature verified. `secret_index` tells which secret matched."""

    webhook_id: str
    payload: Any
    secret_index: int
    request: RecordedRequest

    @property
    def at(self) -> float:
        """When the request arrived (monotonic)."""
        return self.request.at


@dataclass(frozen=True)
class Rejection:
    """A webhook refused by the partner, with the status answered and why."""

    reason: str
    status: int
    request: RecordedRequest


def refused_url(path: str = "/") -> str:
    """Return a loopback URL whose port was bound then closed, so connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    return f"http://{HOST}:{port}{path}"


def http_date(seconds_from_now: float = 0.0) -> str:
    """Return an IMF-fixdate HTTP date `seconds_from_now` from now (for Retry-After)."""
    return formatdate(time.time() + seconds_from_now, usegmt=True)


def new_secret() -> str:
    """Return a fresh random Standard Webhooks secret in `whsec_<base64>` form."""
    return "whsec_" + b64encode(_secrets.token_bytes(24)).decode()


# --------------------------------------------------------------------------- plumbing


class _HTTPServer(ThreadingHTTPServer):
    """stdlib threaded server that tracks its connections so it can stop them."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, owner: LoopbackHTTPServer) -> None:
        self.owner = owner
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._conn_lock = threading.Lock()
        super().__init__((HOST, 0), _Handler)
        self.socket.setblocking(False)

    def server_bind(self) -> None:
        """Bind without the reverse DNS lookup `HTTPServer.server_bind` does."""
        socketserver.TCPServer.server_bind(self)
        self.server_name = HOST
        self.server_port = self.server_address[1]

    def accept_one(self) -> None:
        """Accept one pending connection, if any, and serve it on its own thread."""
        try:
            request, client_address = self.get_request()
        except OSError:  # nothing pending after all, or the listener was closed
            return
        self.process_request(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection on a named daemon thread that `close()` joins."""
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"loopback-http-{self.server_port}",
            daemon=True,
        )
        with self._conn_lock:
            self._connections[request] = thread
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._connections.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Record the handler's exception instead of printing a traceback."""
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, ConnectionError):
            self.owner.errors.append(error)

    def interrupt(self) -> None:
        """Shut down every open connection so blocked reads and writes return."""
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close the listener and join every handler thread."""
        self.server_close()
        deadline = time.monotonic() + JOIN_TIMEOUT
        with self._conn_lock:
            threads = list(self._connections.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t for t in threads if t.is_alive()]
        if stuck:
            raise RuntimeError(f"{len(stuck)} handler thread(s) did not stop")


class _Acceptor:
    """One thread accepting connections for any number of listening servers."""

    def __init__(self, servers: Sequence[_HTTPServer]) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        for server in servers:
            self._selector.register(server.socket, selectors.EVENT_READ, server)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name="loopback-http-accept")
        self._thread.daemon = True

    def start(self) -> None:
        """Start accepting."""
        self._thread.start()

    def _run(self) -> None:
        while True:
            for key, _ in self._selector.select():
                if key.data is None:
                    return
                key.data.accept_one()

    def stop(self) -> None:
        """Stop accepting, join the thread and close the selector."""
        if self._thread.is_alive():
            self._wake_w.send(b"x")
            self._thread.join(JOIN_TIMEOUT)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the owning `LoopbackHTTPServer`."""

    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the server records requests itself."""

    def _dispatch(self) -> None:
        self.server.owner.dispatch(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


def _headers(handler: BaseHTTPRequestHandler) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in handler.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _read_chunked(rfile: BufferedIOBase) -> bytes | None:
    parts: list[bytes] = []
    while True:
        line = rfile.readline(65537)
        if not line:
            return None
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        parts.append(rfile.read(size))
        rfile.readline(3)


def _read_slowly(rfile: BufferedIOBase, length: int, reply: Reply, stopping: threading.Event) -> bytes | None:
    data = bytearray()
    while len(data) < length:
        if stopping.wait(reply.interval):
            return None
        chunk = rfile.read(min(reply.chunk, length - len(data)))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _read_body(handler: _Handler, reply: Reply, stopping: threading.Event) -> bytes | None:
    """Read the request body; None if the client went away or the server is stopping."""
    rfile = handler.rfile
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        return _read_chunked(rfile)
    length = int(handler.headers.get("Content-Length") or 0)
    if reply.kind == "slow_read":
        return _read_slowly(rfile, length, reply, stopping)
    data = rfile.read(length)
    return data if len(data) == length else None


def _send_head(handler: _Handler, response: Response, length: int) -> None:
    handler.send_response(response.code)
    for name, value in response.headers:
        handler.send_header(name, value)
    if response.code not in _NO_BODY_CODES:
        handler.send_header("Content-Length", str(length))
    handler.end_headers()


def _send(handler: _Handler, response: Response) -> None:
    _send_head(handler, response, len(response.body))
    if handler.command != "HEAD" and response.code not in _NO_BODY_CODES:
        handler.wfile.write(response.body)


def _send_trickled(handler: _Handler, response: Response, reply: Reply, stopping: threading.Event) -> bool:
    """Send the head at once, then the body byte by byte; False if stopped midway."""
    _send_head(handler, response, len(reply.body))
    for index in range(len(reply.body)):
        if stopping.wait(reply.interval):
            return False
        handler.wfile.write(reply.body[index : index + 1])
    return True


def _send_endless(handler: _Handler, reply: Reply, record: RecordedRequest, stopping: threading.Event) -> None:
    """Carry out a `stream` or `trickle_head` reply, counting the bytes sent after the head."""
    with contextlib.suppress(OSError):
        if reply.kind == "stream":
            record.status = reply.code
            handler.send_response(reply.code)
            for name, value in reply.headers:
                handler.send_header(name, value)
            handler.send_header("Connection", "close")
            handler.end_headers()
            _send_pieces(handler, reply.body, reply.total, record, lambda: stopping.is_set())
        else:
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            _send_pieces(handler, b"a", reply.total, record, lambda: stopping.wait(reply.interval))


def _send_pieces(
    handler: _Handler, piece: bytes, total: int, record: RecordedRequest, stop: Callable[[], bool]
) -> None:
    """Send `piece` until `total` bytes went or `stop()`; a client that left raises OSError."""
    while record.sent < total and not stop():
        part = piece[: total - record.sent]
        handler.wfile.write(part)
        record.sent += len(part)


# --------------------------------------------------------------------------- servers


class LoopbackHTTPServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 answering from a script of `Reply`s.

    Requests take scripted replies in arrival order (`queue`), then the default
    (`set_default`, initially `Reply.ok()`). Subclasses override `process`.

        with LoopbackHTTPServer() as server:
            server.queue(Reply.status(503))
            requests.get(server.url)          # 503
            requests.get(server.url)          # 200 from process()
            assert len(server.requests) == 2
    """

    path = "/"

    def __init__(self, path: str | None = None) -> None:
        self.path = path or self.path
        self.errors: list[BaseException] = []
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._script: deque[Reply] = deque()
        self._default = Reply.ok()
        self._release_generation = 0
        self._hanging = 0
        self._server: _HTTPServer | None = None
        self._port: int | None = None
        self._acceptor: _Acceptor | None = None

    # -- lifecycle

    def start(self) -> Self:
        """Bind an ephemeral port and start serving; returns self."""
        self._acceptor = _Acceptor([self._bind()])
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop serving: wake hanging handlers, close connections, join all threads."""
        if self._acceptor is not None:
            self._acceptor.stop()
            self._acceptor = None
        self._interrupt()
        self._close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _bind(self) -> _HTTPServer:
        if self._server is None:
            self._server = _HTTPServer(self)
            self._port = self._server.server_port
        return self._server

    def _interrupt(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._server is not None:
            self._server.interrupt()

    def _close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()

    # -- addresses

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>` of the server (still known after it stopped)."""
        if self._port is None:
            raise RuntimeError("server not started")
        return f"http://{HOST}:{self._port}"

    @property
    def url(self) -> str:
        """The URL clients should use (base URL plus the server's path)."""
        return self.url_for(self.path)

    def url_for(self, path: str) -> str:
        """Absolute URL for `path` on this server."""
        return self.base_url + path

    # -- script

    def queue(self, *replies: Reply) -> None:
        """Append replies that the next requests take, in order, before the default."""
        with self._cond:
            self._script.extend(replies)

    def set_default(self, reply: Reply) -> None:
        """Set the reply used once the script is used up."""
        with self._cond:
            self._default = reply

    def clear_script(self) -> None:
        """Drop the replies not yet used."""
        with self._cond:
            self._script.clear()

    def release(self) -> None:
        """Let every request hanging now go on to be processed and answered."""
        with self._cond:
            self._release_generation += 1
            self._cond.notify_all()

    def _next_reply(self) -> Reply:
        with self._cond:
            return self._script.popleft() if self._script else self._default

    # -- records

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order."""
        with self._cond:
            return list(self._requests)

    @property
    def hanging(self) -> int:
        """How many requests are hanging right now."""
        with self._cond:
            return self._hanging

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """Requests whose path (without query) is `path`."""
        return [r for r in self.requests if urlsplit(r.path).path == path]

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Block until `predicate()` holds; raise TimeoutError after `timeout` seconds."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise TimeoutError(f"condition not met within {timeout}s")

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least `count` requests arrived; return them."""
        self.wait_until(lambda: len(self._requests) >= count, timeout)
        return self.requests

    def _record(self, handler: _Handler, body: bytes, reply: Reply) -> RecordedRequest:
        record = RecordedRequest(
            method=handler.command,
            path=handler.path,
            headers=_headers(handler),
            body=body,
            at=time.monotonic(),
            wall=time.time(),
            reply=reply.kind,
        )
        self._changed(lambda: self._requests.append(record))
        return record

    def _changed(self, update: Callable[[], object]) -> None:
        """Apply `update` under the lock and wake `wait_until` callers."""
        with self._cond:
            update()
            self._cond.notify_all()

    # -- request handling

    def dispatch(self, handler: _Handler) -> None:
        """Answer one request (called on the connection's thread)."""
        reply = self._next_reply()
        try:
            body = _read_body(handler, reply, self._stopping)
            answered = body is not None and self._act(handler, reply, body)
        except (OSError, ValueError):
            answered = False
        if not answered:
            handler.close_connection = True

    def _act(self, handler: _Handler, reply: Reply, body: bytes) -> bool:
        """Record the request and carry out `reply`; False if the connection must close."""
        record = self._record(handler, body, reply)
        if reply.kind in ("stream", "trickle_head"):
            _send_endless(handler, reply, record, self._stopping)
            self._changed(lambda: setattr(record, "ended", True))
            return False
        if reply.kind == "close" or (reply.kind == "hang" and not self._hang(reply.seconds)):
            return False
        response = self._canned(reply) if reply.kind in ("status", "redirect") else self.process(record)
        if reply.kind == "trickle" and response.code in _NO_BODY_CODES:
            response = Response(200, response.headers)
        self._changed(lambda: setattr(record, "status", response.code))
        if reply.kind == "trickle":
            return _send_trickled(handler, response, reply, self._stopping)
        _send(handler, response)
        return True

    def _canned(self, reply: Reply) -> Response:
        headers = reply.headers
        if reply.kind == "redirect":
            location = reply.headers[0][1]
            headers = (("Location", self.url_for(location) if location[:1] == "/" else location),)
        return Response(reply.code, headers, reply.body)

    def _hang(self, seconds: float | None) -> bool:
        """Wait for release, `seconds` or stop; False if the server is stopping."""
        deadline = None if seconds is None else time.monotonic() + seconds
        with self._cond:
            generation = self._release_generation
            self._hanging += 1
            self._cond.notify_all()
            try:
                while generation == self._release_generation and not self._stopping.is_set():
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    self._cond.wait(remaining)
            finally:
                self._hanging -= 1
        return not self._stopping.is_set()

    def process(self, request: RecordedRequest) -> Response:
        """Answer a request taking the normal path; subclasses override. Default: 200."""
        return Response(200)

    def _wrong_target(self, request: RecordedRequest) -> Response | None:
        """404 for another path, 405 for a method other than POST, else None."""
        if urlsplit(request.path).path != self.path:
            return Response(404, body=b"not found")
        if request.method != "POST":
            return Response(405, (("Allow", "POST"),), b"method not allowed")
        return None


class HubServer(LoopbackHTTPServer):
    """A WebSub hub stub recording publish pings (`hub.mode=publish`, `hub.url`).

    `hub.topic` is accepted too, as some hubs do; several topics in one ping are all
    recorded, and a topic named both ways once. Answers 204 on success, 400 for a malformed ping, 415 for a body that is
    not form-encoded.

        with HubServer() as hub:
            hub.fail_first(2, status=503)          # or drop=True to close instead
            ...publisher pings hub.url...
            assert hub.pings == ["https://example.org/feed.xml"]
            assert [r.status for r in hub.requests] == [503, 503, 204]
    """

    path = "/hub"

    def __init__(self, path: str | None = None) -> None:
        super().__init__(path)
        self._pings: list[Ping] = []

    @property
    def pings(self) -> list[str]:
        """Topics of the accepted publish pings, in order."""
        with self._cond:
            return [ping.topic for ping in self._pings]

    @property
    def published(self) -> list[Ping]:
        """Accepted publish pings with their times and requests."""
        with self._cond:
            return list(self._pings)

    def fail_first(
        self,
        count: int,
        status: int = 503,
        *,
        drop: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Fail the next `count` requests with `status`, or by closing if `drop`."""
        reply = Reply.close() if drop else Reply.status(status, headers)
        self.queue(*([reply] * count))

    def process(self, request: RecordedRequest) -> Response:
        """Record a well-formed publish ping and answer 204."""
        problem = self._wrong_target(request) or _form_problem(request)
        if problem is not None:
            return problem
        form = request.form()
        # A topic named both ways (hub.url and hub.topic, as publishers do for every hub's sake) is one topic.
        topics = list(dict.fromkeys(form.get("hub.url", []) + form.get("hub.topic", [])))
        self._changed(lambda: self._pings.extend(Ping(t, request.at, request) for t in topics))
        return Response(204)


def _form_problem(request: RecordedRequest) -> Response | None:
    ctype = (request.header("content-type") or "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return Response(415, body=b"expected application/x-www-form-urlencoded")
    form = request.form()
    if form.get("hub.mode") != ["publish"]:
        return Response(400, body=b"hub.mode must be publish")
    if not form.get("hub.url", []) + form.get("hub.topic", []):
        return Response(400, body=b"hub.url missing")
    return None


class PartnerServer(LoopbackHTTPServer):
    """A partner site receiving Standard Webhooks deliveries on POST `url`.

    A request taking the normal path is verified with `standardwebhooks` against each
    configured secret (accepted if any matches: key rotation), refused with 401 if none
    does (400 if the verified body is not JSON), then de-duplicated by `webhook-id`:
    the first delivery of an id lands in `accepted`, later ones in `duplicates`; both
    are answered `ok_status`. Scripted faults answer before any of this, so a faulted
    id is not marked as processed.

        secret = new_secret()
        with PartnerServer(secret) as partner:
            partner.queue(Reply.retry_after(429, 2), Reply.hang())
            partner.set_default(Reply.ok())
            ...sender posts to partner.url...
            partner.release()
            assert [d.webhook_id for d in partner.accepted] == ["msg_1"]
    """

    path = "/webhook"

    def __init__(self, secrets: str | Sequence[str], *, path: str | None = None, ok_status: int = 200) -> None:
        super().__init__(path)
        self.ok_status = ok_status
        self._hooks = _webhooks(secrets)
        self._seen: set[str] = set()
        self._accepted: list[Delivery] = []
        self._duplicates: list[Delivery] = []
        self._rejected: list[Rejection] = []

    def set_secrets(self, secrets: str | Sequence[str]) -> None:
        """Replace the secrets used to verify from now on."""
        hooks = _webhooks(secrets)
        with self._cond:
            self._hooks = hooks

    @property
    def accepted(self) -> list[Delivery]:
        """First deliveries of each `webhook-id`, in arrival order."""
        with self._cond:
            return list(self._accepted)

    @property
    def duplicates(self) -> list[Delivery]:
        """Verified deliveries of an id already processed."""
        with self._cond:
            return list(self._duplicates)

    @property
    def rejected(self) -> list[Rejection]:
        """Requests refused (bad signature, bad JSON, wrong path or method)."""
        with self._cond:
            return list(self._rejected)

    @property
    def first_accepted_at(self) -> float | None:
        """Monotonic time of the first accepted delivery, or None."""
        with self._cond:
            return self._accepted[0].at if self._accepted else None

    def process(self, request: RecordedRequest) -> Response:
        """Verify, de-duplicate and accept a delivery (JSON, or an Atom entry document kept as bytes)."""
        problem = self._wrong_target(request)
        if problem is not None:
            return self._reject(request, problem.body.decode(), problem)
        verified = self._verify(request)
        if isinstance(verified, str):
            return self._reject(request, verified, Response(401, body=b"invalid signature"))
        if (request.header("content-type") or "").startswith("application/atom+xml"):
            payload: Any = request.body  # an Atom entry document, kept as it came
        else:
            try:
                payload = request.json()
            except ValueError:
                return self._reject(request, "body is not JSON", Response(400, body=b"bad json"))
        self._accept(Delivery(request.headers["webhook-id"], payload, verified, request))
        return Response(self.ok_status)

    def _verify(self, request: RecordedRequest) -> int | str:
        """Index of the first secret that verifies, or the last verification error."""
        with self._cond:
            hooks = list(self._hooks)
        reason = "no secret"
        for index, hook in enumerate(hooks):
            try:
                hook.verify(request.body, request.headers, json_parse=False)
            except (WebhookVerificationError, ValueError) as error:
                reason = f"{type(error).__name__}: {error}"
            else:
                return index
        return reason

    def _accept(self, delivery: Delivery) -> None:
        def update() -> None:
            if delivery.webhook_id in self._seen:
                self._duplicates.append(delivery)
            else:
                self._seen.add(delivery.webhook_id)
                self._accepted.append(delivery)

        self._changed(update)

    def _reject(self, request: RecordedRequest, reason: str, response: Response) -> Response:
        rejection = Rejection(reason, response.code, request)
        self._changed(lambda: self._rejected.append(rejection))
        return response


def _webhooks(secrets: str | Sequence[str]) -> list[Webhook]:
    values = [secrets] if isinstance(secrets, str) else list(secrets)
    if not values:
        raise ValueError("a PartnerServer needs at least one secret")
    return [Webhook(value) for value in values]


class PartnerFarm:
    """Many `PartnerServer`s on loopback, one port each, `hanging` of them hanging.

    Separate ports are closer to separate partner sites than paths on one port: each
    partner gets its own TCP connections and connection-pool entry in the sender, so
    nothing is shared or serialised that would not be in production. One thread
    accepts for all ports; each connection gets its own handler thread, so hundreds of
    concurrent deliveries are served in parallel. Hanging partners read the request
    and answer nothing until `hang_seconds` (None: until stop), so the sender times out.

        with PartnerFarm(100, hanging=10) as farm:
            ...sender posts one event to each of farm.urls, signed with farm.secrets[i]...
            times = farm.received_times()   # url -> monotonic time of first delivery
    """

    def __init__(
        self,
        n: int,
        hanging: int | Iterable[int] = 0,
        *,
        secrets: str | Sequence[str] | None = None,
        hang_seconds: float | None = None,
    ) -> None:
        self.secrets = _farm_secrets(n, secrets)
        self.hanging_indices = _spread(n, hanging)
        self.partners = [PartnerServer(secret) for secret in self.secrets]
        for index in self.hanging_indices:
            self.partners[index].set_default(Reply.hang(hang_seconds))
        self._acceptor: _Acceptor | None = None

    def start(self) -> Self:
        """Bind every port and start the shared accept thread; returns self."""
        servers = [partner._bind() for partner in self.partners]
        self._acceptor = _Acceptor(servers)
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop accepting, wake every handler at once, then join them all."""
        if self._acceptor is not None:
            self._acceptor.stop()
            self._acceptor = None
        for partner in self.partners:
            partner._interrupt()
        for partner in self.partners:
            partner._close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def urls(self) -> list[str]:
        """Every partner's webhook URL, in index order."""
        return [partner.url for partner in self.partners]

    @property
    def hanging_urls(self) -> list[str]:
        """URLs of the partners that hang."""
        return [self.partners[i].url for i in sorted(self.hanging_indices)]

    @property
    def healthy_urls(self) -> list[str]:
        """URLs of the partners that answer."""
        return [p.url for i, p in enumerate(self.partners) if i not in self.hanging_indices]

    def received_times(self) -> dict[str, float]:
        """Monotonic time of each healthy partner's first accepted delivery, by URL."""
        times = {p.url: p.first_accepted_at for p in self.partners}
        healthy = set(self.healthy_urls)
        return {url: at for url, at in times.items() if at is not None and url in healthy}

    def request_counts(self) -> dict[str, int]:
        """How many requests each partner received, by URL."""
        return {partner.url: len(partner.requests) for partner in self.partners}


def _farm_secrets(n: int, secrets: str | Sequence[str] | None) -> list[str]:
    if secrets is None:
        return [new_secret() for _ in range(n)]
    if isinstance(secrets, str):
        return [secrets] * n
    if len(secrets) != n:
        raise ValueError(f"need {n} secrets, got {len(secrets)}")
    return list(secrets)


def _spread(n: int, hanging: int | Iterable[int]) -> frozenset[int]:
    """Indices that hang: `hanging` itself, or that many spread evenly over `n`."""
    if isinstance(hanging, int):
        if not 0 <= hanging <= n:
            raise ValueError(f"hanging must be between 0 and {n}")
        return frozenset(i * n // hanging for i in range(hanging)) if hanging else frozenset()
    indices = frozenset(hanging)
    if any(not 0 <= i < n for i in indices):
        raise ValueError(f"hanging indices must be in range({n})")
    return indices


__all__ = [
    "HOST",
    "Delivery",
    "HubServer",
    "LoopbackHTTPServer",
    "PartnerFarm",
    "PartnerServer",
    "Ping",
    "RecordedRequest",
    "Rejection",
    "Reply",
    "Response",
    "http_date",
    "new_secret",
    "refused_url",
]
