"""Protection of the forms against cross-site submission: signed, per-form, expiring tokens.

A form token is an HMAC over (form name, binding, expiry) under a key derived
from the link-signing secrets, so no state is kept on the server. The
*binding* is what another site cannot know:

- the subscribe form binds to a random value in a ``SameSite=Strict`` cookie
  (double submit: a cross-site page can neither read the cookie nor make the
  browser send it);
- forms behind a signed link (preferences, the unsubscribe button) bind to the
  link's token, which is already the capability: whoever can post there holds
  the link. Their token proves the post came from a page we served for it.

Browsers also say where a request comes from (``Sec-Fetch-Site``); a form post
marked ``cross-site`` is refused before any token is looked at.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as random_secrets
from collections.abc import Callable

from syndicate.tokens import Secrets

COOKIE = "syndicate_form"
FIELD = "form_token"
LIFETIME_SECONDS = 24 * 3600
_DERIVE = b"syndicate form tokens"
_EXPIRES = re.compile(r"[0-9]{1,12}")


class FormGuard:
    """Issues and checks form tokens."""

    def __init__(self, secrets: Secrets, clock: Callable[[], float], lifetime: int = LIFETIME_SECONDS) -> None:
        self.keys = tuple(
            hmac.new(key, _DERIVE, hashlib.sha256).digest() for key in (secrets.current, *secrets.previous)
        )
        self.clock = clock
        self.lifetime = lifetime

    def issue(self, form: str, binding: str) -> str:
        """A token for ``form`` bound to ``binding``, valid for the guard's lifetime."""
        expires = int(self.clock()) + self.lifetime
        return f"{expires}.{self._mac(self.keys[0], form, binding, expires)}"

    def valid(self, form: str, binding: str, token: str) -> bool:
        """Whether ``token`` was issued for ``form`` and ``binding`` and is still in date."""
        expires_text, _, mac = token.partition(".")
        # Only what we issue is ASCII digits and ASCII text: str.isdigit() passes "²", which int()
        # refuses, and hmac.compare_digest refuses strings that are not ASCII.
        if not (binding and binding.isascii() and mac.isascii() and _EXPIRES.fullmatch(expires_text)):
            return False
        if int(expires_text) < self.clock():
            return False
        expires = int(expires_text)
        return any(hmac.compare_digest(mac, self._mac(key, form, binding, expires)) for key in self.keys)

    @staticmethod
    def _mac(key: bytes, form: str, binding: str, expires: int) -> str:
        return hmac.new(key, f"{form}\n{binding}\n{expires}".encode(), hashlib.sha256).hexdigest()


def new_binding() -> str:
    """A fresh random cookie value."""
    return random_secrets.token_urlsafe(18)


def looks_like_binding(value: str | None) -> bool:
    """Whether a cookie value could be one we set (anything else is replaced)."""
    return value is not None and re.fullmatch(r"[A-Za-z0-9_-]{16,64}", value) is not None


def cross_site(fetch_site: str | None) -> bool:
    """Whether the browser says the request came from another site."""
    return fetch_site == "cross-site"
