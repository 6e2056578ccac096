"""Reports read from a mailbox (a local Maildir, an IMAP folder), each message stored before it is moved away.

The MTA delivers the bounce and unsubscribe addresses into a mailbox; each
tick reads what is new, stores each message (committed), and only then moves
it into the done folder (``[inbound] maildir_done``, ``[inbound.imap] done``).
A crash between the two leaves the message where it was: the next read
stores the same bytes again, which the store recognises (one row), and moves
it then. Nothing is ever deleted.

IMAP is spoken by imap-tools, over implicit TLS or STARTTLS only (the
certificate verified against the system's authorities or ``ca_file``), with
the credentials from the environment; messages are fetched with
``BODY.PEEK[]`` (their bytes exactly, not marked seen), a slice of
:data:`IMAP_SLICE` stored in one transaction and then moved with one
``UID MOVE``.
"""

from __future__ import annotations

import contextlib
import logging
import mailbox
import os
import ssl
from collections.abc import Callable
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any

from imap_tools import BaseMailBox, MailBox, MailBoxStartTls, MailMessage

from syndicate.config import ImapConfig, InboundConfig
from syndicate.errors import ConfigError
from syndicate.inbound.receive import Receiver

log = logging.getLogger(__name__)

READ_AT_MOST = 1000  # messages per read: a huge backlog is taken a slice per tick
IMAP_SLICE = 50  # messages stored in one transaction, then moved with one command


def mailboxes(receiver: Receiver, settings: InboundConfig) -> list[Callable[[], int]]:
    """The readers of the mailboxes ``[inbound]`` sets: a Maildir, an IMAP folder, both or none."""
    found: list[Callable[[], int]] = []
    if settings.maildir is not None:
        found.append(MaildirReader(receiver, settings.maildir, settings.maildir_done))
    if settings.imap.host:
        found.append(ImapReader(receiver, settings.imap))
    return found


class MaildirReader:
    """Reads one Maildir into the receiver."""

    def __init__(self, receiver: Receiver, path: Path, done: str) -> None:
        self.receiver, self.path, self.done = receiver, path, done

    def __repr__(self) -> str:
        return f"maildir {self.path}"

    def __call__(self) -> int:
        """Store and move what is new; return how many messages were read."""
        box = mailbox.Maildir(self.path, factory=None, create=True)
        done = box.get_folder(self.done) if self.done in box.list_folders() else box.add_folder(self.done)
        read = 0
        for key in list(box.iterkeys())[:READ_AT_MOST]:
            try:
                raw = box.get_bytes(key)
            except (KeyError, FileNotFoundError):
                continue  # moved meanwhile by another reader of the same box
            envelope_from, recipients = envelope(raw)
            self.receiver.store(raw, "maildir", envelope_from, recipients)
            done.add(raw)
            with contextlib.suppress(KeyError, FileNotFoundError):  # another reader moved it first
                box.remove(key)
            read += 1
        if read:
            log.info("read %d reports from %s", read, self.path)
        return read


class _Fetched(MailMessage):
    """A fetched message that keeps its bytes as the server gave them."""

    def __init__(self, fetch_data: list[Any]) -> None:
        self.raw: bytes = self._get_message_data_parts(fetch_data)[0]
        super().__init__(fetch_data)


class ImapReader:
    """Reads one IMAP folder into the receiver."""

    def __init__(
        self, receiver: Receiver, settings: ImapConfig, environ: Callable[[str], str | None] = os.environ.get
    ) -> None:
        self.receiver, self.settings, self.environ = receiver, settings, environ

    def credentials(self) -> tuple[str, str]:
        """The user name and password from the environment; :class:`ConfigError` if either is not set."""
        settings = self.settings
        user = self.environ(settings.username_env) if settings.username_env else None
        password = self.environ(settings.password_env) if settings.password_env else None
        if not user or not password:
            raise ConfigError("inbound.imap", "username_env and password_env must name variables that are set")
        return user, password

    def __repr__(self) -> str:
        return f"imap://{self.settings.host}:{self.settings.port}/{self.settings.folder}"

    def __call__(self) -> int:
        """Store and move what is new; return how many messages were read."""
        settings = self.settings
        user, password = self.credentials()
        with self._login(user, password) as box:
            if not box.folder.exists(settings.done):
                box.folder.create(settings.done)
            box.email_message_class = _Fetched
            read, waiting = 0, []
            for message in box.fetch(mark_seen=False, bulk=IMAP_SLICE, limit=READ_AT_MOST):
                waiting.append(message)
                if len(waiting) == IMAP_SLICE:
                    read += self._store_and_move(box, waiting)
                    waiting = []
            read += self._store_and_move(box, waiting)
        if read:
            log.info("read %d reports from imap://%s/%s", read, settings.host, settings.folder)
        return read

    def _login(self, user: str, password: str) -> BaseMailBox:
        box = self._connect()
        try:
            return box.login(user, password, initial_folder=self.settings.folder)
        except BaseException:
            box.client.shutdown()  # refused: the connection is closed here, not left to the collector
            raise

    def _connect(self) -> BaseMailBox:
        settings = self.settings
        context = ssl.create_default_context(cafile=settings.ca_file)
        if settings.security == "starttls":
            return MailBoxStartTls(settings.host, settings.port, settings.timeout_seconds, ssl_context=context)
        return MailBox(settings.host, settings.port, settings.timeout_seconds, ssl_context=context)

    def _store_and_move(self, box: BaseMailBox, messages: list[Any]) -> int:
        if not messages:
            return 0
        self.receiver.store_many("imap", [(m.raw, *envelope(m.raw), None) for m in messages])
        box.move([m.uid for m in messages if m.uid], self.settings.done)  # only once the reports are committed
        return len(messages)


def envelope(raw: bytes) -> tuple[str, list[str]]:
    """The envelope as the delivering MTA wrote it into the headers: Return-Path, and X-Original-To or
    Delivered-To (else To): a stored message keeps no envelope of its own."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    sender = parseaddr(str(headers.get("Return-Path", "")))[1]
    for name in ("X-Original-To", "Delivered-To", "To"):
        found = [address for _, address in getaddresses([str(v) for v in headers.get_all(name, [])]) if "@" in address]
        if found:
            return sender, found
    return sender, []
