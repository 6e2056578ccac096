"""A mailed edition as the newsletter archive shows it: the HTML it was mailed with, nobody's address in it.

An edition is stored as the message template every recipient's letter was
pressed from (:mod:`syndicate.mail`): its HTML part is what each reader got,
with placeholders where their address and their signed links went. The archive
copy is that HTML with every element holding a placeholder taken out (the
"you receive this because ..." line, the unsubscribe and preferences links),
so no address and no token can appear, whatever the templates say; and a line
on top saying where it is from, with a link to the other editions.
"""

from __future__ import annotations

import email
from email.message import Message
from email.policy import default as default_policy

from lxml import etree
from lxml import html as lxml_html

from syndicate.mail import CONFIRM, MESSAGE_ID, PREFERENCES, TO, UNSUBSCRIBE

PERSONAL = tuple(p.decode().lower() for p in (TO, MESSAGE_ID, UNSUBSCRIBE, PREFERENCES, CONFIRM))
BLOCKS = {"p", "div", "li", "tr", "td", "table", "section", "footer", "header", "aside"}


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
    if body is None:
        raise ValueError("the edition's HTML has no body")
    note = etree.Element("p", {"class": "archive-note"})
    note.text = banner + " "
    back = etree.SubElement(note, "a", {"href": back_href})
    back.text = back_text
    body.insert(0, note)
    page: bytes = lxml_html.tostring(document, encoding="utf-8", method="html")
    return b"<!DOCTYPE html>\n" + page + b"\n"


def _remove_personal(document: lxml_html.HtmlElement) -> None:
    """Take out the smallest block holding each placeholder, in text or in an attribute."""
    doomed = []
    for element in document.iter():
        if not isinstance(element.tag, str):
            continue
        own = " ".join([element.text or "", *(str(v) for v in element.attrib.values())]).lower()
        tails = [(child.tail or "").lower() for child in element]
        if any(p in own for p in PERSONAL) or any(p in t for t in tails for p in PERSONAL):
            doomed.append(_block_of(element))
    for element in doomed:
        parent = element.getparent()
        if parent is not None:
            element.drop_tree()
    leftover = lxml_html.tostring(document, encoding="unicode").lower()
    if any(p in leftover for p in PERSONAL):  # a placeholder where no element could be taken out (the head)
        raise ValueError("the edition holds a personal placeholder outside the body's blocks")


def _block_of(element: lxml_html.HtmlElement) -> lxml_html.HtmlElement:
    found = element
    while found.tag not in BLOCKS and found.getparent() is not None and found.getparent().tag != "body":
        found = found.getparent()
    return found
