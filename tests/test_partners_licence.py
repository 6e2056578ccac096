"""The licence holds in every field of every payload: an excerpt partner never gets more words than it may.

Each payload is read as a partner reads it (lxml for Atom, json for JSON) and
the statement's words in each field that carries them (Atom ``summary`` and
``content``, JSON ``summary``, ``content_html`` and ``content_text`` if there
is one) are counted the way the excerpt module counts them. The "Read the
full statement" line and the attribution are not the statement's words (the
terms demand them), so they are left out of the count.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from lxml import html as lxml_html
from markupsafe import escape

from syndicate.config import Config, PartnerConfig, from_mapping
from syndicate.model import Change, Revision
from syndicate.render import templates
from syndicate.render.excerpt import count_words
from syndicate.render.partner import PartnerRenderer
from syndicate.text import excerpt_words, html_to_text

ROOT = Path(__file__).resolve().parent.parent
ATOM = "{http://www.w3.org/2005/Atom}"
NOT_THE_STATEMENT = "//p[@class='read-more' or @class='attribution']"
TEXT_FIELDS = ("summary", "content_html", "content_text")
BASE = Revision(
    seq=1,
    statement_id="s",
    change=Change.PUBLISHED,
    tag_id="tag:example.org,2026-11-20:statements/s",
    title="A statement",
    published=datetime(2026, 11, 20, 7, 0, tzinfo=UTC),
    updated=datetime(2026, 11, 20, 7, 0, tzinfo=UTC),
    lang="en",
    author="Press Office",
    canonical_url="https://example.org/statements/s",
    summary="",
    body_html="",
    body_text="",
)


@pytest.fixture(scope="module")
def config() -> Config:
    raw = {
        "site": {"title": "Example Org", "url": "https://example.org", "rights": "©"},
        "templates": {"dir": str(ROOT / "templates")},
        "partners": [{"name": "p", "url": "https://partner.example/hook", "secret_env": "PARTNER_SECRET"}],
    }
    return from_mapping(raw, ROOT)


@pytest.fixture(scope="module")
def renderer(config: Config) -> PartnerRenderer:
    env = templates.environment(config.templates.dir)
    html, text = (templates.load(env, f"feeds/attribution.{kind}") for kind in ("html", "txt"))
    return PartnerRenderer(config, html, text)


def statement_words(content_html: str) -> int:
    """Words of the statement in a payload's HTML: the read-more line and the attribution left out."""
    root = lxml_html.fragment_fromstring(content_html, create_parent="div")
    for element in root.xpath(NOT_THE_STATEMENT):
        element.drop_tree()
    inner = (root.text or "") + "".join(lxml_html.tostring(child, encoding="unicode") for child in root)
    return count_words(inner)


def text_words(text: str) -> int:
    return count_words(str(escape(text)))


def atom_fields(body: bytes) -> dict[str, int]:
    """Words in each field of an Atom entry document that carries the statement's text."""
    entry = etree.fromstring(body)
    assert entry.find(f"{ATOM}content").get("type") == "html"
    return {
        "summary": text_words(entry.findtext(f"{ATOM}summary") or ""),
        "content": statement_words(entry.findtext(f"{ATOM}content") or ""),
    }


def json_fields(body: bytes) -> dict[str, int]:
    """Words in each field of a JSON payload that carries the statement's text."""
    data = json.loads(body)["data"]
    found = {key: data[key] for key in TEXT_FIELDS if key in data}
    assert {"summary", "content_html"} <= set(found)
    return {key: statement_words(value) if key == "content_html" else text_words(value) for key, value in found.items()}


def payload_fields(renderer: PartnerRenderer, revision: Revision, partner: PartnerConfig) -> dict[str, int]:
    atom = atom_fields(renderer.render(revision, partner).body)
    data = json_fields(renderer.render(revision, replace(partner, format="json")).body)
    return {**{f"atom {k}": v for k, v in atom.items()}, **{f"json {k}": v for k, v in data.items()}}


def test_the_automatic_summary_is_cut_to_the_licence_too(renderer, config):
    # The case that leaked: a six-word first sentence, then a long one; the summary is the first 40 words.
    body = "<p>The association welcomes the decision today. " + " ".join(["Delegations"] * 45) + " agreed.</p>"
    revision = replace(BASE, body_html=body, body_text=html_to_text(body))
    revision = replace(revision, summary=excerpt_words(html_to_text(body), 40))
    assert text_words(revision.summary) == 40
    fields = payload_fields(renderer, revision, replace(config.partners[0], excerpt_words=20))
    assert fields == {"atom summary": 6, "atom content": 6, "json summary": 6, "json content_html": 6}


def test_a_full_licence_gets_every_field_whole(renderer, config):
    body = "<p>" + " ".join(["word"] * 80) + ".</p>"
    revision = replace(BASE, body_html=body, summary=" ".join(["summary"] * 50))
    fields = payload_fields(renderer, revision, replace(config.partners[0], license="full"))
    assert fields == {"atom summary": 50, "atom content": 80, "json summary": 50, "json content_html": 80}


# -- the property: many bodies, summaries and limits --

WORD = st.text("abcdefghijklmnopqrstuvwxyzçğışöü0123456789", min_size=1, max_size=8)
NOISE = st.sampled_from(["", "", ",", " –", " &amp;", "&#8217;s", ";"])
ENDING = st.sampled_from([".", "!", "?", "", "…", '."', ".)"])


@st.composite
def sentences(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.tuples(WORD, NOISE), min_size=1, max_size=30))
    text = " ".join(word + noise for word, noise in words)
    if draw(st.booleans()):  # some markup inside the sentence
        tag = draw(st.sampled_from(["b", "i", "em", 'a href="https://example.org/x?a=1&amp;b=2"']))
        head, _, tail = text.partition(" ")
        text = f"<{tag}>{head}</{tag.split()[0]}> {tail}"
    return text + draw(ENDING)


@st.composite
def bodies(draw: st.DrawFn) -> str:
    blocks = []
    for _ in range(draw(st.integers(1, 6))):
        text = " ".join(draw(st.lists(sentences(), min_size=1, max_size=4)))
        shape = draw(st.sampled_from(["<p>{}</p>", "<h2>{}</h2>", "<ul><li>{}</li><li>{}</li></ul>", "{}"]))
        blocks.append(shape.format(text, text))
    return "\n".join(blocks)


@settings(max_examples=150, deadline=None)
@given(body=bodies(), written=st.one_of(st.none(), bodies()), limit=st.integers(1, 80))
def test_no_field_of_any_payload_exceeds_the_licence(renderer, config, body, written, limit):
    text = html_to_text(body)
    # The summary is written in the front matter (any length), or made of the first 40 words.
    summary = html_to_text(written) if written is not None else excerpt_words(text, 40)
    revision = replace(BASE, body_html=body, body_text=text, summary=summary)
    partner = replace(config.partners[0], excerpt_words=limit)
    for field, words in payload_fields(renderer, revision, partner).items():
        assert words <= limit, (field, words, limit)
