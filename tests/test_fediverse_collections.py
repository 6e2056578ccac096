# ruff: noqa: F811 - the fixtures ours and remote come from test_fediverse_inbox, and are named as parameters
"""The actor's collections and objects, fetched as a remote server would: followers, the outbox, each Article.

The outbox lists every published statement, backfills included (they are
listed, never pushed), newest first, twenty a page; Fedify reads its items.
"""

from __future__ import annotations

from typing import Any

import requests
from test_fediverse_actor import MASTODON_ACCEPT
from test_fediverse_inbox import Remote, follow, ours, post, remote  # noqa: F401
from test_fediverse_publishing import read_by_fedify

from syndicate.pipeline import tick


def get(url: str, **params: str) -> Any:
    return requests.get(url, params=params, headers={"Accept": MASTODON_ACCEPT}, timeout=10, allow_redirects=False)


def test_followers_says_how_many_not_who(ours: Any, remote: Remote) -> None:
    _, base = ours
    assert get(f"{base}/ap/followers").json()["totalItems"] == 0
    assert post(base, remote, follow(base, remote)).status_code == 202
    followers = get(f"{base}/ap/followers").json()
    assert followers == {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{base}/ap/followers",
                         "type": "OrderedCollection", "totalItems": 1}  # fmt: skip


def test_the_outbox_lists_every_published_statement_newest_first_backfills_too(site: Any, ours: Any) -> None:
    app, base = ours
    for n in range(22):
        site.statement(f"s{n:02}.md", f"Statement {n}", f"2026-11-{1 + n:02}T10:00:00+03:00")
    site.statement("old.md", "From 2013", "2013-09-12T10:00:00+03:00")
    site.statement("gone.md", "Withdrawn", "2026-11-25T10:00:00+03:00", retracted=True)
    tick(app)
    outbox = get(f"{base}/ap/outbox").json()
    assert outbox["type"] == "OrderedCollection" and outbox["totalItems"] == 23
    assert outbox["first"] == f"{base}/ap/outbox?page=1" and outbox["last"] == f"{base}/ap/outbox?page=2"
    first = get(outbox["first"]).json()
    names = [item["object"]["name"] for item in first["orderedItems"]]
    assert names == [f"Statement {n}" for n in range(21, 1, -1)] and first["next"] == f"{base}/ap/outbox?page=2"
    second = get(first["next"]).json()
    assert [i["object"]["name"] for i in second["orderedItems"]] == ["Statement 1", "Statement 0", "From 2013"]
    assert "next" not in second and second["prev"] == f"{base}/ap/outbox?page=1"
    assert (
        read_by_fedify({"@context": "https://www.w3.org/ns/activitystreams", **second["orderedItems"][-1]})["object"]
        == "Article"
    )
    assert get(f"{base}/ap/outbox", page="0").status_code == 400
    assert get(f"{base}/ap/outbox", page="x").status_code == 400
    assert get(f"{base}/ap/outbox", page="9").json()["orderedItems"] == []


def test_each_article_is_at_its_id_and_a_retracted_one_is_a_tombstone(site: Any, ours: Any) -> None:
    app, base = ours
    site.statement("news.md", "News", "2026-11-20T10:00:00+03:00", "Text.")
    site.statement("gone.md", "Withdrawn", "2026-11-20T11:00:00+03:00", "Text.")
    tick(app)
    site.statement("gone.md", "Withdrawn", "2026-11-20T11:00:00+03:00", "Text.", retracted=True)
    tick(app)
    article = get(f"{base}/ap/statements/news")
    assert article.status_code == 200 and article.headers["Content-Type"] == "application/activity+json"
    assert article.json()["id"] == f"{base}/ap/statements/news" and article.json()["type"] == "Article"
    browser = requests.get(f"{base}/ap/statements/news", headers={"Accept": "text/html"}, allow_redirects=False,
                           timeout=10)  # fmt: skip
    assert browser.status_code == 303 and browser.headers["Location"] == "https://example.org/statements/news"
    gone = get(f"{base}/ap/statements/gone")
    assert gone.status_code == 410 and gone.json()["type"] == "Tombstone"
    assert get(f"{base}/ap/statements/nope").status_code == 404


def test_status_and_metrics_count_followers_servers_and_reactions(ours: Any, remote: Remote) -> None:
    from click.testing import CliRunner

    from syndicate.cli import main

    app, base = ours
    assert post(base, remote, follow(base, remote)).status_code == 202
    like = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{remote.actor}/likes/1", "type": "Like",
            "actor": remote.actor, "object": "https://example.org/statements/news"}  # fmt: skip
    assert post(base, remote, like).status_code == 202
    status = CliRunner().invoke(main, ["--config", str(app.config.root / "config.toml"), "status"])
    assert "fediverse: 1 follower(s) on 1 server(s); reactions: 1 like" in status.output
    metrics = requests.get(f"{base}/metrics", timeout=10).text
    assert "syndicate_fediverse_followers 1" in metrics and "syndicate_fediverse_servers 1" in metrics
    assert 'syndicate_fediverse_reactions{kind="like"} 1' in metrics
