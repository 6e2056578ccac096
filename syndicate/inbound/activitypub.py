"""Hearing from the fediverse: what arrives at the actor's inbox, checked before anything is believed.

::

    POST /ap/inbox ─► size, type, JSON ─► signature (draft-cavage-12 or RFC 9421, the date within an hour)
        ─► the signer's key: cached, or its actor fetched (signed GET, public addresses only)
        ─► the key's owner is the activity's actor ─► act:
             Follow of us        store the follower (its shared inbox); our Accept is owed
             Undo of a Follow    forget the follower
             Delete of an actor  forget it, as follower and as cached actor
             Like, Announce      counted once per activity, for the console; not stored in full
             Create replying     counted as a reply
             anything else       accepted and let go

A signature that fails with a cached key is tried once more with the actor
fetched afresh (it may have rotated its key). Every refusal is a
:class:`Refused` with the HTTP status it is answered with and why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from syndicate.activitypub import actors
from syndicate.activitypub.actors import ActorUnavailable, Signer
from syndicate.activitypub.signatures import BadSignature, Message, verify
from syndicate.model import RemoteActor
from syndicate.store import fediverse as store
from syndicate.store.db import Database
from syndicate.text import json_value

log = logging.getLogger(__name__)
MAX_ACTIVITY_BYTES = 256 * 1024
REACTIONS = {"Like": "like", "Announce": "announce"}


class Refused(Exception):
    """An activity not taken, with the status it is answered with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Heard:
    """What an accepted activity did."""

    kind: str  # "follow", "unfollow", "gone", "like", "announce", "reply", "ignored"
    actor: str


@dataclass
class Inbox:
    """Takes activities addressed to the actor, each verified, and acts on them."""

    db: Database
    actor_id: str
    ours: Callable[[str], bool]  # whether a URL is one of our statements (or the actor)
    signer: Callable[[], Signer]
    session: Callable[[], requests.Session]
    clock: Callable[[], datetime]
    allow_private: bool = False
    # Signatures carry the real time, whatever the app's clock says (a test's, a replay's): checked on this one.
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def receive(self, message: Message) -> Heard:
        """Check ``message`` and act on its activity; :class:`Refused` when it is not taken."""
        if len(message.body) > MAX_ACTIVITY_BYTES:
            raise Refused(413, f"an activity is at most {MAX_ACTIVITY_BYTES} bytes")
        activity = _activity(message.body)
        actor_id = _id(activity.get("actor"))
        if not actor_id:
            raise Refused(400, "the activity names no actor")
        try:
            signer = self._verified(message, activity, actor_id)
        except Refused:
            if activity.get("type") == "Delete" and _id(activity.get("object")) == actor_id:
                # An account deleting itself: its key is gone with it. Unless it was cached (and then it
                # verified), nothing is known of it here, so there is nothing to do, and no reason to be asked again.
                return Heard("ignored", actor_id)
            raise
        return self._act(activity, signer)

    def _verified(self, message: Message, activity: dict[str, Any], actor_id: str) -> RemoteActor:
        """The actor whose key signed ``message``; it must be the activity's actor."""
        now = self.wall()
        cached: dict[str, RemoteActor] = {}

        def key_for(key_id: str) -> str | None:
            found = self._actor_for_key(key_id, fresh=bool(cached))
            if found is not None:
                cached[key_id] = found
            return found.public_pem if found else None

        try:
            signed = verify(message, key_for, now)
        except BadSignature as first:
            if not cached:
                raise Refused(401, str(first)) from first
            try:  # the key may have been rotated since it was cached: once more, with the actor fetched afresh
                signed = verify(message, key_for, now)
            except BadSignature as second:
                raise Refused(401, str(second)) from second
        signer = cached.get(signed.key_id)
        if signer is None or signer.id != actor_id:
            raise Refused(401, f"signed by {signed.key_id[:200]}, not by the activity's actor {actor_id[:200]}")
        return signer

    def _actor_for_key(self, key_id: str, fresh: bool) -> RemoteActor | None:
        if not fresh:
            with self.db.read() as conn:
                found = store.actor_by_key(conn, key_id)
            if found is not None:
                return found
        try:
            with self.session() as session:
                fetched = actors.fetch_actor(session, key_id, self.signer(), self.wall(), self.allow_private)
        except ActorUnavailable as exc:
            log.info("inbox: no key for %s: %s", key_id[:200], exc)
            return None
        if fetched.key_id != key_id:
            return None
        with self.db.write() as conn:
            store.keep_actor(conn, fetched, self.clock())
        return fetched

    def _act(self, activity: dict[str, Any], actor: RemoteActor) -> Heard:
        kind, now = activity.get("type"), self.clock()
        activity_id = _id(activity.get("id"))
        target = activity.get("object")
        with self.db.write() as conn:
            if kind == "Follow":
                if _id(target) != self.actor_id:
                    raise Refused(422, "this actor follows no one: a Follow must name it")
                store.add_follower(conn, actor, activity_id or f"{actor.id}#follow", now)
                log.info("inbox: %s follows", actor.id)
                return Heard("follow", actor.id)
            if kind == "Undo" and isinstance(target, dict) and target.get("type") == "Follow":
                store.remove_follower(conn, actor.id)
                return Heard("unfollow", actor.id)
            if kind == "Delete" and _id(target) == actor.id:
                store.remove_follower(conn, actor.id)
                store.forget_actor(conn, actor.id)
                return Heard("gone", actor.id)
            if kind in REACTIONS and self.ours(_id(target)) and activity_id:
                store.count_reaction(conn, activity_id, REACTIONS[str(kind)], _id(target), actor.id, now)
                return Heard(REACTIONS[str(kind)], actor.id)
            if kind == "Create" and isinstance(target, dict) and self.ours(_id(target.get("inReplyTo"))):
                store.count_reaction(conn, activity_id or _id(target.get("id")), "reply", _id(target.get("inReplyTo")),
                                     actor.id, now)  # fmt: skip
                return Heard("reply", actor.id)
        return Heard("ignored", actor.id)


def _activity(body: bytes) -> dict[str, Any]:
    try:
        activity = json_value(body)
    except ValueError as exc:
        raise Refused(400, "the body is not JSON") from exc
    if not isinstance(activity, dict) or not isinstance(activity.get("type"), str):
        raise Refused(400, "the body is not an activity (a JSON object with a type)")
    return activity


def _id(value: object) -> str:
    """The id of a link or an object, as ActivityStreams allows either."""
    if isinstance(value, dict):
        value = value.get("id")
    return value[:500] if isinstance(value, str) else ""
