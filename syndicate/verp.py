"""VERP: each message's envelope sender names its delivery, signed, so a bounce maps back to it.

With ``[email] return_path = "bounces@bounces.example.org"``, delivery 1234 goes
out with the envelope sender ``bounces+1234.k3j5x7q2mf@bounces.example.org``.
Whatever comes back to that address (a DSN from the receiving side, an
auto-reply, a feedback report that quotes the original envelope) names its
delivery even when the report's body is garbled, and the tag (an HMAC of the
id under the site's secret, ten base-32 characters) means nobody can make up
an address that maps to someone else's delivery: a forged report changes
nothing. Local parts are compared without regard to case: some MTAs lower it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable

TAG_LENGTH = 10  # base-32 characters: 50 bits of HMAC
MAX_ID = 2**63 - 1


class ReturnPath:
    """Makes and reads the signed return path of one site (its keys: the link secret, current and earlier)."""

    def __init__(self, address: str, keys: Iterable[bytes]) -> None:
        local, _, domain = address.rpartition("@")
        self.local, self.domain = local, domain.lower()
        self.keys = tuple(keys)
        self._shape = re.compile(
            rf"{re.escape(local)}\+(?P<id>[1-9][0-9]{{0,18}})\.(?P<tag>[a-z2-7]{{{TAG_LENGTH}}})@{re.escape(self.domain)}",
            re.IGNORECASE | re.ASCII,
        )

    @property
    def address(self) -> str:
        """The plain return path (what a report without a delivery is sent to)."""
        return f"{self.local}@{self.domain}"

    def sender(self, delivery_id: int) -> str:
        """The envelope sender of ``delivery_id``'s message."""
        return f"{self.local}+{delivery_id}.{_tag(self.keys[0], delivery_id)}@{self.domain}"

    def shaped(self, address: str) -> bool:
        """Whether ``address`` has the shape of one of ours (signed or not)."""
        return self._shape.fullmatch(address.strip("<>")) is not None

    def delivery(self, address: str) -> int | None:
        """The delivery ``address`` names, if its tag is good; None when it is not one of ours or is forged."""
        found = self._shape.fullmatch(address.strip("<>"))
        return self._checked(found) if found else None

    def find(self, text: str) -> tuple[int | None, bool]:
        """The first delivery named by a signed return path anywhere in ``text``, and whether a forged one was seen."""
        forged = False
        for found in self._shape.finditer(text):
            delivery = self._checked(found)
            if delivery is not None:
                return delivery, forged
            forged = True
        return None, forged

    def _checked(self, found: re.Match[str]) -> int | None:
        delivery = int(found["id"])
        if delivery > MAX_ID:
            return None
        tag = found["tag"].lower()
        if any(hmac.compare_digest(tag, _tag(key, delivery)) for key in self.keys):
            return delivery
        return None


def _tag(key: bytes, delivery_id: int) -> str:
    digest = hmac.digest(key, f"verp.{delivery_id}".encode(), hashlib.sha256)
    return base64.b32encode(digest[:10]).decode().lower()[:TAG_LENGTH]
