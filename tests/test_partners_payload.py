"""What a partner receives: the Atom entry document (or JSON) by licence, and the retraction."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from lxml import etree
from lxml import html as lxml_html
from validators.atom import validate_atom

from syndicate.config import Config, PartnerConfig, from_mapping
from syndicate.model import Change, Revision
from syndicate.render import templates
from syndicate.render.partner import PartnerRenderer, probe_revision

ROOT = Path(__file__).resolve().parent.parent
BODY = (
    "<p>The association welcomes the council&#8217;s decision &amp; thanks its members. "
    "It was taken in <b>Geneva</b>.</p>\n<p>Delegations from twelve countries took part.</p>"
)
REVISION = Revision(
    seq=7,
    statement_id="geneva",
    change=Change.PUBLISHED,
    tag_id="tag:example.org,2026-11-20:statements/geneva",
    title="Statement on Geneva",
    published=datetime(2026, 11, 20, 7, 0, tzinfo=UTC),
    updated=datetime(2026, 11, 21, 7, 0, tzinfo=UTC),
    lang="tr",
    author="Press Office",
    canonical_url="https://example.org/statements/geneva?a=1&b=2",
    summary="The association welcomes the decision.",
    body_html=BODY,
    body_text="The association welcomes the council's decision & thanks its members.",
    categories=("News", "United Nations"),
)


@pytest.fixture
def config() -> Config:
    """A site with one partner of each licence."""
    partner = {"url": "https://partner.example/hook", "secret_env": "PARTNER_SECRET"}
    raw = {
        "site": {"title": "Example Org", "url": "https://example.org", "timezone": "Europe/Istanbul", "rights": "©"},
        "templates": {"dir": str(ROOT / "templates")},
        "partners": [
            {"name": "excerpt", "excerpt_words": 12, **partner},
            {"name": "full", "license": "full", **partner},
        ],
    }
    return from_mapping(raw, ROOT)


@pytest.fixture
def renderer(config: Config) -> PartnerRenderer:
    env = templates.environment(config.templates.dir)
    html, text = (templates.load(env, f"feeds/attribution.{kind}") for kind in ("html", "txt"))
    return PartnerRenderer(config, html, text)


def partner(config: Config, name: str, **changes: object) -> PartnerConfig:
    found = next(p for p in config.partners if p.name == name)
    return replace(found, **changes)


def atom_content(body: bytes) -> str:
    content = etree.fromstring(body).find("{http://www.w3.org/2005/Atom}content")
    assert content is not None
    return str(content.text)


def test_full_licence_gets_exactly_the_statement_then_the_attribution(renderer, config):
    content = renderer.content(REVISION, partner(config, "full"))
    text, attribution = content.rsplit("\n", 1)
    assert text == BODY
    assert attribution.startswith('<p class="attribution">First published by <a href="https://example.org">')
    assert 'href="https://example.org/statements/geneva?a=1&amp;b=2"' in attribution


def test_excerpt_licence_gets_the_first_sentences_and_the_active_link(renderer, config):
    content = renderer.content(REVISION, partner(config, "excerpt"))
    excerpt, read_more, attribution = content.split("\n")
    assert excerpt == "<p>The association welcomes the council’s decision &amp; thanks its members.</p>"
    link = lxml_html.fragment_fromstring(read_more).find("a")
    assert read_more.startswith('<p class="read-more">Read the full statement at <a ')
    assert link.get("href") == link.text == REVISION.canonical_url
    assert attribution.startswith('<p class="attribution">')


@pytest.mark.parametrize("name", ["excerpt", "full"])
def test_atom_entry_document_is_valid_and_complete(renderer, config, name):
    payload = renderer.render(REVISION, partner(config, name))
    assert payload.content_type == "application/atom+xml"
    assert validate_atom(payload.body) == []
    root = etree.fromstring(payload.body)
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "tr"
    parsed = feedparser.parse(payload.body)
    assert parsed.bozo == 0
    (entry,) = parsed.entries
    assert (entry.id, entry.title, entry.link) == (REVISION.tag_id, REVISION.title, REVISION.canonical_url)
    assert (entry.published, entry.updated) == ("2026-11-20T10:00:00+03:00", "2026-11-21T10:00:00+03:00")
    assert (entry.author, entry.rights) == ("Press Office", "©")
    assert [t.term for t in entry.tags] == ["News", "United Nations"]
    assert entry.source.id == "https://example.org/feeds/atom.xml"
    assert entry.source.title == "Example Org"
    assert entry.source.links == [
        {"rel": "self", "href": "https://example.org/feeds/atom.xml", "type": "application/atom+xml"}
    ]
    assert atom_content(payload.body) == renderer.content(REVISION, partner(config, name))


def test_json_carries_the_same_fields_as_atom(renderer, config):
    chosen = partner(config, "excerpt", format="json")
    payload = renderer.render(REVISION, chosen)
    assert payload.content_type == "application/json"
    document = json.loads(payload.body)
    assert (document["type"], document["timestamp"]) == ("statement.published", "2026-11-21T10:00:00+03:00")
    data = document["data"]
    assert (data["id"], data["url"], data["title"]) == (REVISION.tag_id, REVISION.canonical_url, REVISION.title)
    assert (data["date_published"], data["date_modified"]) == ("2026-11-20T10:00:00+03:00", "2026-11-21T10:00:00+03:00")
    assert (data["language"], data["tags"], data["rights"]) == ("tr", ["News", "United Nations"], "©")
    assert data["authors"] == [{"name": "Press Office"}]
    assert data["content_html"] == atom_content(renderer.render(REVISION, partner(config, "excerpt")).body)
    assert data["attribution"].startswith("First published by Example Org")
    assert data["license"] == "excerpt"
    assert data["source"]["feed_url"] == "https://example.org/feeds/atom.xml"


def test_retraction_is_an_rfc_6721_deleted_entry(renderer, config):
    retracted = replace(REVISION, change=Change.RETRACTED)
    payload = renderer.render(retracted, partner(config, "full"))
    root = etree.fromstring(payload.body)
    assert root.tag == "{http://purl.org/atompub/tombstones/1.0}deleted-entry"
    assert (root.get("ref"), root.get("when")) == (REVISION.tag_id, "2026-11-21T10:00:00+03:00")
    link = root.find("{http://www.w3.org/2005/Atom}link")
    assert (link.get("rel"), link.get("href")) == ("alternate", REVISION.canonical_url)
    assert root.findtext("{http://www.w3.org/2005/Atom}source/{http://www.w3.org/2005/Atom}id") == (
        "https://example.org/feeds/atom.xml"
    )
    assert feedparser.parse(payload.body).bozo == 0
    document = json.loads(renderer.render(retracted, partner(config, "full", format="json")).body)
    assert document["type"] == "statement.retracted"
    assert (document["data"]["id"], document["data"]["date_deleted"]) == (REVISION.tag_id, document["timestamp"])


def test_same_revision_same_bytes(renderer, config):
    chosen = partner(config, "excerpt")
    assert renderer.render(REVISION, chosen).body == renderer.render(REVISION, chosen).body


def test_test_event_says_it_is_no_statement(renderer, config):
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    revision = probe_revision(config.site, now)
    document = json.loads(renderer.render(revision, partner(config, "full", format="json"), "syndicate.test").body)
    assert document["type"] == "syndicate.test"
    assert re.fullmatch(r"tag:example\.org,2026-11-26:test/20261126T150000", document["data"]["id"])
    assert "not a statement" in document["data"]["content_html"]
    assert validate_atom(renderer.render(revision, partner(config, "full")).body) == []
