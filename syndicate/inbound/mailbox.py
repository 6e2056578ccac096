"""Reports read from a mailbox: a local Maildir, each message stored before it is moved away.

The MTA delivers the bounce and unsubscribe addresses into a Maildir (or a
mail client syncs one); each tick reads what is new, stores each message
(committed), and only then moves it into the ``[inbound] maildir_done``
folder. A crash between the two leaves the message where it was: the next
read stores the same bytes again, which the store recognises (one row), and
moves it then. Nothing is ever deleted.
"""

from __future__ import annotations

import contextlib
import logging
import mailbox
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr
from pathlib import Path

from syndicate.inbound.receive import Receiver

log = logging.getLogger(__name__)

READ_AT_MOST = 1000  # messages per read: a huge backlog is taken a slice per tick


class MaildirReader:
    """Reads one Maildir into the receiver."""

    def __init__(self, receiver: Receiver, path: Path, done: str) -> None:
        self.receiver, self.path, self.done = receiver, path, done

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
