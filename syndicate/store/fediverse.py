"""What the store keeps of the fediverse: the actor's key pairs, other servers' actors, followers, reactions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from syndicate.model import RemoteActor
from syndicate.store.schema import activities, actor_keys, followers, reactions, remote_actors


@dataclass(frozen=True)
class StoredKey:
    """One of the actor's key pairs, as PEM text."""

    id: int
    private_pem: str
    public_pem: str
    created_at: datetime


def current_key(conn: Connection) -> StoredKey | None:
    """The key pair that signs and is published: the newest one not retired."""
    query = (
        select(actor_keys.c.id, actor_keys.c.private_pem, actor_keys.c.public_pem, actor_keys.c.created_at)
        .where(actor_keys.c.retired_at.is_(None))
        .order_by(actor_keys.c.id.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return StoredKey(row.id, row.private_pem, row.public_pem, row.created_at) if row else None


def add_key(conn: Connection, private_pem: str, public_pem: str, now: datetime) -> StoredKey:
    """Store a new key pair as the current one, retiring those before it."""
    conn.execute(update(actor_keys).where(actor_keys.c.retired_at.is_(None)).values(retired_at=now))
    query = actor_keys.insert().values(private_pem=private_pem, public_pem=public_pem, created_at=now)
    new_id = conn.execute(query.returning(actor_keys.c.id)).scalar_one()
    return StoredKey(int(new_id), private_pem, public_pem, now)


def key_count(conn: Connection) -> int:
    """How many key pairs the actor has had."""
    return len(conn.execute(select(actor_keys.c.id)).all())


@dataclass(frozen=True)
class Follower:
    """Someone who follows the actor, and where their server takes deliveries."""

    actor_id: str
    inbox: str
    shared_inbox: str | None
    follow_id: str
    accepted: bool


def actor_by_key(conn: Connection, key_id: str) -> RemoteActor | None:
    """The cached actor whose key is ``key_id``."""
    row = conn.execute(select(remote_actors).where(remote_actors.c.key_id == key_id)).first()
    return RemoteActor(row.id, row.inbox, row.shared_inbox, row.key_id, row.public_pem) if row else None


def keep_actor(conn: Connection, actor: RemoteActor, now: datetime) -> None:
    """Cache ``actor`` (replacing what was known of it)."""
    conn.execute(delete(remote_actors).where(remote_actors.c.id == actor.id))
    conn.execute(remote_actors.insert().values(id=actor.id, inbox=actor.inbox, shared_inbox=actor.shared_inbox,
                                               key_id=actor.key_id, public_pem=actor.public_pem, fetched_at=now))  # fmt: skip


def forget_actor(conn: Connection, actor_id: str) -> None:
    """Forget a cached actor (it deleted itself)."""
    conn.execute(delete(remote_actors).where(remote_actors.c.id == actor_id))


def add_follower(conn: Connection, actor: RemoteActor, follow_id: str, now: datetime) -> bool:
    """Record a follow (a repeat refreshes where to deliver and asks for another Accept); True if new."""
    known = conn.execute(select(followers.c.actor_id).where(followers.c.actor_id == actor.id)).first() is not None
    conn.execute(delete(followers).where(followers.c.actor_id == actor.id))
    conn.execute(followers.insert().values(actor_id=actor.id, inbox=actor.inbox, shared_inbox=actor.shared_inbox,
                                           follow_id=follow_id, followed_at=now))  # fmt: skip
    return not known


def remove_follower(conn: Connection, actor_id: str) -> bool:
    """Forget a follower; True if there was one."""
    return bool(conn.execute(delete(followers).where(followers.c.actor_id == actor_id)).rowcount)


def follower_list(conn: Connection, limit: int = 1000, after: str = "") -> list[Follower]:
    """Followers in the order of their ids, ``limit`` of them after ``after``."""
    query = select(followers).where(followers.c.actor_id > after).order_by(followers.c.actor_id).limit(limit)
    return [Follower(r.actor_id, r.inbox, r.shared_inbox, r.follow_id, r.accepted_at is not None)
            for r in conn.execute(query)]  # fmt: skip


def server_count(conn: Connection) -> int:
    """How many servers (distinct inboxes a statement goes to) the followers are on."""
    return int(conn.execute(select(func.count()).select_from(delivery_targets().subquery())).scalar_one())


def follower_count(conn: Connection) -> int:
    """How many follow the actor."""
    return int(conn.execute(select(func.count()).select_from(followers)).scalar_one())


def count_reaction(conn: Connection, activity_id: str, kind: str, object_id: str, actor_id: str,
                   now: datetime) -> bool:  # fmt: skip
    """Count one like, boost or reply (once per activity); True if it was new."""
    if conn.execute(select(reactions.c.activity_id).where(reactions.c.activity_id == activity_id)).first():
        return False
    conn.execute(reactions.insert().values(activity_id=activity_id, kind=kind, object=object_id, actor_id=actor_id,
                                           at=now))  # fmt: skip
    return True


def reaction_counts(conn: Connection) -> dict[str, int]:
    """Likes, boosts and replies counted, by kind."""
    query = select(reactions.c.kind, func.count()).group_by(reactions.c.kind)
    return {str(kind): int(n) for kind, n in conn.execute(query)}


def unaccepted(conn: Connection, limit: int = 500) -> list[Follower]:
    """Followers our Accept has not been planned for yet."""
    query = select(followers).where(followers.c.accepted_at.is_(None)).order_by(followers.c.followed_at).limit(limit)
    return [Follower(r.actor_id, r.inbox, r.shared_inbox, r.follow_id, False) for r in conn.execute(query)]


def mark_accepted(conn: Connection, actor_id: str, follow_id: str, now: datetime) -> None:
    """Our Accept of this follow is planned (a later Follow of the same actor asks for another)."""
    conn.execute(update(followers).where(followers.c.actor_id == actor_id, followers.c.follow_id == follow_id)
                 .values(accepted_at=now))  # fmt: skip


def add_activity(conn: Connection, kind: str, body: str, now: datetime) -> int:
    """Keep an activity as it will be sent; its id (what its deliveries carry)."""
    query = activities.insert().values(kind=kind, body=body, created_at=now).returning(activities.c.id)
    return int(conn.execute(query).scalar_one())


def activity_bodies(conn: Connection, ids: Iterable[int]) -> dict[int, str]:
    """The bodies of these activities, by id."""
    wanted = sorted(set(ids))
    found: dict[int, str] = {}
    for start in range(0, len(wanted), 500):
        query = select(activities.c.id, activities.c.body).where(activities.c.id.in_(wanted[start : start + 500]))
        found.update({r.id: r.body for r in conn.execute(query)})
    return found


def remove_followers_at(conn: Connection, inbox: str) -> int:
    """Forget every follower delivered to at ``inbox`` (its server answered 410 Gone); how many."""
    query = delete(followers).where((followers.c.inbox == inbox) | (followers.c.shared_inbox == inbox))
    return int(conn.execute(query).rowcount)


def delivery_targets() -> Select[Any]:
    """Where an activity for every follower goes: each distinct inbox (a server's shared one, else the follower's)."""
    # The WHERE is for SQLite: an INSERT ... SELECT with ON CONFLICT needs one to be read as meant.
    target = func.coalesce(followers.c.shared_inbox, followers.c.inbox).label("target")
    return select(target).where(followers.c.inbox.is_not(None)).distinct()
