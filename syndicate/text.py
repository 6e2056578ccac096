"""Small text helpers shared by sources and renderers: slugs, HTML to text, excerpts."""

from __future__ import annotations

import re
import unicodedata

from lxml import html as lxml_html

# Characters XML 1.0 forbids even as references; a feed carrying one is not XML.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SPACE = re.compile(r"\s+")
_BLOCKS = {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "tr", "br"}


def slugify(value: str) -> str:
    """A lower-case, hyphenated form of ``value`` for ids and file names.

    Letters outside ASCII are kept (Turkish and Russian categories stay
    readable); only their combining accents are folded.
    """
    folded = unicodedata.normalize("NFKD", value.replace("ı", "i"))
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    folded = unicodedata.normalize("NFC", folded).lower()
    return re.sub(r"[^\w]+", "-", folded).strip("-_") or "-"


def one_line(value: str) -> str:
    """Collapse every run of white space, line breaks included, to one space."""
    return _SPACE.sub(" ", value).strip()


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment, one paragraph per block, links kept as ``text <url>``."""
    if not fragment.strip():
        return ""
    root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    for hidden in list(root.iter("script", "style", "template")):
        hidden.drop_tree()  # code, not text; drop_tree keeps the text that follows it
    for anchor in root.iter("a"):
        href = anchor.get("href")
        if href and href != anchor.text_content().strip():
            anchor.tail = f" <{href}>" + (anchor.tail or "")
    paragraphs: list[str] = []
    _collect_blocks(root, paragraphs)
    return "\n\n".join(p for p in paragraphs if p)


def _collect_blocks(element: lxml_html.HtmlElement, out: list[str]) -> None:
    buffer = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str) and child.tag in _BLOCKS:
            out.append(one_line("".join(buffer)))
            buffer = []
            _collect_blocks(child, out)
        elif isinstance(child.tag, str):
            buffer.append(child.text_content())
        buffer.append(child.tail or "")
    out.append(one_line("".join(buffer)))


def excerpt_words(text: str, words: int) -> str:
    """The first ``words`` words of ``text``, ending at a word boundary with an ellipsis if cut."""
    parts = one_line(text).split(" ")
    if len(parts) <= words:
        return " ".join(parts)
    return " ".join(parts[:words]).rstrip(",;:") + "…"
