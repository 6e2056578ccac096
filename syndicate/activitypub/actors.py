"""Fetching another server's actor: a signed GET, bounded, to public addresses only, read with suspicion.

A follower's actor URL comes from a stranger's request, so nothing in it may
make syndicate reach inside its own network: the fetch connects only to
public addresses (``allow_private`` is for tests on loopback), follows
redirects only on the same origin, stops at :data:`MAX_BYTES` and
:data:`DEADLINE`. The GET is signed (draft-cavage-12), so servers that ask for
"authorized fetch" answer. The document must be the actor it was asked for
(its ``id`` on the same origin as the URL), with an inbox and a public key
that it owns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urldefrag, urlsplit

import requests
from requests.structures import CaseInsensitiveDict

from syndicate.activitypub.signatures import Message, sign_cavage
from syndicate.errors import SourceError, SyndicateError
from syndicate.model import RemoteActor
from syndicate.sources.fetch import FetchLimits, fetch, origin
from syndicate.text import json_value

ACCEPT = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
MAX_BYTES = 1_000_000
TIMEOUT = 10.0
DEADLINE = 20.0


class ActorUnavailable(SyndicateError):
    """An actor that could not be fetched, or is not what an actor must be; the message says which."""


@dataclass(frozen=True)
class Signer:
    """Who signs syndicate's fetches: the actor's key id and private key."""

    key_id: str
    private_pem: str


def fetch_actor(session: requests.Session, url: str, signer: Signer, now: datetime,
                allow_private: bool = False) -> RemoteActor:  # fmt: skip
    """The actor at ``url`` (a key id's fragment is dropped), checked; :class:`ActorUnavailable` if not."""
    actor_url, _ = urldefrag(url)
    if urlsplit(actor_url).scheme not in ("http", "https") or not urlsplit(actor_url).hostname:
        raise ActorUnavailable(f"{url[:200]!r} is not an http(s) URL")
    message = sign_cavage(Message("GET", actor_url, CaseInsensitiveDict({"Accept": ACCEPT})), signer.key_id,
                          signer.private_pem, now)  # fmt: skip
    limits = FetchLimits(TIMEOUT, DEADLINE, MAX_BYTES, public_only=not allow_private)
    headed = requests.Session()
    headed.headers.update(session.headers)
    headed.headers.update(dict(message.headers))
    try:
        body = fetch(headed, actor_url, limits).body
    except SourceError as exc:
        raise ActorUnavailable(str(exc).replace("feed ", "actor ", 1)) from exc
    finally:
        headed.close()
    return read_actor(actor_url, body)


def read_actor(url: str, body: bytes) -> RemoteActor:
    """The actor in ``body``, fetched from ``url``, if it is one."""
    try:
        document = json_value(body)
    except ValueError as exc:
        raise ActorUnavailable(f"{url}: the answer is not JSON") from exc
    if not isinstance(document, dict):
        raise ActorUnavailable(f"{url}: the answer is not a JSON object")
    actor_id = _text(document, "id", url)
    if origin(actor_id) != origin(url):
        raise ActorUnavailable(f"{url}: the document is the actor of another origin ({actor_id[:200]})")
    inbox = _url(document, "inbox", url)
    endpoints = document.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    key = document.get("publicKey")
    if isinstance(key, list):
        key = next((k for k in key if isinstance(k, dict)), None)
    if not isinstance(key, dict):
        raise ActorUnavailable(f"{url}: the actor has no publicKey")
    owner = key.get("owner", actor_id)
    if owner != actor_id:
        raise ActorUnavailable(f"{url}: its key belongs to {str(owner)[:200]}")
    return RemoteActor(actor_id, inbox, shared if _is_http(shared) else None, _text(key, "id", url),
                       _text(key, "publicKeyPem", url))  # fmt: skip


def _text(document: dict[str, Any], name: str, url: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise ActorUnavailable(f"{url}: the actor has no {name}")
    return value


def _url(document: dict[str, Any], name: str, url: str) -> str:
    value = _text(document, name, url)
    if not _is_http(value):
        raise ActorUnavailable(f"{url}: its {name} is not an http(s) URL")
    return value


def _is_http(value: object) -> bool:
    return isinstance(value, str) and urlsplit(value).scheme in ("http", "https") and bool(urlsplit(value).hostname)
