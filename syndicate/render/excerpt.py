"""Excerpts of a statement's HTML, for partners without a full-text licence.

An excerpt is the first words of the text, at most ``limit`` of them, ending
where a sentence or a paragraph ends. It is cut in the parsed tree, never in
the markup, so it cannot end inside a tag or an entity and every element it
opens is closed. Only when not even the first sentence fits is it cut between
two words, and then it ends with an ellipsis.

A word is a run of non-space characters holding a letter or digit (a lone
dash or full stop is not one). Words are counted in each run of text on its
own, so a word split by markup (``in<b>side</b>``) counts twice: the count can
only be too high, never too low.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import html as lxml_html
from markupsafe import escape

# Elements whose end is the end of a paragraph: a place an excerpt may stop.
BLOCKS = frozenset(
    {"address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption", "figure", "footer",
     "h1", "h2", "h3", "h4", "h5", "h6", "header", "li", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul"}
)  # fmt: skip
_TOKEN = re.compile(r"\S+")
_LETTER = re.compile(r"\w")
# A word that ends a sentence: . ! ? or … then perhaps closing quotes or brackets.
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*$")
ELLIPSIS = "…"


@dataclass(frozen=True)
class Cut:
    """A place to end the excerpt: in the ``text`` or ``tail`` of an element, after ``words`` words."""

    element: lxml_html.HtmlElement
    slot: str
    offset: int
    words: int


def excerpt(fragment: str, limit: int) -> str:
    """The first at most ``limit`` words of the HTML ``fragment``, cut at a sentence or paragraph end."""
    if limit < 1:
        raise ValueError(f"an excerpt needs at least one word, not {limit}")
    if not fragment.strip():
        return ""
    root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    boundary, fallback = _cuts(root, limit)
    if fallback is None:  # the whole text fits
        return fragment.strip()
    if boundary is not None:
        _cut(root, boundary, "")
    else:
        _cut(root, fallback, ELLIPSIS)
    return _inner_html(root).strip()


def excerpt_text(text: str, limit: int) -> str:
    """The first at most ``limit`` words of plain ``text``, cut by the same rules as :func:`excerpt`."""
    # Escaped, plain text is an HTML fragment of one text run: the same cut, then the same text back.
    return html.unescape(excerpt(str(escape(text)), limit))


def count_words(fragment: str) -> int:
    """Words in an HTML fragment, counted as :func:`excerpt` counts them."""
    if not fragment.strip():
        return 0
    root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    runs = (getattr(element, slot) or "" for element, slot in _runs(root) if slot != "end")
    return sum(1 for run in runs for token in _TOKEN.findall(run) if _LETTER.search(token))


def _cuts(root: lxml_html.HtmlElement, limit: int) -> tuple[Cut | None, Cut | None]:
    """The last sentence or paragraph end within ``limit`` words, and the cut after word ``limit``.

    The second is None when the whole text has ``limit`` words or fewer.
    """
    words = 0
    boundary: Cut | None = None
    last_word: Cut | None = None
    for element, slot in _runs(root):
        if slot == "end":
            if words and element.tag in BLOCKS:
                boundary = Cut(element, "tail", 0, words)
            continue
        for match in _TOKEN.finditer(getattr(element, slot) or ""):
            token = match.group()
            if _LETTER.search(token):
                if words == limit:
                    return boundary, last_word
                words += 1
                last_word = Cut(element, slot, match.end(), words)
            if words and _SENTENCE_END.search(token):
                boundary = Cut(element, slot, match.end(), words)
    return boundary, None


def _runs(root: lxml_html.HtmlElement) -> Iterator[tuple[lxml_html.HtmlElement, str]]:
    """Every run of text in document order as (element, "text" | "tail"), and (element, "end") as it closes."""
    if isinstance(root.tag, str):  # comments and processing instructions hold no visible text
        yield root, "text"
    for child in root:
        yield from _runs(child)
        yield child, "end"
        yield child, "tail"


def _cut(root: lxml_html.HtmlElement, cut: Cut, ending: str) -> None:
    """Keep what comes before ``cut``, add ``ending``, and drop everything after."""
    element = cut.element
    kept = (getattr(element, cut.slot) or "")[: cut.offset].rstrip()
    setattr(element, cut.slot, (kept + ending) or None)
    if cut.slot == "text":
        for child in list(element):
            element.remove(child)
        element.tail = None
    node = element
    while node is not root:
        parent = node.getparent()
        for sibling in list(node.itersiblings()):
            parent.remove(sibling)  # its tail goes with it
        if parent is not root:
            parent.tail = None
        node = parent


def _inner_html(root: lxml_html.HtmlElement) -> str:
    """The markup inside the wrapper ``div``."""
    children = "".join(lxml_html.tostring(child, encoding="unicode") for child in root)
    return str(escape(root.text or "")) + children
