"""A mailed edition as the newsletter archive shows it: the HTML it was mailed with, nobody's address in it.

An edition is stored as the message template every recipient's letter was
pressed from (:mod:`syndicate.mail`): its HTML part is what each reader got,
with placeholders where their address and their signed links went. The archive
copy is that HTML with every element holding a placeholder taken out (the
"you receive this because ..." line, the unsubscribe and preferences links),
so no address and no token can appear, whatever the templates say; and a line
on top saying where it is from, with a link to the other editions.

What goes is as little as reads well: the paragraph or list item around a
placeholder; below a layout element (a table cell, a div), only the element
holding it, or the bare text or the attribute itself; a comment holding one;
the text of a ``<title>``; a ``<meta>`` of the head. If a placeholder is left
anyway, or nothing of the edition is, the edition is :class:`Unarchivable`.
"""

from __future__ import annotations

import email
from collections.abc import Iterable
from email.message import Message
from email.policy import default as default_policy

from lxml import etree
from lxml import html as lxml_html

from syndicate.mail import CONFIRM, MESSAGE_ID, PREFERENCES, TO, UNSUBSCRIBE

PERSONAL = tuple(p.decode().lower() for p in (TO, MESSAGE_ID, UNSUBSCRIBE, PREFERENCES, CONFIRM))
# Where a placeholder is found, the smallest of these around it goes (a sentence, a line of links) ...
TEXT_BLOCKS = {"p", "li", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "figcaption", "caption",
               "address", "pre"}  # fmt: skip
# ... unless a layout element comes first: then only the element holding it, or the text or attribute itself.
CONTAINERS = {"html", "body", "div", "table", "thead", "tbody", "tfoot", "tr", "td", "th", "section", "article",
              "header", "footer", "main", "aside", "nav", "center", "form", "ul", "ol", "dl"}  # fmt: skip


class Unarchivable(ValueError):
    """An edition that cannot be shown without something personal in it."""


def mailed_html(message: bytes) -> str:
    """The HTML part of a stored edition, as mailed (placeholders still in)."""
    parsed = email.message_from_bytes(message, policy=default_policy)
    for part in parsed.walk():
        if isinstance(part, Message) and part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    raise ValueError("the edition has no HTML part")


def archive_copy(message: bytes, banner: str, back_href: str, back_text: str) -> bytes:
    """The edition's HTML without anything personal, with ``banner`` and a link back on top."""
    document = lxml_html.document_fromstring(mailed_html(message))
    _remove_personal(document)
    body = document.find("body")
    if body is None or not "".join(str(text) for text in body.itertext()).strip():
        raise Unarchivable("nothing of the edition is left once what is personal is taken out")
    note = etree.Element("p", {"class": "archive-note"})
    note.text = banner + " "
    back = etree.SubElement(note, "a", {"href": back_href})
    back.text = back_text
    body.insert(0, note)
    page: bytes = lxml_html.tostring(document, encoding="utf-8", method="html")
    return b"<!DOCTYPE html>\n" + page + b"\n"


def _personal(text: str | None) -> bool:
    lowered = (text or "").lower()
    return any(p in lowered for p in PERSONAL)


def _remove_personal(document: lxml_html.HtmlElement) -> None:
    """Take out each placeholder with the least around it that still reads well; fail if one is left."""
    for comment in list(document.iter(etree.Comment)):
        if _personal(comment.text):
            comment.drop_tree()
    marked: list[lxml_html.HtmlElement] = []
    for element in list(document.iter()):
        if isinstance(element.tag, str):
            _scrub(element, marked)
    for element in _outermost(_block_of(e) for e in marked):
        element.drop_tree()
    if _personal(lxml_html.tostring(document, encoding="unicode")):
        raise Unarchivable("a personal placeholder is left where nothing could be taken out")


def _scrub(element: lxml_html.HtmlElement, marked: list[lxml_html.HtmlElement]) -> None:
    """Clear what is personal in a layout element at once; mark any other element holding it for removal."""
    in_head = any(a.tag == "head" for a in element.iterancestors()) or element.tag == "head"
    if element.tag == "title":
        element.text = None if _personal(element.text) else element.text
        return
    container = element.tag in CONTAINERS or element.tag == "head"
    for name, value in list(element.attrib.items()):
        if _personal(str(value)):
            if container:
                del element.attrib[name]
            else:
                marked.append(element)
    if _personal(element.text):
        if container:
            element.text = None
        else:
            marked.append(element)
    for child in element:
        if _personal(child.tail):
            if container:
                child.tail = None
            else:
                marked.append(element)
    if in_head and element in marked:  # a <meta> or <link> of the head: it goes alone
        marked[:] = [m for m in marked if m is not element]
        element.drop_tree()


def _block_of(element: lxml_html.HtmlElement) -> lxml_html.HtmlElement:
    """The text block around ``element`` (a paragraph, a list item), or the element itself below a layout one."""
    for candidate in (element, *element.iterancestors()):
        if candidate.tag in TEXT_BLOCKS:
            return candidate
        if candidate.tag in CONTAINERS:
            break
    return element


def _outermost(elements: Iterable[lxml_html.HtmlElement]) -> list[lxml_html.HtmlElement]:
    """Each element once, leaving out those inside another of them."""
    found: list[lxml_html.HtmlElement] = []
    for element in elements:
        if not any(element is f for f in found):
            found.append(element)
    return [e for e in found if not any(a is f for a in e.iterancestors() for f in found)]
