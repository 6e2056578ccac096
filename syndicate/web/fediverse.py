"""The organisation as a fediverse actor: WebFinger, host-meta, NodeInfo 2.1 and the actor document.

- ``GET /.well-known/webfinger?resource=acct:<username>@<host>`` (or the actor's
  URL): the JRD that leads a Mastodon user from ``@news@host`` to the actor.
- ``GET /.well-known/host-meta``, ``/.well-known/nodeinfo``, ``/nodeinfo/2.1``.
- ``GET /ap/actor``: with ``Accept: application/activity+json`` (or
  ``application/ld+json; profile=...``) the actor document, in the type
  asked for; a browser is sent to the site (303, to ``site.url``, never built
  from the request).
- ``POST /ap/inbox`` and ``/ap/shared-inbox``: activities, verified and acted
  on by :class:`syndicate.inbound.activitypub.Inbox`; 202 when taken, 401 for
  a signature that does not hold, 400/413/415/422 for what is not an activity.

Registered only with ``[fediverse] enabled``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, request
from requests.structures import CaseInsensitiveDict

from syndicate.activitypub import keys
from syndicate.activitypub.actors import Signer
from syndicate.activitypub.signatures import Message
from syndicate.app import App, http_session
from syndicate.inbound.activitypub import Inbox, Refused
from syndicate.model import Change
from syndicate.render import activitypub as documents
from syndicate.store import fediverse as fediverse_store
from syndicate.store import statements as statement_store

ACTIVITY_TYPES = ("application/activity+json", "application/ld+json")
log = logging.getLogger(__name__)


def _json(body: dict[str, Any], content_type: str, status: int = 200) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False, sort_keys=True), status, content_type=content_type)
    response.headers["Access-Control-Allow-Origin"] = "*"  # public documents, read by web clients too
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def wants_activity(accept: str) -> str | None:
    """The ActivityPub type a request's ``Accept`` asks for (as it should be answered), or None."""
    for part in accept.split(","):
        kind = part.split(";")[0].strip().lower()
        if kind == "application/activity+json":
            return documents.ACTIVITY_JSON
        if kind == "application/ld+json":
            return documents.LD_JSON
    return None


class FediversePages:
    """Serves the actor and the documents that find it."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.config = app.config
        at = documents.urls(app.config)
        self.inbox = Inbox(app.db, at.actor, self._ours, self._signer, http_session, app.clock,
                           app.config.fediverse.allow_private_addresses)  # fmt: skip

    def _ours(self, url: str) -> bool:
        """Whether ``url`` names one of our statements or the actor: what likes and replies are counted for."""
        return bool(url) and (url.startswith(self.config.site.url.rstrip("/") + "/")
                              or url.startswith(self.config.web_base_url + "/ap/"))  # fmt: skip

    def _signer(self) -> Signer:
        key = keys.current(self.app.db, self.app.clock())
        return Signer(documents.urls(self.config).key_id, key.private_pem)

    def blueprint(self) -> Blueprint:
        """The routes of this area."""
        bp = Blueprint("fediverse", __name__)
        bp.add_url_rule("/.well-known/webfinger", "webfinger", self.webfinger, methods=["GET"])
        bp.add_url_rule("/.well-known/host-meta", "host_meta", self.host_meta, methods=["GET"])
        bp.add_url_rule("/.well-known/nodeinfo", "nodeinfo_links", self.nodeinfo_links, methods=["GET"])
        bp.add_url_rule("/nodeinfo/2.1", "nodeinfo", self.nodeinfo, methods=["GET"])
        bp.add_url_rule("/ap/actor", "actor", self.actor, methods=["GET"])
        bp.add_url_rule("/ap/followers", "followers", self.followers, methods=["GET"])
        bp.add_url_rule("/ap/outbox", "outbox", self.outbox, methods=["GET"])
        bp.add_url_rule("/ap/statements/<statement_id>", "article", self.article, methods=["GET"])
        bp.add_url_rule("/ap/inbox", "inbox", self.receive, methods=["POST"])
        bp.add_url_rule("/ap/shared-inbox", "shared_inbox", self.receive, methods=["POST"])
        return bp

    def followers(self) -> Response:
        """How many follow the actor."""
        with self.app.db.read() as conn:
            total = fediverse_store.follower_count(conn)
        return _json(documents.followers_collection(self.config, total), documents.ACTIVITY_JSON)

    def outbox(self) -> Response:
        """The published statements as Creates, newest first: the collection, or ``?page=N`` of it."""
        page = request.args.get("page", "")
        with self.app.db.read() as conn:
            total = statement_store.published_count(conn)
            if not page:
                return _json(documents.outbox_collection(self.config, total), documents.ACTIVITY_JSON)
            if not page.isdigit() or not 1 <= int(page) <= 100_000:
                return _json({"error": "page: a number from 1"}, "application/json", 400)
            size = documents.OUTBOX_PAGE
            shown = statement_store.newest_published(conn, size, (int(page) - 1) * size)
        return _json(documents.outbox_page(self.config, shown, int(page), total), documents.ACTIVITY_JSON)

    def article(self, statement_id: str) -> Response:
        """A published statement as its Article; a browser goes to its page; 410 once retracted."""
        with self.app.db.read() as conn:
            revision = statement_store.latest_revision(conn, statement_id[:200])
        if revision is None:
            return _json({"error": "no such statement"}, "application/json", 404)
        if revision.change == Change.RETRACTED:
            tombstone = {"@context": documents.AS_CONTEXT, "id": documents.article_id(self.config, statement_id),
                         "type": "Tombstone", "formerType": "Article", "deleted": revision.updated.isoformat()}  # fmt: skip
            return _json(tombstone, documents.ACTIVITY_JSON, 410)
        kind = wants_activity(request.headers.get("Accept", ""))
        if kind is None:
            response = Response(status=303, headers={"Location": revision.canonical_url})
        else:
            response = _json({"@context": documents.AS_CONTEXT, **documents.article(self.config, revision)}, kind)
        response.headers["Vary"] = "Accept"
        return response

    def receive(self) -> Response:
        """An activity for the actor: 202 once verified and taken, else the status it was refused with."""
        kind = (request.content_type or "").split(";")[0].strip().lower()
        if kind not in ACTIVITY_TYPES:
            return _json({"error": "send application/activity+json"}, "application/json", 415)
        message = Message(request.method, request.url, CaseInsensitiveDict(dict(request.headers)),
                          request.get_data(cache=False))  # fmt: skip
        try:
            heard = self.inbox.receive(message)
        except Refused as refused:
            log.info("inbox: refused (%d): %s", refused.status, refused)
            return _json({"error": str(refused)}, "application/json", refused.status)
        return _json({"heard": heard.kind}, "application/json", 202)

    def webfinger(self) -> Response:
        """The JRD for ``?resource=``: 400 without one, 404 for anyone but the actor."""
        resource = request.args.get("resource", "")
        if not resource:
            return _json({"error": "resource: give acct:user@host"}, "application/json", 400)
        found = documents.webfinger(self.config, resource[:500])
        if found is None:
            return _json({"error": "no such account here"}, "application/json", 404)
        return _json(found, documents.JRD_JSON)

    def host_meta(self) -> Response:
        """Where WebFinger is."""
        response = Response(documents.host_meta(self.config), content_type="application/xrd+xml; charset=utf-8")
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    def nodeinfo_links(self) -> Response:
        """Where NodeInfo is."""
        return _json(documents.nodeinfo_links(self.config), "application/json")

    def nodeinfo(self) -> Response:
        """NodeInfo 2.1, with the count of published statements."""
        with self.app.db.read() as conn:
            posts = statement_store.counts_by_state(conn).get("published", 0)
        return _json(documents.nodeinfo(self.config, posts), documents.NODEINFO_JSON)

    def actor(self) -> Response:
        """The actor document for ActivityPub clients; a browser goes to the site."""
        kind = wants_activity(request.headers.get("Accept", ""))
        if kind is None:
            response = Response(status=303, headers={"Location": self.config.site.url})
        else:
            key = keys.current(self.app.db, self.app.clock())
            response = _json(documents.actor(self.config, key.public_pem), kind)
        response.headers["Vary"] = "Accept"
        return response
