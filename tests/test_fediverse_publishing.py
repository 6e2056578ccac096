# ruff: noqa: F811 - the fixtures ours and remote come from test_fediverse_inbox, and are named as parameters
"""Each statement to the fediverse: Create, Update and Delete of an Article, once per server, within the licence.

Followers are taken by the inbox as in test_fediverse_inbox.py (Fedify signs
their Follow); what arrives at their server's shared inbox is read back by
Fedify's own vocabulary (``Activity.fromJsonLd``) and its signature verified
by Fedify.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from test_fediverse_inbox import Remote, follow, our_key, ours, post, remote, start  # noqa: F401
from test_fediverse_signatures import fedify

from syndicate.model import RemoteActor
from syndicate.pipeline import tick
from syndicate.store import fediverse as fediverse_store

LONG = " ".join(f"word{n}" for n in range(200))


def followed(app: Any, base: str, remote: Remote) -> None:
    """Alice follows, and Bob on the same server: one shared inbox for both."""
    assert post(base, remote, follow(base, remote)).status_code == 202
    bob = RemoteActor(remote.server.url_for("/users/bob"), remote.server.url_for("/users/bob/inbox"),
                      remote.server.url_for("/inbox"), remote.server.url_for("/users/bob#main-key"), "PEM")  # fmt: skip
    with app.db.write() as conn:
        fediverse_store.add_follower(conn, bob, bob.id + "/follows/1", app.clock())


def shared_inbox_activities(remote: Remote) -> list[dict[str, Any]]:
    return [request.json() for request in remote.server.requests_to("/inbox")]


def read_by_fedify(activity: dict[str, Any]) -> dict[str, Any]:
    return fedify({"do": "parse", "json": activity})


def test_a_new_statement_reaches_each_server_once_as_a_create_of_an_article(
    site: Any,
    ours: Any,
    remote: Remote,
) -> None:
    app, base = ours
    tick(app)  # the actor's first run: what is on record is not news
    followed(app, base, remote)
    site.statement("fresh.md", "Fresh news", (site.clock.now - timedelta(minutes=1)).isoformat(), LONG,
                   categories=["United Nations"])  # fmt: skip
    report = tick(app)
    assert report.stages["plan-fediverse"]["activities"] == 1 and report.stages["plan-fediverse"]["deliveries"] == 1
    (create,) = shared_inbox_activities(remote)
    assert create["type"] == "Create" and create["to"] == ["https://www.w3.org/ns/activitystreams#Public"]
    assert create["cc"] == [f"{base}/ap/followers"]
    article = create["object"]
    assert article["type"] == "Article" and article["name"] == "Fresh news"
    assert article["url"] == "https://example.org/statements/fresh" and article["attributedTo"] == f"{base}/ap/actor"
    assert "word59" in article["content"] and "word60" not in article["content"], "an excerpt of 60 words"
    assert 'First published by Example Org at <a href="https://example.org/statements/fresh">' in article["content"]
    assert "All rights reserved" in article["content"]
    assert article["tag"] == [{"type": "Hashtag", "name": "#UnitedNations",
                               "href": "https://example.org/category/united-nations/"}]  # fmt: skip
    parsed = read_by_fedify(create)
    assert parsed == {"type": "Create", "object": "Article", "name": "Fresh news",
                      "url": "https://example.org/statements/fresh", "actor": f"{base}/ap/actor"}  # fmt: skip
    (delivered,) = remote.server.requests_to("/inbox")
    verified = fedify({"do": "verify", "method": "POST", "url": remote.server.url_for("/inbox"),
                       "headers": delivered.headers, "body": delivered.body.decode(), "publicKeyPem": our_key(base),
                       "keyId": f"{base}/ap/actor#main-key", "actorId": f"{base}/ap/actor"})  # fmt: skip
    assert verified["verified"] is True


def test_an_update_and_a_retraction_follow_as_update_and_delete(site: Any, ours: Any, remote: Remote) -> None:
    app, base = ours
    tick(app)
    followed(app, base, remote)
    published = (site.clock.now - timedelta(minutes=1)).isoformat()
    site.statement("news.md", "News", published, "First words.")
    tick(app)
    site.clock.advance(minutes=5)
    site.statement("news.md", "News, corrected", published, "Better words.")
    tick(app)
    site.clock.advance(minutes=5)
    site.statement("news.md", "News, corrected", published, "Gone.", retracted=True)
    tick(app)
    kinds = [a["type"] for a in shared_inbox_activities(remote)]
    assert kinds == ["Create", "Update", "Delete"]
    create, update, delete = shared_inbox_activities(remote)
    assert update["object"]["id"] == create["object"]["id"] and update["object"]["name"] == "News, corrected"
    assert "updated" in update["object"] and "Better words." in update["object"]["content"]
    assert delete["object"] == {"id": create["object"]["id"], "type": "Tombstone", "formerType": "Article",
                                "deleted": delete["object"]["deleted"]}  # fmt: skip
    assert read_by_fedify(delete)["object"] == "Tombstone"


def test_nothing_old_is_pushed_when_the_actor_is_enabled_or_a_backfill_comes(
    site: Any,
    ours: Any,
    remote: Remote,
) -> None:
    app, base = ours
    site.statement("before.md", "Before", (site.clock.now - timedelta(minutes=10)).isoformat(), "Old.")
    tick(app)
    followed(app, base, remote)
    site.statement("archive.md", "From 2013", "2013-09-12T10:00:00+03:00", "Old.")
    report = tick(app)
    assert report.stages["plan-fediverse"].get("too_old") == 1
    assert shared_inbox_activities(remote) == [], "neither the statements before the actor nor a backfill"


def test_a_full_licence_sends_the_whole_text(site: Any, make_app: Any, remote: Remote) -> None:
    app, base, server = start(site, make_app, more='license = "full"\n')
    try:
        tick(app)
        followed(app, base, remote)
        site.statement("fresh.md", "Fresh news", (site.clock.now - timedelta(minutes=1)).isoformat(), LONG)
        tick(app)
        (create,) = shared_inbox_activities(remote)
        assert "word199" in create["object"]["content"] and "First published by" in create["object"]["content"]
    finally:
        server.stop()
