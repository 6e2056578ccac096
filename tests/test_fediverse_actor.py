"""The organisation as a fediverse actor: found by WebFinger, described by NodeInfo, its key made once and rotatable.

Everything is fetched over HTTP from syndicate's own server on loopback, as a
remote server would: WebFinger first, then the actor at the link it gives,
with the Accept header Mastodon sends. The public key in the actor document is
checked against a signature made with the private key kept in the database.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from syndicate.cli import main
from syndicate.pipeline import build
from syndicate.store import admin as admin_store
from syndicate.store import fediverse as fediverse_store
from syndicate.web import create_app
from syndicate.web.server import WebServer, listening_socket

FEDIVERSE = (
    '\n[fediverse]\nenabled = true\nsummary = "Statements of <Example Org>"\nicon = "https://example.org/logo.png"\n'
)
MASTODON_ACCEPT = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'


@pytest.fixture
def served(site: Any, make_app: Any) -> Any:
    """The site's app with the actor on, served on a loopback port that is also its web.base_url."""
    sock = listening_socket("127.0.0.1:0")
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    site.extra = FEDIVERSE + f'\n[web]\nbase_url = "{base}"\n'
    site.statement("news.md", "News", "2026-11-20T10:00:00+03:00")
    app = make_app(site)
    build(app)
    server = WebServer(create_app(app), sock=sock, threads=2)
    server.start()
    yield app, base
    server.stop()


def test_webfinger_leads_to_the_actor_and_its_key_verifies_what_the_stored_key_signs(served: Any) -> None:
    app, base = served
    host = base.removeprefix("http://")
    found = requests.get(f"{base}/.well-known/webfinger", params={"resource": f"acct:news@{host}"}, timeout=5)
    assert found.status_code == 200 and found.headers["Content-Type"] == "application/jrd+json"
    assert found.headers["Access-Control-Allow-Origin"] == "*"
    jrd = found.json()
    assert jrd["subject"] == f"acct:news@{host}"
    (self_link,) = [link for link in jrd["links"] if link["rel"] == "self"]
    assert self_link["type"] == "application/activity+json"
    actor = requests.get(self_link["href"], headers={"Accept": MASTODON_ACCEPT}, timeout=5)
    assert actor.status_code == 200 and actor.headers["Content-Type"] == "application/activity+json"
    document = actor.json()
    assert document["id"] == self_link["href"] == f"{base}/ap/actor"
    assert document["type"] == "Organization" and document["preferredUsername"] == "news"
    assert document["name"] == "Example Org" and document["url"] == "https://example.org"
    assert document["summary"] == "Statements of &lt;Example Org&gt;", "the summary is HTML: escaped"
    assert {document[k] for k in ("inbox", "outbox", "followers")} == {f"{base}/ap/{n}" for n in
                                                                       ("inbox", "outbox", "followers")}  # fmt: skip
    assert document["endpoints"]["sharedInbox"] == f"{base}/ap/shared-inbox"
    assert document["icon"] == {"type": "Image", "url": "https://example.org/logo.png", "mediaType": "image/png"}
    assert (
        'rel="me' in document["attachment"][0]["value"] and "https://example.org" in document["attachment"][0]["value"]
    )
    key = document["publicKey"]
    assert key["id"] == f"{base}/ap/actor#main-key" and key["owner"] == document["id"]
    public = serialization.load_pem_public_key(key["publicKeyPem"].encode())
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    with app.db.read() as conn:
        stored = fediverse_store.current_key(conn)
    private = serialization.load_pem_private_key(stored.private_pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    signature = private.sign(b"signed by the actor", padding.PKCS1v15(), hashes.SHA256())
    public.verify(signature, b"signed by the actor", padding.PKCS1v15(), hashes.SHA256())  # raises if not


def test_content_negotiation_gives_json_ld_to_those_who_ask_and_the_site_to_browsers(served: Any) -> None:
    _, base = served
    ld = requests.get(f"{base}/ap/actor", headers={"Accept": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'},
                      timeout=5)  # fmt: skip
    assert ld.headers["Content-Type"] == 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
    assert ld.json()["type"] == "Organization" and ld.headers["Vary"] == "Accept"
    browser = requests.get(f"{base}/ap/actor", headers={"Accept": "text/html,*/*;q=0.8", "Host": "evil.example"},
                           allow_redirects=False, timeout=5)  # fmt: skip
    assert browser.status_code == 303 and browser.headers["Location"] == "https://example.org"


def test_webfinger_names_no_one_else_and_says_what_is_missing(served: Any) -> None:
    _, base = served
    host = base.removeprefix("http://")
    for resource, status in ((f"acct:other@{host}", 404), ("acct:news@elsewhere.example", 404), ("", 400),
                             (f"news@{host}", 404), ("acct:news@example.org", 200), (f"{base}/ap/actor", 200),
                             ("acct:" + "a" * 5000, 404)):  # fmt: skip
        answer = requests.get(f"{base}/.well-known/webfinger", params={"resource": resource}, timeout=5)
        assert answer.status_code == status, resource


def test_host_meta_and_nodeinfo_describe_the_server(served: Any) -> None:
    _, base = served
    meta = requests.get(f"{base}/.well-known/host-meta", timeout=5)
    assert meta.headers["Content-Type"].startswith("application/xrd+xml")
    (link,) = etree.fromstring(meta.content).findall("{http://docs.oasis-open.org/ns/xri/xrd-1.0}Link")
    assert link.get("rel") == "lrdd" and link.get("template") == f"{base}/.well-known/webfinger?resource={{uri}}"
    links = requests.get(f"{base}/.well-known/nodeinfo", timeout=5).json()["links"]
    assert links == [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": f"{base}/nodeinfo/2.1"}]
    info = requests.get(links[0]["href"], timeout=5)
    assert (
        info.headers["Content-Type"] == 'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"'
    )
    body = info.json()
    assert body["version"] == "2.1" and body["software"]["name"] == "syndicate" and body["protocols"] == ["activitypub"]
    assert body["openRegistrations"] is False and body["usage"]["localPosts"] == 1
    assert body["usage"]["users"]["total"] == 1


def test_the_key_is_made_once_kept_and_rotated_on_the_operators_word(served: Any) -> None:
    app, base = served
    first = requests.get(f"{base}/ap/actor", headers={"Accept": MASTODON_ACCEPT}, timeout=5).json()["publicKey"]
    again = requests.get(f"{base}/ap/actor", headers={"Accept": MASTODON_ACCEPT}, timeout=5).json()["publicKey"]
    assert first == again
    config = str(app.config.root / "config.toml")
    rotated = CliRunner().invoke(main, ["--config", config, "fediverse", "rotate-key"])
    assert rotated.exit_code == 0, rotated.output
    after = requests.get(f"{base}/ap/actor", headers={"Accept": MASTODON_ACCEPT}, timeout=5).json()["publicKey"]
    assert after["id"] == first["id"] and after["publicKeyPem"] != first["publicKeyPem"]
    with app.db.read() as conn:
        assert fediverse_store.key_count(conn) == 2
        newest = admin_store.audit_lines(conn, 1)[0]
        assert (newest.actor, newest.action) == ("cli", "rotate actor key")
    status = CliRunner().invoke(main, ["--config", config, "fediverse", "status"])
    assert status.exit_code == 0 and f"@news@{base.removeprefix('http://')}" in status.output
    assert "2 made in all" in status.output


def test_the_sites_pages_link_the_actor_with_rel_me(served: Any) -> None:
    app, base = served
    page = (app.config.site.dir / "statements/news/index.html").read_text()
    assert f'<link rel="me" href="{base}/ap/actor">' in page


def test_without_fediverse_enabled_there_is_no_actor(site: Any, make_app: Any) -> None:
    client = create_app(make_app(site)).test_client()
    for path in ("/.well-known/webfinger?resource=acct:news@example.org", "/.well-known/nodeinfo", "/nodeinfo/2.1",
                 "/.well-known/host-meta", "/ap/actor"):  # fmt: skip
        assert client.get(path).status_code == 404, path
