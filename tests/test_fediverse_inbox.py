"""The actor's inbox, over HTTP on loopback: activities signed by Fedify, from an actor served by another server.

The "remote server" is a real HTTP server on loopback serving Alice's actor
(with her public key); Fedify signs what she sends, so the signatures are not
syndicate's own. Syndicate's server runs with ``allow_private_addresses`` (both
are on 127.0.0.1), except where the test is that it refuses to go there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from requests.structures import CaseInsensitiveDict
from servers.http import LoopbackHTTPServer, Reply
from test_fediverse_signatures import fedify

from syndicate.activitypub import signatures
from syndicate.activitypub.keys import new_key_pair
from syndicate.store import fediverse as fediverse_store
from syndicate.web import create_app
from syndicate.web.server import WebServer, listening_socket

JSON = {"Content-Type": "application/activity+json"}
AS = "https://www.w3.org/ns/activitystreams"


class Remote:
    """Alice's server: her actor document, and her key to sign with."""

    def __init__(self, server: LoopbackHTTPServer) -> None:
        self.server = server
        self.rotate()

    @property
    def actor(self) -> str:
        return self.server.url_for("/users/alice")

    @property
    def key_id(self) -> str:
        return self.actor + "#main-key"

    def rotate(self) -> None:
        self.private, self.public = new_key_pair()
        document = {"@context": [AS, "https://w3id.org/security/v1"], "id": self.actor, "type": "Person",
                    "inbox": self.actor + "/inbox", "endpoints": {"sharedInbox": self.server.url_for("/inbox")},
                    "publicKey": {"id": self.key_id, "owner": self.actor, "publicKeyPem": self.public}}  # fmt: skip
        self.server.set_default(Reply.status(200, JSON, json.dumps(document).encode()))


@pytest.fixture
def remote() -> Iterator[Remote]:
    with LoopbackHTTPServer("/users/alice") as server:
        yield Remote(server)


def start(site: Any, make_app: Any, allow_private: bool = True, more: str = "") -> Any:
    sock = listening_socket("127.0.0.1:0")
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    site.extra = (f'\n[fediverse]\nenabled = true\nallow_private_addresses = {"true" if allow_private else "false"}\n'
                  f'{more}\n[web]\nbase_url = "{base}"\n')  # fmt: skip
    app = make_app(site)
    server = WebServer(create_app(app), sock=sock, threads=4)
    server.start()
    return app, base, server


@pytest.fixture
def ours(site: Any, make_app: Any) -> Iterator[tuple[Any, str]]:
    app, base, server = start(site, make_app)
    yield app, base
    server.stop()


def post(base: str, remote: Remote, activity: dict[str, Any], spec: str = "draft-cavage-http-signatures-12") -> Any:
    """Alice's activity to our inbox, signed by Fedify."""
    body = json.dumps(activity)
    signed = fedify({"do": "sign", "spec": spec, "method": "POST", "url": f"{base}/ap/inbox", "headers": JSON,
                     "body": body, "privateKeyPem": remote.private, "keyId": remote.key_id})  # fmt: skip
    return requests.post(f"{base}/ap/inbox", data=body.encode(), headers=signed["headers"], timeout=10)


def follow(base: str, remote: Remote, n: int = 1) -> dict[str, Any]:
    return {"@context": AS, "id": f"{remote.actor}/follows/{n}", "type": "Follow", "actor": remote.actor,
            "object": f"{base}/ap/actor"}  # fmt: skip


def followers(app: Any) -> list[str]:
    with app.db.read() as conn:
        return [f.actor_id for f in fediverse_store.follower_list(conn)]


@pytest.mark.parametrize("spec", ["draft-cavage-http-signatures-12", "rfc9421"])
def test_a_signed_follow_makes_a_follower_with_its_shared_inbox(ours: Any, remote: Remote, spec: str) -> None:
    app, base = ours
    answer = post(base, remote, follow(base, remote), spec)
    assert answer.status_code == 202 and answer.json() == {"heard": "follow"}, answer.text
    with app.db.read() as conn:
        (found,) = fediverse_store.follower_list(conn)
    assert (found.actor_id, found.shared_inbox, found.accepted) == (
        remote.actor,
        remote.server.url_for("/inbox"),
        False,
    )
    (fetch,) = remote.server.requests
    assert fetch.header("signature"), "the actor was fetched with a signed GET"


def test_undo_forgets_the_follower_and_likes_are_counted_once(ours: Any, remote: Remote) -> None:
    app, base = ours
    assert post(base, remote, follow(base, remote)).status_code == 202
    like = {"@context": AS, "id": f"{remote.actor}/likes/1", "type": "Like", "actor": remote.actor,
            "object": "https://example.org/statements/news"}  # fmt: skip
    assert post(base, remote, like).json() == {"heard": "like"}
    assert post(base, remote, like).status_code == 202, "a repeat is taken, and not counted again"
    elsewhere = {**like, "id": f"{remote.actor}/likes/2", "object": "https://other.example/post"}
    assert post(base, remote, elsewhere).json() == {"heard": "ignored"}
    with app.db.read() as conn:
        assert fediverse_store.reaction_counts(conn) == {"like": 1}
    undo = {"@context": AS, "id": f"{remote.actor}/undo/1", "type": "Undo", "actor": remote.actor,
            "object": follow(base, remote)}  # fmt: skip
    assert post(base, remote, undo).json() == {"heard": "unfollow"} and followers(app) == []
    assert len(remote.server.requests) == 1, "the actor was fetched once, then its key came from the cache"


def test_unsigned_forged_and_misattributed_activities_are_refused(ours: Any, remote: Remote) -> None:
    app, base = ours
    body = json.dumps(follow(base, remote)).encode()
    assert requests.post(f"{base}/ap/inbox", data=body, headers=JSON, timeout=10).status_code == 401
    mallory_private, _ = new_key_pair()
    forged = signatures.sign_cavage(signatures.Message("POST", f"{base}/ap/inbox", CaseInsensitiveDict(JSON), body),
                                    remote.key_id, mallory_private, datetime.now(UTC))  # fmt: skip
    assert requests.post(f"{base}/ap/inbox", data=body, headers=dict(forged.headers), timeout=10).status_code == 401
    stale = signatures.sign_cavage(signatures.Message("POST", f"{base}/ap/inbox", CaseInsensitiveDict(JSON), body),
                                   remote.key_id, remote.private, datetime.now(UTC) - timedelta(hours=2))  # fmt: skip
    replayed = requests.post(f"{base}/ap/inbox", data=body, headers=dict(stale.headers), timeout=10)
    assert replayed.status_code == 401 and "Date" in replayed.json()["error"]
    as_bob = {**follow(base, remote), "actor": remote.server.url_for("/users/bob")}
    assert post(base, remote, as_bob).status_code == 401, "Alice's key cannot speak for Bob"
    assert followers(app) == []
    not_json = requests.post(f"{base}/ap/inbox", data=b"x", headers={"Content-Type": "text/plain"}, timeout=10)
    assert not_json.status_code == 415
    deep = requests.post(f"{base}/ap/inbox", data=b"[" * 30000 + b"]" * 30000, headers=JSON, timeout=10)
    assert deep.status_code == 400, "arrays nested 30,000 deep are no activity, and no crash"
    of_someone_else = {**follow(base, remote), "object": "https://elsewhere.example/users/carol"}
    assert post(base, remote, of_someone_else).status_code == 422


def test_a_rotated_key_is_fetched_again_and_a_deleted_account_is_let_go(ours: Any, remote: Remote) -> None:
    app, base = ours
    assert post(base, remote, follow(base, remote)).status_code == 202
    remote.rotate()
    assert post(base, remote, follow(base, remote, 2)).status_code == 202, "the cached key failed; the new one held"
    assert len(remote.server.requests) == 2
    remote.server.set_default(Reply.status(410, JSON, b"{}"))
    gone = {"@context": AS, "id": f"{remote.actor}#delete", "type": "Delete", "actor": remote.actor,
            "object": remote.actor}  # fmt: skip
    assert post(base, remote, gone).json() == {"heard": "gone"} and followers(app) == []
    with app.db.read() as conn:
        assert fediverse_store.actor_by_key(conn, remote.key_id) is None
    stranger = {**gone, "actor": remote.server.url_for("/users/dora"), "object": remote.server.url_for("/users/dora")}
    assert post(base, remote, stranger).json() == {"heard": "ignored"}, "unknown and gone: nothing to do"


def test_without_the_opt_in_an_actor_on_a_private_address_is_never_fetched(
    site: Any, make_app: Any, remote: Remote
) -> None:
    app, base, server = start(site, make_app, allow_private=False)
    try:
        answer = post(base, remote, follow(base, remote))
        assert answer.status_code == 401 and followers(app) == []
        assert remote.server.requests == [], "syndicate did not connect to the loopback address it was given"
    finally:
        server.stop()


def our_key(base: str) -> str:
    actor = requests.get(f"{base}/ap/actor", headers={"Accept": "application/activity+json"}, timeout=10).json()
    return str(actor["publicKey"]["publicKeyPem"])


def test_a_follower_gets_our_accept_through_the_outbox_signed_as_fedify_verifies(ours: Any, remote: Remote) -> None:
    from syndicate.pipeline import tick

    app, base = ours
    assert post(base, remote, follow(base, remote)).status_code == 202
    report = tick(app)
    assert report.stages["plan-fediverse"] == {"accepts": 1} and report.stages["send-activitypub"] == {"sent": 1}
    (delivered,) = remote.server.requests_to("/users/alice/inbox")
    accept = delivered.json()
    assert accept["type"] == "Accept" and accept["actor"] == f"{base}/ap/actor"
    assert accept["object"] == {"id": f"{remote.actor}/follows/1", "type": "Follow", "actor": remote.actor,
                                "object": f"{base}/ap/actor"}  # fmt: skip
    checked = fedify({"do": "verify", "method": "POST", "url": remote.actor + "/inbox", "headers": delivered.headers,
                      "body": delivered.body.decode(), "publicKeyPem": our_key(base),
                      "keyId": f"{base}/ap/actor#main-key", "actorId": f"{base}/ap/actor"})  # fmt: skip
    assert checked["verified"] is True, "Fedify verifies our signature with the key our actor publishes"
    assert tick(app).stages["plan-fediverse"] == {"accepts": 0}, "accepted once"
    with app.db.read() as conn:
        (follower,) = fediverse_store.follower_list(conn)
    assert follower.accepted


def test_an_inbox_that_answers_410_loses_its_followers(ours: Any, remote: Remote) -> None:
    from syndicate.pipeline import tick

    app, base = ours
    assert post(base, remote, follow(base, remote)).status_code == 202
    remote.server.queue(Reply.status(410, JSON, b"{}"))
    report = tick(app)
    assert report.stages["send-activitypub"] == {"failed": 1}
    assert followers(app) == []
