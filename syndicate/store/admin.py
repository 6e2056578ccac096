"""The console's tables: its users, their sessions, the API's tokens, failed logins, the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from syndicate.store.schema import admin_sessions, admin_users, api_tokens, audit_log, login_failures


@dataclass(frozen=True)
class User:
    """One account of the console."""

    id: int
    name: str
    role: str
    password_hash: str
    totp_secret: str | None
    totp_last_step: int | None
    failed_logins: int
    locked_until: datetime | None


@dataclass(frozen=True)
class Session:
    """A logged-in browser, with the user it belongs to."""

    key: str
    user: User
    csrf: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Token:
    """A bearer token of the API."""

    id: int
    name: str
    role: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _user(row: Any) -> User:
    return User(row.id, row.name, row.role, row.password_hash, row.totp_secret, row.totp_last_step,
                row.failed_logins, row.locked_until)  # fmt: skip


def add_user(conn: Connection, name: str, role: str, password_hash: str, totp_secret: str | None, now: datetime) -> int:
    """Add an account; return its id."""
    query = (
        insert(admin_users)
        .returning(admin_users.c.id)
        .values(
            name=name,
            role=role,
            password_hash=password_hash,
            totp_secret=totp_secret,
            failed_logins=0,
            created_at=now,
            password_changed_at=now,
        )
    )
    return int(conn.execute(query).scalar_one())


def user_named(conn: Connection, name: str) -> User | None:
    row = conn.execute(select(admin_users).where(admin_users.c.name == name)).first()
    return _user(row) if row else None


def user(conn: Connection, user_id: int) -> User | None:
    row = conn.execute(select(admin_users).where(admin_users.c.id == user_id)).first()
    return _user(row) if row else None


def users(conn: Connection) -> list[User]:
    return [_user(row) for row in conn.execute(select(admin_users).order_by(admin_users.c.name))]


def remove_user(conn: Connection, user_id: int) -> None:
    """Remove an account and log its sessions out."""
    conn.execute(delete(admin_sessions).where(admin_sessions.c.user_id == user_id))
    conn.execute(delete(admin_users).where(admin_users.c.id == user_id))


def set_password(conn: Connection, user_id: int, password_hash: str, now: datetime) -> None:
    """A new password hash; the lockout is lifted and every session of the account ends."""
    conn.execute(
        update(admin_users)
        .where(admin_users.c.id == user_id)
        .values(password_hash=password_hash, password_changed_at=now, failed_logins=0, locked_until=None)
    )
    conn.execute(delete(admin_sessions).where(admin_sessions.c.user_id == user_id))


def rehash(conn: Connection, user_id: int, password_hash: str) -> None:
    """The same password under newer hashing parameters."""
    conn.execute(update(admin_users).where(admin_users.c.id == user_id).values(password_hash=password_hash))


def record_failure(
    conn: Connection, user_id: int | None, client: str, now: datetime, lock_until: datetime | None
) -> None:
    """A failed login: counted for the account (and locked until ``lock_until``, if given) and for the client."""
    if user_id is not None:
        values: dict[str, Any] = {"failed_logins": admin_users.c.failed_logins + 1}
        if lock_until is not None:
            values["locked_until"] = lock_until
        conn.execute(update(admin_users).where(admin_users.c.id == user_id).values(**values))
    conn.execute(insert(login_failures).values(client=client, at=now))


def record_success(conn: Connection, user_id: int, totp_step: int | None) -> None:
    """A login that held: the account's failures are forgotten (and the TOTP step it used is spent)."""
    values: dict[str, Any] = {"failed_logins": 0, "locked_until": None}
    if totp_step is not None:
        values["totp_last_step"] = totp_step
    conn.execute(update(admin_users).where(admin_users.c.id == user_id).values(**values))


def failures_from(conn: Connection, client: str, since: datetime) -> int:
    """Failed logins from ``client`` since a time."""
    query = select(func.count()).where(login_failures.c.client == client, login_failures.c.at >= since)
    return int(conn.execute(query).scalar_one())


def forget_failures_before(conn: Connection, before: datetime) -> None:
    conn.execute(delete(login_failures).where(login_failures.c.at < before))


def start_session(
    conn: Connection, key: str, user_id: int, csrf: str, client: str, now: datetime, expires: datetime
) -> None:
    conn.execute(
        insert(admin_sessions).values(
            key=key, user_id=user_id, csrf=csrf, client=client, created_at=now, seen_at=now, expires_at=expires
        )
    )


def session(conn: Connection, key: str, now: datetime) -> Session | None:
    """The session under ``key`` if it has not expired, with its user."""
    query = (
        select(admin_sessions, admin_users)
        .join(admin_users, admin_users.c.id == admin_sessions.c.user_id)
        .where(admin_sessions.c.key == key, admin_sessions.c.expires_at > now)
    )
    row = conn.execute(query).first()
    if row is None:
        return None
    account = User(row.user_id, row.name, row.role, row.password_hash, row.totp_secret, row.totp_last_step,
                   row.failed_logins, row.locked_until)  # fmt: skip
    return Session(row.key, account, row.csrf, row.created_at, row.expires_at)


def touch_session(conn: Connection, key: str, now: datetime, expires: datetime) -> None:
    conn.execute(update(admin_sessions).where(admin_sessions.c.key == key).values(seen_at=now, expires_at=expires))


def end_session(conn: Connection, key: str) -> None:
    conn.execute(delete(admin_sessions).where(admin_sessions.c.key == key))


def end_expired_sessions(conn: Connection, now: datetime) -> None:
    conn.execute(delete(admin_sessions).where(admin_sessions.c.expires_at <= now))


def add_token(conn: Connection, name: str, role: str, key: str, now: datetime) -> int:
    query = insert(api_tokens).returning(api_tokens.c.id).values(name=name, role=role, key=key, created_at=now)
    return int(conn.execute(query).scalar_one())


def token(conn: Connection, key: str) -> Token | None:
    """The token under ``key`` if it is not revoked."""
    row = conn.execute(select(api_tokens).where(api_tokens.c.key == key, api_tokens.c.revoked_at.is_(None))).first()
    return Token(row.id, row.name, row.role, row.created_at, row.last_used_at, row.revoked_at) if row else None


def tokens(conn: Connection) -> list[Token]:
    rows = conn.execute(select(api_tokens).order_by(api_tokens.c.id))
    return [Token(r.id, r.name, r.role, r.created_at, r.last_used_at, r.revoked_at) for r in rows]


def use_token(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))


def revoke_token(conn: Connection, token_id: int, now: datetime) -> bool:
    query = update(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
    return bool(conn.execute(query.values(revoked_at=now)).rowcount)


def audit(conn: Connection, actor: str, action: str, detail: str, client: str, now: datetime) -> None:
    """Keep one line of the audit log."""
    conn.execute(
        insert(audit_log).values(at=now, actor=actor[:80], action=action[:64], detail=detail, client=client[:64])
    )


def audit_lines(conn: Connection, limit: int = 100, before: int | None = None) -> Sequence[Any]:
    """The newest lines of the audit log (older than id ``before``, for paging), newest first."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(audit_log.c.id < before)
    return list(conn.execute(query))
