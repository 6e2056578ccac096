"""The web app under waitress, on threads of its own, started and stopped by its owner.

``syndicate serve`` runs one and waits for a signal; ``syndicate run`` runs one
beside the scheduler. Stopping closes the listening socket first, lets the
requests in progress finish (up to a timeout), then closes every connection.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

import waitress

from syndicate.errors import ConfigError

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
STOP_TIMEOUT = 10.0


class WebServer:
    """A waitress server for ``wsgi`` on ``bind`` ("host:port"; port 0 picks a free one), or on ``sock``."""

    def __init__(self, wsgi: WsgiApp, bind: str = "", *, sock: socket.socket | None = None, threads: int = 8) -> None:
        self.wsgi = wsgi
        self.bind = bind
        self.sock = sock
        self.threads = threads
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.url = ""  # where it listens, once started: http://host:port

    def start(self) -> None:
        """Listen and serve in the background; a failure to listen is a :class:`ConfigError` on ``web.bind``."""
        sock = self.sock or listening_socket(self.bind)
        try:
            self._server = waitress.create_server(self.wsgi, sockets=[sock], threads=self.threads, ident="syndicate")
        except BaseException:
            sock.close()
            raise
        host, port = self._server.effective_host, self._server.effective_port
        self.url = f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.run, name="syndicate-web", daemon=True)
        self._thread.start()
        log.info("web pages served at %s", self.url)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop listening, let requests in progress finish, close the connections, and wait for the thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        # asyncore objects belong to the server's loop thread: close them from there, in order.
        _in_loop(server, lambda: _close_listener(server), timeout)
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=timeout)
        _in_loop(server, lambda: _close_all(server), timeout)
        thread.join(timeout)
        self._server = self._thread = None
        log.info("web server stopped")


def listening_socket(bind: str) -> socket.socket:
    """A socket bound to ``bind`` ("host:port", "[::1]:port"); closed again if binding fails."""
    host, _, port = bind.rpartition(":")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]") or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (OSError, ValueError) as exc:
        raise ConfigError("web.bind", f"cannot listen on {bind}: {exc}") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError("web.bind", f"cannot listen on {bind}: {exc.strerror or exc}") from exc
    return sock


def _in_loop(server: Any, action: Callable[[], None], timeout: float) -> None:
    """Run ``action`` in the server's loop thread and wait until it has run."""
    done = threading.Event()

    def run() -> None:
        try:
            action()
        finally:
            done.set()

    server.trigger.pull_trigger(run)
    done.wait(timeout)


def _close_listener(server: Any) -> None:
    server.accepting = False
    server.del_channel()
    server.socket.close()


def _close_all(server: Any) -> None:
    for channel in list(server._map.values()):
        channel.close()
