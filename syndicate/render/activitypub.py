"""The documents that make the organisation followable: the actor, WebFinger, NodeInfo 2.1, host-meta (no I/O).

The actor lives on syndicate's own web server (``web.base_url``): its id
``<base>/ap/actor``, its inbox, outbox and followers beside it, and the
public key that receivers check every signature against. WebFinger answers
``acct:<username>@<that host>`` (and the site's host, when it differs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import quoteattr

from markupsafe import escape

from syndicate import __version__
from syndicate.config import Config
from syndicate.model import Change, Revision
from syndicate.render.licence import allowed_as
from syndicate.text import slugify

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
ACTIVITY_JSON = "application/activity+json"
LD_JSON = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
JRD_JSON = "application/jrd+json"
NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2.1"
NODEINFO_JSON = f'application/json; profile="{NODEINFO_SCHEMA}#"'
SOFTWARE_REPOSITORY = "https://github.com/syndicate/syndicate"


@dataclass(frozen=True)
class ActorUrls:
    """Where the actor and its collections are."""

    base: str

    @property
    def actor(self) -> str:
        return f"{self.base}/ap/actor"

    @property
    def key_id(self) -> str:
        return f"{self.actor}#main-key"

    @property
    def inbox(self) -> str:
        return f"{self.base}/ap/inbox"

    @property
    def shared_inbox(self) -> str:
        return f"{self.base}/ap/shared-inbox"

    @property
    def outbox(self) -> str:
        return f"{self.base}/ap/outbox"

    @property
    def followers(self) -> str:
        return f"{self.base}/ap/followers"


def urls(config: Config) -> ActorUrls:
    """The actor's URLs for ``config``."""
    return ActorUrls(config.web_base_url)


def hosts(config: Config) -> tuple[str, ...]:
    """The hosts WebFinger answers for: the web server's, and the site's if it is another."""
    found = [urlsplit(config.web_base_url).netloc, config.site.host]
    return tuple(dict.fromkeys(h.lower() for h in found if h))


def handle(config: Config) -> str:
    """``username@host``, as people type it to follow the actor."""
    return f"{config.fediverse.username}@{hosts(config)[0]}"


def actor(config: Config, public_pem: str) -> dict[str, Any]:
    """The actor document: an ``Organization`` with its key, its collections and a verified link to the site."""
    settings, at = config.fediverse, urls(config)
    site = config.site.url
    document: dict[str, Any] = {
        "@context": [AS_CONTEXT, SECURITY_CONTEXT],
        "id": at.actor,
        "type": "Organization",
        "preferredUsername": settings.username,
        "name": settings.display_name or config.site.title,
        "summary": str(escape(settings.summary)) if settings.summary else "",
        "url": site,
        "inbox": at.inbox,
        "outbox": at.outbox,
        "followers": at.followers,
        "endpoints": {"sharedInbox": at.shared_inbox},
        "manuallyApprovesFollowers": False,
        "discoverable": True,
        "publicKey": {"id": at.key_id, "owner": at.actor, "publicKeyPem": public_pem},
        # Mastodon shows a field as verified when the page it links to links back with rel="me".
        "attachment": [{"type": "PropertyValue", "name": "Website", "value": _me_link(site)}],
    }
    if settings.icon:
        document["icon"] = {"type": "Image", "url": settings.icon, "mediaType": _image_type(settings.icon)}
    return document


def webfinger(config: Config, resource: str) -> dict[str, Any] | None:
    """The JRD for ``resource`` (``acct:user@host`` or the actor's URL); None when it names no one here."""
    at = urls(config)
    if resource != at.actor:
        name, _, host = resource.removeprefix("acct:").partition("@")
        if not resource.startswith("acct:") or name.lower() != config.fediverse.username.lower():
            return None
        if host.lower() not in hosts(config):
            return None
    return {
        "subject": f"acct:{handle(config)}",
        "aliases": [at.actor, config.site.url],
        "links": [
            {"rel": "self", "type": ACTIVITY_JSON, "href": at.actor},
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": config.site.url},
        ],
    }


def host_meta(config: Config) -> str:
    """``/.well-known/host-meta``: where WebFinger is, for the servers that still look here first."""
    template = f"{config.web_base_url}/.well-known/webfinger?resource={{uri}}"
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
            f'<Link rel="lrdd" type="application/xrd+xml" template={quoteattr(template)}/>\n</XRD>\n')  # fmt: skip


def nodeinfo_links(config: Config) -> dict[str, Any]:
    """``/.well-known/nodeinfo``: where the NodeInfo 2.1 document is."""
    return {"links": [{"rel": NODEINFO_SCHEMA, "href": f"{config.web_base_url}/nodeinfo/2.1"}]}


def nodeinfo(config: Config, posts: int) -> dict[str, Any]:
    """NodeInfo 2.1: this server runs syndicate, speaks ActivityPub, has one account and no sign-ups."""
    return {
        "version": "2.1",
        "software": {"name": "syndicate", "version": __version__, "repository": SOFTWARE_REPOSITORY},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": ["atom1.0", "rss2.0"]},
        "openRegistrations": False,
        "usage": {"users": {"total": 1, "activeMonth": 1, "activeHalfyear": 1}, "localPosts": posts},
        "metadata": {"nodeName": config.site.title},
    }


def accept(config: Config, follow_id: str, follower_id: str, activity_id: str) -> dict[str, Any]:
    """Our ``Accept`` of a follower's ``Follow``: what makes their server show the follow as done."""
    at = urls(config)
    return {
        "@context": AS_CONTEXT,
        "id": f"{at.base}/ap/activities/{activity_id}",
        "type": "Accept",
        "actor": at.actor,
        "object": {"id": follow_id, "type": "Follow", "actor": follower_id, "object": at.actor},
    }


PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def article(config: Config, revision: Revision) -> dict[str, Any]:
    """A statement as an ``Article``, within ``fediverse.license``, with the attribution and the active link."""
    at, settings = urls(config), config.fediverse
    shown = allowed_as(revision, settings.license, settings.excerpt_words)
    link = f'<a href="{escape(revision.canonical_url)}">{escape(revision.canonical_url)}</a>'
    closing = f"<p>First published by {escape(config.site.title)} at {link}.</p>"
    if config.site.rights:
        closing += f"<p>{escape(config.site.rights)}</p>"
    content = shown.body_html + closing
    document: dict[str, Any] = {
        "id": article_id(config, revision.statement_id),
        "type": "Article",
        "attributedTo": at.actor,
        "name": revision.title,
        # No "summary": Mastodon would show it as a content warning and hide the statement behind it.
        "content": content,
        "contentMap": {revision.lang: content},
        "url": revision.canonical_url,
        "published": revision.published.isoformat(),
        "to": [PUBLIC],
        "cc": [at.followers],
        "tag": [
            {"type": "Hashtag", "name": "#" + _hashtag(c), "href": _category_url(config, c)}
            for c in revision.categories
            if _hashtag(c)
        ],
    }
    if revision.change == Change.UPDATED:
        document["updated"] = revision.updated.isoformat()
    return {k: v for k, v in document.items() if v is not None}


def article_id(config: Config, statement_id: str) -> str:
    """The Article's id: one per statement, the same through its updates and its deletion."""
    return f"{urls(config).base}/ap/statements/{statement_id}"


def activity_for(config: Config, revision: Revision) -> dict[str, Any]:
    """The activity a revision makes: ``Create``, ``Update``, or ``Delete`` of a ``Tombstone``."""
    at = urls(config)
    kind = {Change.PUBLISHED: "Create", Change.UPDATED: "Update", Change.RETRACTED: "Delete"}[revision.change]
    if revision.change == Change.RETRACTED:
        target: dict[str, Any] = {"id": article_id(config, revision.statement_id), "type": "Tombstone",
                                  "formerType": "Article", "deleted": revision.updated.isoformat()}  # fmt: skip
    else:
        target = article(config, revision)
    return {"@context": AS_CONTEXT, "id": f"{at.base}/ap/activities/revision-{revision.seq}", "type": kind,
            "actor": at.actor, "published": revision.updated.isoformat(), "to": [PUBLIC], "cc": [at.followers],
            "object": target}  # fmt: skip


OUTBOX_PAGE = 20


def followers_collection(config: Config, total: int) -> dict[str, Any]:
    """The followers collection: how many, not who (their servers know; ours does not tell)."""
    return {"@context": AS_CONTEXT, "id": urls(config).followers, "type": "OrderedCollection", "totalItems": total}


def outbox_collection(config: Config, total: int) -> dict[str, Any]:
    """The outbox: how many statements are published, and its first page (newest first)."""
    at = urls(config)
    document: dict[str, Any] = {"@context": AS_CONTEXT, "id": at.outbox, "type": "OrderedCollection",
                                "totalItems": total}  # fmt: skip
    if total:
        document["first"] = f"{at.outbox}?page=1"
        document["last"] = f"{at.outbox}?page={max(1, -(-total // OUTBOX_PAGE))}"
    return document


def outbox_page(config: Config, revisions: list[Revision], page: int, total: int) -> dict[str, Any]:
    """One page of the outbox: a Create of each statement on it, backfills included (listed, never pushed)."""
    at = urls(config)
    document: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": f"{at.outbox}?page={page}",
        "type": "OrderedCollectionPage",
        "partOf": at.outbox,
        "totalItems": total,
        "orderedItems": [_listed(config, r) for r in revisions],
    }
    if page > 1:
        document["prev"] = f"{at.outbox}?page={page - 1}"
    if page * OUTBOX_PAGE < total:
        document["next"] = f"{at.outbox}?page={page + 1}"
    return document


def _listed(config: Config, revision: Revision) -> dict[str, Any]:
    at = urls(config)
    return {"id": f"{article_id(config, revision.statement_id)}#create", "type": "Create", "actor": at.actor,
            "published": revision.published.isoformat(), "to": [PUBLIC], "cc": [at.followers],
            "object": article(config, revision)}  # fmt: skip


def _hashtag(category: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^\w]+", category) if part)


def _category_url(config: Config, category: str) -> str:
    return f"{config.site.url.rstrip('/')}/category/{quote(slugify(category))}/"


def _me_link(site: str) -> str:
    return f'<a href="{escape(site)}" rel="me nofollow noopener" target="_blank">{escape(site)}</a>'


def _image_type(url: str) -> str:
    path = urlsplit(url).path.lower()
    return "image/png" if path.endswith(".png") else "image/webp" if path.endswith(".webp") else "image/jpeg"
