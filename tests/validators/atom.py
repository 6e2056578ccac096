"""Atom 1.0 validator: RFC 4287 plus the RFC 5005 and RFC 6721 extensions we use."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import re
from collections import Counter
from pathlib import Path
from urllib.parse import urljoin

import rnc2rng
from lxml import etree

from ._common import XML_NS, describe, iri_problem, parse_xml, rfc3339_problem, text_of

ATOM_NS = "http://www.w3.org/2005/Atom"
XHTML_NS = "http://www.w3.org/1999/xhtml"
FH_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005
AT_NS = "http://purl.org/atompub/tombstones/1.0"  # RFC 6721

RNC_PATH = Path(__file__).with_name("atom.rnc")
_XML_BASE = f"{{{XML_NS}}}base"


def _a(name: str) -> str:
    return f"{{{ATOM_NS}}}{name}"


def _at(name: str) -> str:
    return f"{{{AT_NS}}}{name}"


def atom_rng() -> str:
    """RFC 4287 Appendix B (``atom.rnc``) converted to RELAX NG XML by rnc2rng."""
    with RNC_PATH.open(encoding="utf-8") as rnc:
        rng: str = rnc2rng.dumps(rnc2rng.load(rnc))
    # rnc2rng declares the compact syntax's ``namespace local = ""`` as
    # xmlns:local="", which Namespaces in XML 1.0 forbids (a prefix cannot be
    # bound to no namespace). Its output never uses the prefix, so drop it.
    return re.sub(r'\s+xmlns:local=""', "", rng)


@functools.cache
def atom_schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.fromstring(atom_rng().encode("utf-8")))


def validate_atom(data: bytes) -> list[str]:
    """Problems with an Atom Feed or Entry Document (empty list = valid).

    1. XML well-formedness, and the root must be atom:feed or atom:entry.
    2. The RELAX NG grammar of RFC 4287 Appendix B. Its extensionElement /
       undefinedAttribute patterns admit foreign markup such as RFC 5005
       fh:archive and RFC 6721 at:deleted-entry in the feed's metadata.
    3. The RFC 4287 prose rules the grammar cannot state (section numbers are
       quoted in each message): exactly one id/title/updated; authorship;
       alternate link or content; required summary; base64 and text/* content;
       unique alternate links per type+hreflang; unique id+updated pairs;
       RFC 3339 dates with "T"/"Z" uppercase; absolute atom:id IRIs; IRI
       references that are absolute or resolvable against an xml:base; link rel
       syntax; XHTML constructs holding exactly one xhtml:div; metadata before
       entries.
    4. RFC 5005 fh:archive/fh:complete are empty children of atom:feed.
    5. RFC 6721 at:deleted-entry is a child of atom:feed with an absolute-IRI
       ``ref`` and an RFC 3339 ``when``, at most one at:by / at:comment, and no
       repeated ref+when pair.
    """
    root, problems = parse_xml(data)
    if root is None:
        return problems
    if root.tag not in (_a("feed"), _a("entry")):
        return [f"root element {describe(root)} is not atom:feed or atom:entry (RFC 4287 §4.1)"]
    schema = atom_schema()
    if not schema.validate(root):
        problems += [
            f"RFC 4287 Appendix B schema: {f'line {err.line}: ' if err.line else ''}{err.message}"
            for err in schema.error_log
        ]
    problems += _structure_rules(root)
    problems += _value_rules(root)
    problems += _extension_rules(root)
    return problems


def _structure_rules(root: etree._Element) -> list[str]:
    """Cardinality and co-occurrence rules of RFC 4287 §4.1.1 and §4.1.2."""
    problems: list[str] = []
    is_feed = root.tag == _a("feed")
    entries = root.findall(_a("entry")) if is_feed else [root]
    for el in ([root] if is_feed else []) + entries:
        section = "§4.1.1" if el.tag == _a("feed") else "§4.1.2"
        for name in ("id", "title", "updated"):
            if (n := len(el.findall(_a(name)))) != 1:
                problems.append(f"{describe(el)} must contain exactly one atom:{name}, found {n} (RFC 4287 {section})")
        alternates = Counter(
            (link.get("type"), link.get("hreflang"))
            for link in el.findall(_a("link"))
            if link.get("rel", "alternate") == "alternate"
        )
        for (typ, lang), n in alternates.items():
            if n > 1:
                problems.append(
                    f"{describe(el)} has {n} rel=alternate links with type="
                    f"{typ!r} and hreflang={lang!r}; at most one is allowed "
                    f"(RFC 4287 {section})"
                )

    feed_author = is_feed and root.find(_a("author")) is not None
    for entry in entries:
        if not (
            feed_author
            or entry.find(_a("author")) is not None
            or entry.find(f"{_a('source')}/{_a('author')}") is not None
        ):
            problems.append(
                f"{describe(entry)} has no atom:author, and neither has its atom:source or feed (RFC 4287 §4.1.2)"
            )
        content = entry.find(_a("content"))
        if content is None:
            if not any(link.get("rel", "alternate") == "alternate" for link in entry.findall(_a("link"))):
                problems.append(
                    f"{describe(entry)} has no atom:content, so it must have a "
                    "rel=alternate atom:link (RFC 4287 §4.1.2)"
                )
        else:
            problems += _content_rules(entry, content)

    if is_feed:
        seen: dict[tuple[str, object], etree._Element] = {}
        for entry in entries:
            key = (_child_text(entry, "id"), _instant(_child_text(entry, "updated")))
            if key in seen:
                problems.append(
                    f"{describe(entry)} repeats atom:id {key[0]!r} with the same "
                    f"atom:updated as {describe(seen[key])} (RFC 4287 §4.1.1)"
                )
            seen.setdefault(key, entry)
        first = root.find(_a("entry"))
        if first is not None:
            for el in first.itersiblings(tag=etree.Element):
                if el.tag != _a("entry"):
                    problems.append(
                        f"{describe(el)} follows an atom:entry; feed metadata, "
                        "extension elements included, must precede the entries "
                        "(RFC 4287 §4.1.1 and Appendix B)"
                    )
    return problems


def _content_rules(entry: etree._Element, content: etree._Element) -> list[str]:
    """atom:content rules of RFC 4287 §4.1.2 (summary) and §4.1.3."""
    problems: list[str] = []
    typ = content.get("type", "text")
    if typ in ("text", "html", "xhtml"):
        return problems
    media = typ.split(";", 1)[0].strip().lower()
    if media.split("/", 1)[0] in ("multipart", "message"):
        problems.append(f"{describe(content)}: type {typ!r} is a composite media type (RFC 4287 §4.1.3.1)")
    is_xml = media.endswith(("/xml", "+xml"))
    is_text = media.startswith("text/")
    needs_summary = content.get("src") is not None or not (is_xml or is_text)
    if needs_summary and entry.find(_a("summary")) is None:
        problems.append(
            f"{describe(entry)} has out-of-line or base64 atom:content, "
            "so it must have an atom:summary (RFC 4287 §4.1.2)"
        )
    if content.get("src") is None:
        if is_text and len(content):
            problems.append(f"{describe(content)}: {typ!r} content must not contain child elements (RFC 4287 §4.1.3.3)")
        elif not (is_xml or is_text):
            try:
                base64.b64decode("".join((content.text or "").split()), validate=True)
            except binascii.Error:
                problems.append(f"{describe(content)}: {typ!r} content is not valid Base64 (RFC 4287 §4.1.3.3)")
    return problems


def _value_rules(root: etree._Element) -> list[str]:
    """Dates, IRIs, rel values and XHTML constructs (RFC 4287 §3 and §4.2)."""
    problems: list[str] = []
    for el in root.iter(_a("updated"), _a("published")):
        if (why := rfc3339_problem(el.text or "", uppercase=True)) is not None:
            problems.append(f"{describe(el)}: {why} (RFC 4287 §3.3)")
    for el in root.iter(_a("id")):
        if (why := iri_problem(el.text or "", absolute=True)) is not None:
            problems.append(f"{describe(el)}: {why} (RFC 4287 §4.2.6)")
    for el in root.iter(_a("category")):
        scheme = el.get("scheme")
        if scheme is not None and (why := iri_problem(scheme, absolute=True)) is not None:
            problems.append(f"{describe(el)} scheme: {why} (RFC 4287 §4.2.2.2)")
    for el in root.iter(_a("link")):
        if (rel := el.get("rel")) is not None and (why := _rel_problem(rel)) is not None:
            problems.append(f"{describe(el)} rel: {why} (RFC 4287 §4.2.7.2)")
    references = [(el, "href", el.get("href"), "§4.2.7.1") for el in root.iter(_a("link"))]
    references += [(el, "src", el.get("src"), "§4.1.3.2") for el in root.iter(_a("content"))]
    references += [(el, "uri", el.get("uri"), "§4.2.4") for el in root.iter(_a("generator"))]
    references += [
        (el, "content", el.text or "", sect)
        for tag, sect in (("icon", "§4.2.5"), ("logo", "§4.2.8"), ("uri", "§3.2.2"))
        for el in root.iter(_a(tag))
    ]
    references += [(el, "xml:base", el.get(_XML_BASE), "§2") for el in root.iter(etree.Element)]
    for el, what, value, section in references:
        if value is None:
            continue
        if (why := iri_problem(value, absolute=False)) is not None:
            problems.append(f"{describe(el)} {what}: {why} (RFC 4287 {section})")
        elif what != "xml:base" and not _is_absolute(urljoin(_base_of(el), value)):
            problems.append(
                f"{describe(el)} {what}: relative reference {value!r} has no "
                f"absolute xml:base in scope to resolve against (RFC 4287 {section})"
            )
    constructs = [
        el
        for el in root.iter(*(_a(n) for n in ("title", "subtitle", "summary", "rights", "content")), _at("comment"))
        if el.get("type") == "xhtml"
    ]
    for el in constructs:
        children = [c for c in el if isinstance(c.tag, str)]
        loose = (el.text or "") + "".join(c.tail or "" for c in el)
        if len(children) != 1 or children[0].tag != f"{{{XHTML_NS}}}div" or loose.strip():
            problems.append(
                f'{describe(el)}: type="xhtml" content must be exactly one '
                "xhtml:div element (RFC 4287 §3.1.1.3, §4.1.3.3)"
            )
    return problems


def _extension_rules(root: etree._Element) -> list[str]:
    """RFC 5005 (feed paging and archiving) and RFC 6721 (deleted entries)."""
    problems: list[str] = []
    for el in root.iter(f"{{{FH_NS}}}archive", f"{{{FH_NS}}}complete"):
        parent = el.getparent()
        if parent is None or parent.tag != _a("feed") or len(el) or text_of(el):
            problems.append(f"{describe(el)} must be an empty child of atom:feed (RFC 5005 §2, §4)")
    seen: set[tuple[str, object]] = set()
    for el in root.iter(_at("deleted-entry")):
        parent = el.getparent()
        if parent is None or parent.tag != _a("feed"):
            problems.append(f"{describe(el)} must be a child of atom:feed (RFC 6721 §3)")
        ref, when = el.get("ref"), el.get("when")
        if ref is None:
            problems.append(f"{describe(el)} has no 'ref' attribute (RFC 6721 §3)")
        elif (why := iri_problem(ref, absolute=True)) is not None:
            problems.append(f"{describe(el)} ref: {why} (RFC 6721 §3)")
        if when is None:
            problems.append(f"{describe(el)} has no 'when' attribute (RFC 6721 §3)")
        elif (why := rfc3339_problem(when)) is not None:
            problems.append(f"{describe(el)} when: {why} (RFC 6721 §3)")
        for name in ("by", "comment"):
            if len(el.findall(_at(name))) > 1:
                problems.append(f"{describe(el)} has more than one at:{name} (RFC 6721 §3)")
        for by in el.findall(_at("by")):
            if len(by.findall(_a("name"))) != 1:
                problems.append(
                    f"{describe(by)} is a Person construct and needs exactly one atom:name (RFC 6721 §3, RFC 4287 §3.2)"
                )
        key = (ref or "", _instant(when or ""))
        if ref is not None and when is not None and key in seen:
            problems.append(f"{describe(el)} repeats ref {ref!r} with the same 'when' (RFC 6721 §3)")
        seen.add(key)
    return problems


def _rel_problem(rel: str) -> str | None:
    """A rel is an absolute IRI or an isegment-nz-nc (a path segment without ':')."""
    if ":" in rel:
        return iri_problem(rel, absolute=True)
    if any(c in rel for c in "/?#[]"):
        return f"{rel!r} is neither an IRI nor an isegment-nz-nc"
    return iri_problem(rel, absolute=False)


def _child_text(el: etree._Element, name: str) -> str:
    child = el.find(_a(name))
    return "" if child is None else text_of(child)


def _instant(value: str) -> object:
    """The instant a date-time denotes, so equal times in other zones compare equal."""
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return value


def _is_absolute(value: str) -> bool:
    return iri_problem(value, absolute=True) is None


def _base_of(el: etree._Element) -> str:
    """The in-scope xml:base of ``el`` (RFC 4287 §2, XML Base), "" if none."""
    base = ""
    for node in [*reversed(list(el.iterancestors())), el]:
        if (xml_base := node.get(_XML_BASE)) is not None:
            base = urljoin(base, xml_base)
    return base
