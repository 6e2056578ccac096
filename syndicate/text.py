"""Small text helpers shared by sources, store and renderers: slugs, HTML to text, excerpts, and hygiene.

Hygiene is two rules every source applies where text enters (and the store's
upgrade applies to what entered before them):

- :func:`xml_clean` removes what XML 1.0 cannot carry (C0 controls but tab and
  line breaks, lone surrogates, U+FFFE and U+FFFF): one such character would
  make every feed holding it unwritable;
- :func:`sanitise_html` keeps only the elements, attributes and URL schemes of
  one allow-list (nh3): no scripts, handlers, styles, frames, forms, ``<base>``
  or ``<meta>`` reach a feed, a mail or a partner. Elements nested deeper than
  :data:`MAX_DEPTH` are shown as text instead: the HTML parser walks the open
  elements at every block, so a file of ten thousand unclosed ``<div>`` would
  cost the square of its size.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import nh3
from lxml import html as lxml_html

# Characters XML 1.0 forbids even as references (lone surrogates included); a feed carrying one is not XML.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# The one allow-list for the HTML of every source: nh3's (ammonia's) elements and attributes, which
# leave out script, style, iframe, form, base, meta, every on* handler and the style and class
# attributes, with links only to the web and to mail.
ALLOWED_TAGS = frozenset(nh3.ALLOWED_TAGS)
ALLOWED_ATTRIBUTES = {tag: frozenset(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Built once: making the allow-list costs more than cleaning a statement with it.
_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
    url_schemes=set(URL_SCHEMES),
    link_rel=None,  # no target attribute gets through, so a link cannot reach back into our page
)
_SPACE = re.compile(r"\s+")
# Deeper than any real document nests; past it, an opening tag is escaped into text.
MAX_DEPTH = 128
# The start of a tag (only its start: a pattern that looked for the closing '>' would rescan unclosed runs).
_TAG_START = re.compile(r"<!--|<(/?)([A-Za-z][A-Za-z0-9:-]*)")
# Elements whose content is text to the parser (a `<` in a script is no tag): skipped to their end tag.
_RAW_TEXT = frozenset({"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript"})
# Elements that never hold others open: void ones, and those an HTML parser closes by itself at a sibling.
_NO_DEPTH = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
        "p",
        "li",
        "dt",
        "dd",
        "option",
        "optgroup",
        "tr",
        "td",
        "th",
        "thead",
        "tbody",
        "tfoot",
        "rt",
        "rp",
        "colgroup",
        "caption",
        "html",
        "head",
        "body",
    ]
)
_BLOCKS = {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "tr", "br"}


@dataclass(frozen=True)
class Removed:
    """What :func:`xml_clean` took out of one text: how many characters, and the first of them."""

    count: int
    first: str
    deep: int = 0  # opening tags past MAX_DEPTH, shown as text (by sanitise_html)

    def __str__(self) -> str:
        said = []
        if self.count:
            said.append(
                f"removed {self.count} control or non-character(s) that XML cannot carry (first: U+{ord(self.first):04X})"
            )
        if self.deep:
            said.append(f"showed {self.deep} tag(s) nested deeper than {MAX_DEPTH} elements as text")
        return "; ".join(said)


def xml_clean(value: str) -> tuple[str, Removed | None]:
    """``value`` without the characters XML cannot carry, and what was removed (None: nothing)."""
    found = XML_ILLEGAL.findall(value)
    if not found:
        return value, None
    return XML_ILLEGAL.sub("", value), Removed(len(found), found[0])


def sanitise_html(fragment: str) -> tuple[str, Removed | None]:
    """``fragment`` with only what the allow-list permits, and what XML cannot carry that it held.

    Sanitising parses the HTML, which decodes its character references: a
    ``&#1;`` comes out as U+0001, so the result is cleaned after, and what was
    removed is said (None: nothing). Opening tags nested deeper than
    :data:`MAX_DEPTH` are escaped first, so cleaning stays linear in the size.
    """
    shallow, deep = flatten_deep(fragment)
    safe, removed = xml_clean(_CLEANER.clean(shallow))
    if not deep:
        return safe, removed
    return safe, Removed(removed.count if removed else 0, removed.first if removed else "", deep)


def flatten_deep(fragment: str) -> tuple[str, int]:
    """``fragment`` with each opening tag past :data:`MAX_DEPTH` open elements escaped, and how many were.

    The depth is counted from the tags alone, in one pass: elements that are
    void or closed by a sibling (``p``, ``li``, ``td``...) do not count, and a
    closing tag past the limit is escaped with the opening tag it matches.
    Comments and the text of raw-text elements (``script``, ``style``...) hold
    no tags, so a ``<`` in them counts for nothing.
    """
    depth, at = 0, 0
    cuts: list[int] = []
    lowered = fragment.lower()
    while (tag := _TAG_START.search(fragment, at)) is not None:
        at = tag.end()
        if tag.group(2) is None:  # a comment: nothing in it is a tag (unclosed, it runs to the end)
            at = _after(lowered, "-->", at)
            continue
        name = tag.group(2).lower()
        if name in _NO_DEPTH:
            continue
        if tag.group(1):
            if depth > MAX_DEPTH:
                cuts.append(tag.start())
            depth = max(depth - 1, 0)
            continue
        if name in _RAW_TEXT:  # its text up to its end tag; the end tag closes it, so the depth is unchanged
            at = _after(lowered, f"</{name}", at)
            continue
        depth += 1
        if depth > MAX_DEPTH:
            cuts.append(tag.start())
    if not cuts:
        return fragment, 0
    pieces, last = [], 0
    for at in cuts:
        pieces.append(fragment[last:at])
        pieces.append("&lt;")
        last = at + 1
    pieces.append(fragment[last:])
    return "".join(pieces), sum(1 for at in cuts if fragment[at + 1] != "/")


def _after(lowered: str, end: str, start: int) -> int:
    """Where the text past the next ``end`` begins (the text's end when there is none): each character is seen once."""
    found = lowered.find(end, start)
    return len(lowered) if found < 0 else found + len(end)


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


def json_value(raw: str | bytes) -> Any:
    """JSON text read as a stranger may send it: ValueError for anything that is not JSON, arrays or objects
    nested thousands deep included (json raises RecursionError for those, which no caller expects)."""
    try:
        return json.loads(raw)
    except RecursionError as exc:
        raise ValueError("JSON nested too deep") from exc
