"""The inbound SMTP (or LMTP) listener: the organisation's MX forwards bounces and unsubscribes here.

Run by ``syndicate run`` when ``[inbound] bind`` is set, or alone by
``syndicate inbound serve``. It accepts mail only for the addresses that are
ours (the signed return paths, the unsubscribe address, ``[inbound]
addresses``) and refuses every other at RCPT. A message is answered ``250``
only once it is committed to the database; if the database cannot take it
the answer is ``451``, and the sending MTA tries again later. Processing
follows the commit, outside the SMTP dialogue: a report stored and not yet
processed (a crash in between) is processed by the next tick.

aiosmtpd serves the protocol, in a thread of its own; the database work runs
in a small pool of threads, so a slow commit delays only that one session.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from syndicate.errors import ConfigError
from syndicate.inbound.receive import Receiver

log = logging.getLogger(__name__)


class _Handler:
    """aiosmtpd's hooks: refuse what is not ours, commit what is, then answer."""

    def __init__(self, receiver: Receiver, source: str, executor: ThreadPoolExecutor) -> None:
        self.receiver, self.source, self.executor = receiver, source, executor

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if not self.receiver.addresses.accepts(address):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        raw = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "surrogateescape")
        loop = asyncio.get_running_loop()
        sender = envelope.mail_from or ""
        try:
            report_id, _ = await loop.run_in_executor(
                self.executor, self.receiver.store, raw, self.source, sender, list(envelope.rcpt_tos)
            )
        except Exception as exc:
            log.error("an inbound report could not be stored (the sender will try again): %s", exc)
            return self._each(envelope, "451 4.3.0 Cannot store the message now; try again later")
        loop.run_in_executor(self.executor, self._process, report_id)
        return self._each(envelope, f"250 2.0.0 Stored as report {report_id}")

    def _each(self, envelope: Any, reply: str) -> str:
        """LMTP answers DATA once per recipient (RFC 2033); SMTP once."""
        return "\r\n".join([reply] * len(envelope.rcpt_tos)) if self.source == "lmtp" else reply

    def _process(self, report_id: int) -> None:
        try:
            self.receiver.process(report_id)
        except Exception:
            log.exception("report %d is stored but could not be processed (the next tick tries again)", report_id)


class Listener:
    """The listener on ``bind`` ("host:port"; port 0 picks a free one, see :attr:`port`), in a thread of its own."""

    def __init__(self, receiver: Receiver, bind: str, lmtp: bool = False, max_bytes: int = 10_000_000) -> None:
        host, _, port = bind.rpartition(":")
        self.host, self.requested = host.strip("[]"), int(port)
        self.lmtp, self.max_bytes = lmtp, max_bytes
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="inbound-store")
        self.handler = _Handler(receiver, "lmtp" if lmtp else "smtp", self.executor)
        self.port = self.requested
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None

    def _protocol(self) -> SMTP:
        kind = LMTP if self.lmtp else SMTP
        return kind(self.handler, data_size_limit=self.max_bytes, enable_SMTPUTF8=True, hostname=self.host)

    def start(self) -> None:
        """Listen (raises ConfigError when the address cannot be had)."""
        loop = asyncio.new_event_loop()
        try:
            self._server = loop.run_until_complete(loop.create_server(self._protocol, self.host, self.requested))
        except OSError as exc:
            loop.close()
            raise ConfigError("inbound.bind", f"cannot listen on {self.host}:{self.requested}: {exc}") from exc
        self._loop = loop
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._thread = threading.Thread(target=loop.run_forever, name="inbound-listener", daemon=True)
        self._thread.start()
        log.info("inbound %s listener on %s:%d", "LMTP" if self.lmtp else "SMTP", self.host, self.port)

    def stop(self) -> None:
        """Stop listening and close the sessions."""
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def close() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()
        self.executor.shutdown(wait=True)  # what was stored is processed before the database goes
        self._loop = self._server = None
