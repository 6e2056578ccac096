"""Fetching a follower's actor from its server: signed, bounded, never into a private network.

A real HTTP server on loopback plays the remote server; it is a private
address, so every fetch here opts in (``allow_private``) except those that
check the refusal. The signature of each GET is verified with syndicate's own
verifier (checked against Fedify in test_fediverse_signatures.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from requests.structures import CaseInsensitiveDict
from servers.http import LoopbackHTTPServer, Reply

from syndicate.activitypub import signatures
from syndicate.activitypub.actors import ActorUnavailable, Signer, fetch_actor
from syndicate.activitypub.keys import new_key_pair
from syndicate.sources.fetch import NotPublic, public_address

NOW = datetime.now(UTC)
JSON = {"Content-Type": "application/activity+json"}


@pytest.fixture(scope="module")
def ours() -> tuple[Signer, str]:
    private, public = new_key_pair()
    return Signer("https://news.example/ap/actor#main-key", private), public


@pytest.fixture
def remote() -> Iterator[LoopbackHTTPServer]:
    with LoopbackHTTPServer("/users/alice") as server:
        yield server


def alice(server: LoopbackHTTPServer, **changes: object) -> dict[str, object]:
    actor = server.url_for("/users/alice")
    document: dict[str, object] = {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": actor, "type": "Person", "inbox": actor + "/inbox",
        "endpoints": {"sharedInbox": server.url_for("/inbox")},
        "publicKey": {"id": actor + "#main-key", "owner": actor, "publicKeyPem": "PEM"},
    }  # fmt: skip
    document.update(changes)
    return document


def serve(server: LoopbackHTTPServer, document: object) -> None:
    server.set_default(Reply.status(200, JSON, json.dumps(document).encode()))


def test_an_actor_is_fetched_with_a_signed_get_and_read(remote: LoopbackHTTPServer, ours: tuple[Signer, str]) -> None:
    signer, public = ours
    serve(remote, alice(remote))
    with requests.Session() as session:
        found = fetch_actor(session, remote.url_for("/users/alice#main-key"), signer, NOW, allow_private=True)
    assert found.id == remote.url_for("/users/alice") and found.delivers_to == remote.url_for("/inbox")
    assert found.key_id == found.id + "#main-key" and found.public_pem == "PEM"
    (got,) = remote.requests
    assert "application/activity+json" in (got.header("accept") or "")
    message = signatures.Message("GET", remote.url_for(got.path), CaseInsensitiveDict(got.headers))
    assert signatures.verify(message, lambda key_id: public if key_id == signer.key_id else None, NOW).key_id == (
        signer.key_id
    ), "authorized-fetch servers can check who asks"


def test_a_stranger_cannot_send_syndicate_into_its_own_network(
    remote: LoopbackHTTPServer, ours: tuple[Signer, str]
) -> None:
    signer, _ = ours
    serve(remote, alice(remote))
    with requests.Session() as session:
        for url in (remote.url_for("/users/alice"), f"http://localhost:{remote.url.split(':')[-1].split('/')[0]}/x",
                    "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://10.1.2.3/",
                    "http://[::ffff:127.0.0.1]/", "file:///etc/passwd", "gopher://127.0.0.1/"):  # fmt: skip
            with pytest.raises(ActorUnavailable):
                fetch_actor(session, url, signer, NOW)
    assert remote.requests == [], "not one connection reached it"
    for host in ("127.0.0.1", "localhost", "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "0.0.0.0", "::1",
                 "fe80::1", "fc00::1", "224.0.0.1"):  # fmt: skip
        with pytest.raises(NotPublic):
            public_address(host, 80)
    assert public_address("8.8.8.8", 443) == "8.8.8.8"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": "https://elsewhere.example/users/alice"}, "another origin"),
        ({"inbox": "javascript:alert(1)"}, "inbox is not an http"),
        ({"publicKey": None}, "no publicKey"),
        ({"publicKey": {"id": "k", "owner": "https://elsewhere.example/x", "publicKeyPem": "PEM"}}, "belongs to"),
    ],
)
def test_a_document_that_is_not_the_actor_asked_for_is_refused(
    remote: LoopbackHTTPServer, ours: tuple[Signer, str], change: dict[str, object], reason: str
) -> None:
    serve(remote, alice(remote, **change))
    with requests.Session() as session, pytest.raises(ActorUnavailable, match=reason):
        fetch_actor(session, remote.url_for("/users/alice"), ours[0], NOW, allow_private=True)


def test_answers_that_are_not_json_or_too_big_are_refused(remote: LoopbackHTTPServer, ours: tuple[Signer, str]) -> None:
    with requests.Session() as session:
        remote.set_default(Reply.status(200, JSON, b"<html>not an actor</html>"))
        with pytest.raises(ActorUnavailable, match="not JSON"):
            fetch_actor(session, remote.url_for("/users/alice"), ours[0], NOW, allow_private=True)
        remote.set_default(Reply.status(200, JSON, b"[" + b"1," * 600_000 + b"1]"))
        with pytest.raises(ActorUnavailable, match="actor"):
            fetch_actor(session, remote.url_for("/users/alice"), ours[0], NOW, allow_private=True)
        remote.set_default(Reply.status(200, JSON, b"[" * 30000 + b"]" * 30000))
        with pytest.raises(ActorUnavailable, match="not JSON"):
            fetch_actor(session, remote.url_for("/users/alice"), ours[0], NOW, allow_private=True)
        remote.set_default(Reply.status(410, JSON, b"{}"))
        with pytest.raises(ActorUnavailable, match="410"):
            fetch_actor(session, remote.url_for("/users/alice"), ours[0], NOW, allow_private=True)
