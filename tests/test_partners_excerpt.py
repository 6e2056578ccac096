"""Excerpts for partners without a full-text licence: word limit, boundaries, markup never broken."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from lxml import html as lxml_html

from syndicate.render.excerpt import excerpt

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
BROKEN_ENTITY = re.compile(r"&(?!(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#x[0-9A-Fa-f]+);)")
# A real statement's shape: a heading, paragraphs with links, entities and nested inline markup, a list.
STATEMENT = (
    "<h2>Statement on the conference</h2>"
    "<p>The association welcomes the council&#8217;s decision &amp; thanks its members. "
    'It was taken in <a href="https://example.org/a?x=1&amp;y=2">Geneva</a> on <b>12 <i>September</i></b>.</p>'
    "<p>Delegations from &lt;twelve&gt; countries took part; their work goes on&nbsp;&mdash; with "
    "<em>civil society</em> at its side!</p>"
    "<ul><li>First point of the agenda</li><li>Second point: rights of widows and orphans</li></ul>"
    "<p>A long closing paragraph without any full stop in which the association lists its many partners "
    "and friends and the people of the region who supported the cause over the years</p>"
)


@pytest.mark.parametrize(
    ("fragment", "limit", "expected"),
    [
        pytest.param(
            "<p>One two three. Four five six.</p><p>Seven eight.</p>", 4, "<p>One two three.</p>", id="sentence"
        ),
        pytest.param("<p>One two three four</p><p>Five six. Seven</p>", 5, "<p>One two three four</p>", id="paragraph"),
        pytest.param(
            "<p>Tom &amp; Jerry&#8217;s &lt;show&gt; is on. It runs late.</p>",
            6,
            "<p>Tom &amp; Jerry’s &lt;show&gt; is on.</p>",
            id="entities",
        ),
        pytest.param(
            "<p>One <b>two <i>three. four</i> five</b> six.</p>",
            4,
            "<p>One <b>two <i>three.</i></b></p>",
            id="nested-tags",
        ),
        pytest.param(
            '<p>See <a href="https://x.org/?a=1&amp;b=2">the page</a>. More words here.</p>',
            3,
            '<p>See <a href="https://x.org/?a=1&amp;b=2">the page</a>.</p>',
            id="link-then-full-stop",
        ),
        pytest.param("<p>alpha beta gamma delta epsilon</p>", 3, "<p>alpha beta gamma…</p>", id="no-sentence-boundary"),
        pytest.param("<p><b>alpha beta gamma</b></p>", 2, "<p><b>alpha beta…</b></p>", id="no-boundary-nested"),
        pytest.param("<p>Short.</p>", 60, "<p>Short.</p>", id="very-short"),
        pytest.param("<p>a b c.</p>", 3, "<p>a b c.</p>", id="exactly-the-limit"),
        pytest.param("<ul><li>one two</li><li>three four</li></ul>", 3, "<ul><li>one two</li></ul>", id="list-item"),
        pytest.param('<p>He said "stop." Then he left quickly.</p>', 4, '<p>He said "stop."</p>', id="closing-quote"),
        pytest.param("One two. Three four five.", 3, "One two.", id="bare-text"),
        pytest.param("<h2>Title here</h2><p>Body one two three.</p>", 3, "<h2>Title here</h2>", id="heading-paragraph"),
        pytest.param("<!-- note --><p>One. Two three.</p>", 2, "<!-- note --><p>One.</p>", id="comment-is-not-text"),
        pytest.param("<p>One – two three. Four.</p>", 3, "<p>One – two three.</p>", id="dash-is-not-a-word"),
        pytest.param("", 5, "", id="empty"),
    ],
)
def test_excerpt_cuts_where_expected(fragment: str, limit: int, expected: str) -> None:
    assert excerpt(fragment, limit) == expected


@pytest.mark.parametrize("limit", range(1, 90))
def test_excerpt_properties_hold_at_every_length(limit: int) -> None:
    cut = excerpt(STATEMENT, limit)
    assert words(cut) <= limit
    assert_balanced(cut)
    assert BROKEN_ENTITY.search(cut) is None
    assert text(STATEMENT).startswith(text(cut).removesuffix("…"))
    at_sentence_end = re.search(r"[.!?][\"'”’»)\]]*$", text(cut))
    at_paragraph_end = re.search(r"</(p|li|h2)>(</ul>)?$", cut)
    assert at_sentence_end or at_paragraph_end or text(cut).endswith("…")


def test_whole_statement_is_kept_when_it_fits() -> None:
    assert excerpt(STATEMENT, 500) == STATEMENT


def test_zero_words_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one word"):
        excerpt("<p>x</p>", 0)


# -- independent checks: the standard library's parser, not the code under test --


def words(fragment: str) -> int:
    """Words as a reader counts them: runs holding a letter or digit, each text node on its own."""
    if not fragment:
        return 0
    root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    return sum(1 for token in " ".join(root.itertext()).split() if re.search(r"\w", token))


def text(fragment: str) -> str:
    """The visible text, white space collapsed."""
    if not fragment:
        return ""
    return " ".join(lxml_html.fragment_fromstring(fragment, create_parent="div").text_content().split())


class _Balance(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack}"
        self.stack.pop()


def assert_balanced(fragment: str) -> None:
    """Every element opened is closed, in order, and no tag is left half-written."""
    parser = _Balance()
    parser.feed(fragment)
    parser.close()
    assert parser.stack == []
    assert parser.rawdata == ""  # nothing left unparsed, such as a tag cut in half
