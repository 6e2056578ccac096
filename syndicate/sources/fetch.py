"""One bounded HTTP GET of a document syndicate does not control (the ``feed`` source's CMS feed, an actor),
and one bounded POST (an activity to a follower's inbox).

Nothing about the answer may cost more than the operator allowed:

- The body stops at ``max_bytes`` as decoded, so a compressed answer (a gzip
  bomb) counts at its real size; a ``Content-Length`` above it is refused
  before a byte is read. urllib3 (2.6 and later) decodes in bounded steps.
- The whole fetch, redirects and every byte included, ends at ``deadline``: a
  watchdog shuts the fetch's sockets down then, so a server that trickles its
  headers or its body cannot hold a build past it. ``timeout`` still bounds
  each single wait (connecting, each read).
- Redirects are followed here, at most ``MAX_REDIRECTS``, and only to the
  origin (scheme, host, port) of the URL asked for or to one the operator
  allowed: a feed cannot send syndicate to read some other server.

Every failure is a :class:`SourceError` naming the URL and the limit; the
fetch's connections are closed whatever happens.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import ConnectionPool, HTTPConnectionPool

from syndicate.config import SourceConfig
from syndicate.errors import SourceError

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
# What a failing transfer raises, once requests has had its say (a socket shut by the watchdog included).
TRANSFER_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


@dataclass(frozen=True)
class FetchLimits:
    """How far one fetch may go: each wait, the whole fetch, the body, and where redirects may lead."""

    timeout: float
    deadline: float
    max_bytes: int
    redirect_origins: frozenset[str] = frozenset()
    # Connect only to public addresses (no loopback, private, link-local ... network): for URLs that come
    # from requests syndicate did not ask for (a fediverse actor's), not for the operator's own.
    public_only: bool = False

    @classmethod
    def of(cls, source: SourceConfig) -> FetchLimits:
        """The limits ``[source]`` sets."""
        origins = frozenset(origin(url) for url in source.redirect_origins)
        return cls(source.timeout_seconds, source.deadline_seconds, source.max_feed_bytes, origins)


@dataclass(frozen=True)
class Fetched:
    """A whole answer: the URL it finally came from, the charset it declared (if any) and its decoded body."""

    url: str
    charset: str | None
    body: bytes


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url``, the port written out, so that equal origins compare equal."""
    parts = urlsplit(url)
    port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    return f"{parts.scheme}://{parts.hostname or ''}:{port}"


def fetch(session: requests.Session, url: str, limits: FetchLimits) -> Fetched:
    """GET ``url`` within ``limits`` (headers, cookies and proxies from ``session``); SourceError if it cannot."""
    with (
        _Watchdog(limits.deadline) as watchdog,
        contextlib.closing(_WatchedAdapter(watchdog, limits.public_only)) as adapter,
    ):
        try:
            return _follow(session, adapter, url, limits)
        except TRANSFER_ERRORS as exc:
            raise (
                watchdog.error(url) if watchdog.expired else SourceError(f"feed {url} could not be fetched: {exc}")
            ) from exc


@dataclass(frozen=True)
class Posted:
    """A server's answer to a POST: its status, the headers it sent, and the first bytes of its body."""

    status: int
    headers: dict[str, str]
    body: bytes


def post(session: requests.Session, url: str, body: bytes, headers: dict[str, str], limits: FetchLimits) -> Posted:
    """POST ``body`` to ``url`` within ``limits`` (no redirect followed; the answer's body read up to the cap).

    Raises :class:`SourceError` when no answer came (refused, timed out, a non-public address refused).
    """
    with (
        _Watchdog(limits.deadline) as watchdog,
        contextlib.closing(_WatchedAdapter(watchdog, limits.public_only)) as adapter,
    ):
        try:
            request = session.prepare_request(requests.Request("POST", url, data=body, headers=headers))
            with contextlib.closing(
                adapter.send(request, stream=True, timeout=(limits.timeout, limits.timeout))
            ) as answer:
                kept = bytearray()
                for chunk in answer.iter_content(CHUNK):
                    kept += chunk
                    if len(kept) >= limits.max_bytes:
                        break
                    watchdog.check(url)
                return Posted(answer.status_code, dict(answer.headers), bytes(kept[: limits.max_bytes]))
        except TRANSFER_ERRORS as exc:
            why = f"no answer within {limits.deadline:g} s" if watchdog.expired else f"no answer: {exc}"
            raise SourceError(f"{url}: {why}") from exc


def _follow(session: requests.Session, adapter: _WatchedAdapter, url: str, limits: FetchLimits) -> Fetched:
    """Follow redirects within the allowed origins, then read the answer."""
    allowed = {origin(url), *limits.redirect_origins}
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        with contextlib.closing(_get(session, adapter, current, limits.timeout)) as response:
            target = _redirect_target(response, url)
            if target is None:
                response.raise_for_status()
                return _read(response, url, limits, adapter.watchdog)
        _check_origin(url, current, target, allowed)
        current = target
    raise SourceError(f"feed {url} redirected more than {MAX_REDIRECTS} times (last to {current})")


def _get(session: requests.Session, adapter: HTTPAdapter, url: str, timeout: float) -> requests.Response:
    """One GET, streamed, sent through ``adapter`` with the session's settings; redirects are not followed."""
    request = session.prepare_request(requests.Request("GET", url))
    settings = session.merge_environment_settings(request.url, {}, True, None, None)
    verify = True if settings["verify"] is None else settings["verify"]
    return adapter.send(
        request,
        stream=True,
        timeout=(timeout, timeout),
        verify=verify,
        cert=settings["cert"],
        proxies=settings["proxies"],
    )


def _redirect_target(response: requests.Response, url: str) -> str | None:
    """Where a redirect points (made absolute), or None when the answer is not one."""
    if response.status_code not in REDIRECT_CODES:
        return None
    location = response.headers.get("location")
    if not location:
        raise SourceError(f"feed {url}: {response.url} answered {response.status_code} without a Location")
    return urljoin(response.url or url, location).split("#", 1)[0]


def _check_origin(url: str, current: str, target: str, allowed: set[str]) -> None:
    try:
        allowed_here = origin(target) in allowed
    except ValueError:  # a port that is no number
        allowed_here = False
    if not allowed_here:
        raise SourceError(
            f"feed {url}: redirect from {current} to {target} refused: another origin"
            " (add it to source.redirect_origins to allow it)"
        )


def _read(response: requests.Response, url: str, limits: FetchLimits, watchdog: _Watchdog) -> Fetched:
    """The decoded body, read up to the cap; refused early when the declared length is already over it."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise SourceError(f"feed {url} declares {declared} bytes, more than source.max_feed_bytes ({limits.max_bytes})")
    body = bytearray()
    for chunk in response.iter_content(CHUNK):
        body += chunk
        if len(body) > limits.max_bytes:
            raise SourceError(
                f"feed {url} is larger than source.max_feed_bytes ({limits.max_bytes} bytes); stopped reading there"
            )
        watchdog.check(url)
    # A body that ends with the connection would look whole when the watchdog ended it.
    watchdog.check(url)
    charset = response.encoding if "charset" in response.headers.get("content-type", "").lower() else None
    return Fetched(response.url, charset, bytes(body))


class _Watchdog:
    """Shuts down every socket of one fetch when its deadline passes, so that no wait outlasts it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._expired = threading.Event()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down at the deadline (at once if it has passed)."""
        with self._lock:
            self._sockets.append(sock)
            expired = self._expired.is_set()
        if expired:
            _shut_down(sock)

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self._expired.is_set()

    def error(self, url: str) -> SourceError:
        """The error of a fetch of ``url`` stopped by the deadline."""
        return SourceError(f"feed {url} did not arrive within source.deadline_seconds ({self.seconds:g} s)")

    def check(self, url: str) -> None:
        """Raise SourceError if the deadline has passed."""
        if self.expired:
            raise self.error(url)

    def _expire(self) -> None:
        with self._lock:
            self._expired.set()
            sockets = list(self._sockets)
        for sock in sockets:
            _shut_down(sock)


def _shut_down(sock: socket.socket) -> None:
    # The plain socket's shutdown, also under TLS: the blocked read sees the end of the stream and returns.
    # A socket already closed has no descriptor any more (-1), so a number reused since is never touched.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _WatchedHTTPConnection(HTTPConnection):
    """A connection that hands its socket to the fetch's watchdog as soon as it is connected."""

    def __init__(self, *args: Any, watchdog: _Watchdog, public_only: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.watchdog = watchdog
        self.public_only = public_only

    def _new_conn(self) -> socket.socket:
        """The socket; with ``public_only``, to the address checked (resolved once: a second lookup could
        answer otherwise), while the Host header and TLS still name the host."""
        if not self.public_only:
            return super()._new_conn()
        address = public_address(self._dns_host, self.port)
        try:
            return urllib3.util.connection.create_connection(
                (address, self.port), self.timeout, source_address=self.source_address,
                socket_options=self.socket_options,
            )  # fmt: skip
        except TimeoutError as exc:
            raise urllib3.exceptions.ConnectTimeoutError(self, f"connecting to {self.host} timed out") from exc
        except OSError as exc:
            raise urllib3.exceptions.NewConnectionError(self, f"could not connect to {self.host}: {exc}") from exc

    def connect(self) -> None:
        """Connect (and, for TLS, shake hands), then let the watchdog watch the socket."""
        super().connect()
        self.watchdog.watch(self.sock)


class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    """The TLS connection, watched."""


WATCHED: dict[type[Any], type[HTTPConnection]] = {
    HTTPConnection: _WatchedHTTPConnection,
    HTTPSConnection: _WatchedHTTPSConnection,
}


class _WatchedAdapter(HTTPAdapter):
    """The adapter of one fetch: the pools it opens make watched connections, directly or through a proxy.

    A connection class it does not know (a SOCKS proxy's) stays unwatched; the
    deadline is then still checked between the reads of the body.
    """

    def __init__(self, watchdog: _Watchdog, public_only: bool = False) -> None:
        super().__init__(max_retries=0)
        self.watchdog = watchdog
        self.public_only = public_only

    def get_connection_with_tls_context(
        self, request: requests.PreparedRequest, verify: Any, proxies: Any = None, cert: Any = None
    ) -> ConnectionPool:
        """The pool for ``request``, set to make watched connections."""
        pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
        if isinstance(pool, HTTPConnectionPool) and pool.ConnectionCls in WATCHED:
            pool.ConnectionCls = WATCHED[pool.ConnectionCls]
            pool.conn_kw["watchdog"] = self.watchdog
            pool.conn_kw["public_only"] = self.public_only
        return pool


class NotPublic(OSError):
    """A host that resolves to an address syndicate will not connect to on a stranger's word."""


def public_address(host: str, port: int | None) -> str:
    """The address to connect to for ``host``, if every address it resolves to is public (globally routable).

    Loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16, fe80::/10), shared
    (100.64/10), multicast, reserved and unspecified addresses are refused, as are IPv4 addresses written
    inside IPv6 ones (``::ffff:127.0.0.1``).
    """
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise NotPublic(f"{host} does not resolve: {exc}") from exc
    addresses = [str(info[4][0]) for info in found]
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        mapped = getattr(ip, "ipv4_mapped", None)
        if not ip.is_global or ip.is_multicast or (mapped is not None and not mapped.is_global):
            raise NotPublic(f"{host} resolves to {address}, not a public address")
    if not addresses:
        raise NotPublic(f"{host} resolves to nothing")
    return addresses[0]
