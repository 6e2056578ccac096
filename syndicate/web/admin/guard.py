"""Who is asking: a console session (its cookie) or an API bearer token; and what they may do.

The session cookie is ``HttpOnly``, ``SameSite=Strict``, scoped to the whole
site (the console's pages and the API it reads), and ``Secure`` whenever the
request came over https (directly, or through a proxy ``web.proxy_hops``
trusts). A session's form posts and its API writes carry its CSRF token
(a form field, or the ``X-CSRF-Token`` header); a bearer token needs none,
since a browser never sends one on its own.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from flask import Request
from werkzeug.wrappers import Response

from syndicate.console.accounts import Accounts

COOKIE = "syndicate_admin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Caller:
    """Who a request comes from."""

    name: str
    role: str
    via: str  # "session" or "token"
    csrf: str = ""  # the session's; "" for a token

    @property
    def may_act(self) -> bool:
        return self.role == "admin"

    def vouches_for(self, given: str) -> bool:
        """Whether a write carries what this caller must show: the session's CSRF token (a token needs none)."""
        if self.via == "token":
            return True
        return bool(given) and given.isascii() and hmac.compare_digest(given, self.csrf)


def caller(accounts: Accounts, request: Request) -> Caller | None:
    """The caller of ``request``: a bearer token first, else the session cookie; ``None`` for no one."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        token = accounts.token(value.strip())
        return Caller(f"token:{token.name}", token.role, "token") if token else None
    session = accounts.session(request.cookies.get(COOKIE, ""))
    if session is None:
        return None
    return Caller(session.user.name, session.user.role, "session", session.csrf)


def set_session_cookie(response: Response, value: str, secure: bool, max_age: int) -> None:
    response.set_cookie(COOKIE, value, max_age=max_age, path="/", httponly=True, samesite="Strict", secure=secure)


def clear_session_cookie(response: Response, secure: bool) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Strict", secure=secure)
