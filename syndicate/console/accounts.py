"""Who may use the console and the API: accounts, logins, sessions, tokens, and the audit log of it all.

- Passwords are hashed with Argon2id (argon2-cffi's defaults, rehashed when
  those change); an unknown name costs the same hash as a known one.
- An account may carry a TOTP secret (pyotp, RFC 6238, 30 s steps, one step
  of drift either way); each code is taken once.
- ``[admin] lockout_attempts`` failures in a row lock the account for
  ``lockout_minutes``; ``client_attempts`` failures from one address within
  that time stop that address trying. Either way the answer does not say
  which part was wrong.
- A session is a random 256-bit value in a cookie; the database keeps only
  its SHA-256. A login always starts a new one (a session fixed before the
  login is never taken over); it ends after ``idle_minutes`` without use,
  ``session_hours`` after the login, at logout, or when the password changes.
- API tokens (``syndicate admin token create``) are kept the same way and
  shown once.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from syndicate.config import AdminConfig
from syndicate.store import admin as store
from syndicate.store.db import Database

ROLES = ("admin", "viewer")
TOKEN_PREFIX = "sya_"  # so a leaked token is recognisable by secret scanners
MIN_PASSWORD = 12
TOUCH_EVERY = timedelta(minutes=1)  # how far a session's expiry must move on before it is written again


class Refused(Exception):
    """A login that does not hold; the message says no more than the user may know."""


class BadAccount(ValueError):
    """An account that cannot be made as asked (a name taken, a password too short, a role unknown)."""


@dataclass(frozen=True)
class Login:
    """A login that held: the cookie's value and the form token of its session."""

    cookie: str
    csrf: str
    user: store.User


def digest(secret: str) -> str:
    """What is kept of a session cookie or an API token."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Accounts:
    """Accounts, sessions and tokens on one database."""

    def __init__(self, db: Database, settings: AdminConfig, clock: Callable[[], datetime]) -> None:
        self.db, self.settings, self.clock = db, settings, clock
        self.hasher = PasswordHasher()
        self._decoy: str | None = None  # checked for a name that does not exist (made at the first such login)

    # -- accounts

    def add_user(self, name: str, role: str, password: str, totp: bool = False) -> tuple[int, str | None]:
        """Add an account; return its id and its TOTP secret (to be shown once), if it has one."""
        name = name.strip()
        if not name or len(name) > 64 or not name.isprintable():
            raise BadAccount("a name is 1 to 64 printable characters")
        if role not in ROLES:
            raise BadAccount(f"the role is one of {', '.join(ROLES)}")
        self._check_password(password)
        secret = pyotp.random_base32() if totp else None
        with self.db.write() as conn:
            if store.user_named(conn, name) is not None:
                raise BadAccount(f"there is already an account named {name!r}")
            user_id = store.add_user(conn, name, role, self.hasher.hash(password), secret, self.clock())
        return user_id, secret

    def remove_user(self, name: str) -> bool:
        with self.db.write() as conn:
            found = store.user_named(conn, name)
            if found is not None:
                store.remove_user(conn, found.id)
        return found is not None

    def reset_password(self, name: str, password: str) -> bool:
        """A new password; the account's lockout is lifted and its sessions end."""
        self._check_password(password)
        with self.db.write() as conn:
            found = store.user_named(conn, name)
            if found is not None:
                store.set_password(conn, found.id, self.hasher.hash(password), self.clock())
        return found is not None

    def users(self) -> list[store.User]:
        with self.db.read() as conn:
            return store.users(conn)

    @staticmethod
    def provisioning_uri(name: str, secret: str, issuer: str) -> str:
        """The otpauth:// address an authenticator app reads (as a QR code or typed in)."""
        return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=issuer)

    def _check_password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise BadAccount(f"a password has at least {MIN_PASSWORD} characters")

    # -- logins and sessions

    def login(self, name: str, password: str, code: str, client: str) -> Login:
        """Check a login; a new session if it holds, else :class:`Refused` (and the failure counted)."""
        now = self.clock()
        window = timedelta(minutes=self.settings.lockout_minutes)
        with self.db.write() as conn:
            store.forget_failures_before(conn, now - window)
            throttled = store.failures_from(conn, client, now - window) >= self.settings.client_attempts
            user = store.user_named(conn, name)
        if throttled:
            raise Refused("too many failed logins from this address: try again later")
        ok = self._password_holds(user, password)
        step = self._totp_step(user, code, now) if ok and user is not None and user.totp_secret else None
        if user is not None and user.totp_secret and step is None:
            ok = False
        locked = user is not None and user.locked_until is not None and user.locked_until > now
        if not ok or locked or user is None:
            lock = None
            if user is not None and not locked and user.failed_logins + 1 >= self.settings.lockout_attempts:
                lock = now + window
            with self.db.write() as conn:  # committed before the refusal is raised
                store.record_failure(conn, user.id if user else None, client, now, lock)
                store.audit(conn, name[:80] or "?", "login refused", "locked" if locked else "", client, now)
            raise Refused("the name, password or code was not accepted, or the account is locked for a while")
        with self.db.write() as conn:
            store.record_success(conn, user.id, step)
            if self.hasher.check_needs_rehash(user.password_hash):
                store.rehash(conn, user.id, self.hasher.hash(password))
            cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            store.start_session(conn, digest(cookie), user.id, csrf, client, now, self._expiry(now, now))
            store.audit(conn, user.name, "login", "", client, now)
        return Login(cookie, csrf, user)

    def session(self, cookie: str) -> store.Session | None:
        """The live session a cookie names (its idle time starts again), or ``None``."""
        if not cookie:
            return None
        now = self.clock()
        key = digest(cookie)
        with self.db.read() as conn:
            found = store.session(conn, key, now)
        if found is not None:
            expiry = self._expiry(now, found.created_at)
            if expiry - found.expires_at > TOUCH_EVERY:  # a page and its charts' calls write it once, not four times
                with self.db.write() as conn:
                    store.touch_session(conn, key, now, expiry)
        return found

    def logout(self, cookie: str, client: str) -> None:
        now = self.clock()
        with self.db.write() as conn:
            found = store.session(conn, digest(cookie), now)
            store.end_session(conn, digest(cookie))
            if found is not None:
                store.audit(conn, found.user.name, "logout", "", client, now)

    def _expiry(self, now: datetime, created: datetime) -> datetime:
        idle = now + timedelta(minutes=self.settings.idle_minutes)
        return min(idle, created + timedelta(hours=self.settings.session_hours))

    def _password_holds(self, user: store.User | None, password: str) -> bool:
        if user is None and self._decoy is None:
            self._decoy = self.hasher.hash(secrets.token_urlsafe(16))
        try:
            return self.hasher.verify(user.password_hash if user else self._decoy or "", password) and user is not None
        except (VerificationError, InvalidHashError):
            return False

    @staticmethod
    def _totp_step(user: store.User, code: str, now: datetime) -> int | None:
        """The time step ``code`` is right for (this one or a neighbour), if it was not taken before."""
        assert user.totp_secret is not None
        totp = pyotp.TOTP(user.totp_secret)
        code = code.strip().replace(" ", "")
        if not code.isdigit():
            return None
        here = totp.timecode(now)
        for step in (here, here - 1, here + 1):
            if secrets.compare_digest(totp.generate_otp(step), code):
                return step if user.totp_last_step is None or step > user.totp_last_step else None
        return None

    # -- API tokens

    def create_token(self, name: str, role: str) -> tuple[int, str]:
        """A new bearer token; return its id and the token itself (shown once, kept only as its digest)."""
        if role not in ROLES:
            raise BadAccount(f"the role is one of {', '.join(ROLES)}")
        value = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.db.write() as conn:
            token_id = store.add_token(conn, name, role, digest(value), self.clock())
        return token_id, value

    def token(self, value: str) -> store.Token | None:
        """The live token ``value`` is, or ``None``."""
        if not value.startswith(TOKEN_PREFIX):
            return None
        with self.db.write() as conn:
            found = store.token(conn, digest(value))
            if found is not None:
                store.use_token(conn, found.id, self.clock())
        return found

    def revoke_token(self, token_id: int) -> bool:
        with self.db.write() as conn:
            return store.revoke_token(conn, token_id, self.clock())

    def tokens(self) -> list[store.Token]:
        with self.db.read() as conn:
            return store.tokens(conn)

    # -- the audit log

    def audit(self, actor: str, action: str, detail: str = "", client: str = "cli") -> None:
        with self.db.write() as conn:
            store.audit(conn, actor, action, detail, client, self.clock())
