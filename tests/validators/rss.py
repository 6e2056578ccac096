"""RSS 2.0 validator, after the RSS 2.0.11 specification of the RSS Advisory Board
(https://www.rssboard.org/rss-specification). RSS has no official schema, so
the spec's rules are written out below as tables and checks."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from email.utils import parsedate_to_datetime

from lxml import etree

from ._common import MIME_TYPE, describe, iri_problem, is_language_tag, parse_xml, text_of

ATOM_NS = "http://www.w3.org/2005/Atom"

# Element name -> (kind of value, most occurrences allowed or None for any).
# Category may repeat (spec: "You may include as many category elements as you
# need"); items repeat; the spec describes every other element as a single value.
_Table = dict[str, tuple[str, int | None]]
CHANNEL: _Table = {
    "title": ("text", 1),
    "link": ("url", 1),
    "description": ("text", 1),
    "language": ("language", 1),
    "copyright": ("text", 1),
    "managingEditor": ("email", 1),
    "webMaster": ("email", 1),
    "pubDate": ("date", 1),
    "lastBuildDate": ("date", 1),
    "category": ("text", None),
    "generator": ("text", 1),
    "docs": ("url", 1),
    "cloud": ("cloud", 1),
    "ttl": ("integer", 1),
    "image": ("image", 1),
    "rating": ("text", 1),
    "textInput": ("textInput", 1),
    "skipHours": ("skipHours", 1),
    "skipDays": ("skipDays", 1),
    "item": ("item", None),
}
ITEM: _Table = {
    "title": ("text", 1),
    "link": ("url", 1),
    "description": ("text", 1),
    "author": ("email", 1),
    "category": ("text", None),
    "comments": ("url", 1),
    # The spec does not say whether enclosure may repeat; the RSS Board's
    # profile says its author meant at most one, so a strict check allows one.
    "enclosure": ("enclosure", 1),
    "guid": ("guid", 1),
    "pubDate": ("date", 1),
    "source": ("source", 1),
}
IMAGE: _Table = {
    "url": ("url", 1),
    "title": ("text", 1),
    "link": ("url", 1),
    "width": ("integer", 1),
    "height": ("integer", 1),
    "description": ("text", 1),
}
TEXT_INPUT: _Table = {"title": ("text", 1), "description": ("text", 1), "name": ("text", 1), "link": ("url", 1)}
TABLES: dict[str, _Table] = {
    "channel": CHANNEL,
    "item": ITEM,
    "image": IMAGE,
    "textInput": TEXT_INPUT,
    "skipHours": {"hour": ("hour", 24)},
    "skipDays": {"day": ("day", 7)},
}
# Sub-elements that must be present and not blank.
REQUIRED = {
    "channel": ("title", "link", "description"),
    "image": ("url", "title", "link"),
    "textInput": ("title", "description", "name", "link"),
}
# Attributes without a namespace: name -> required?
ATTRIBUTES: dict[str, dict[str, bool]] = {
    "rss": {"version": True},
    "category": {"domain": False},
    "cloud": dict.fromkeys(("domain", "port", "path", "registerProcedure", "protocol"), True),
    "enclosure": {"url": True, "length": True, "type": True},
    "guid": {"isPermaLink": False},
    "source": {"url": True},
}
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# RFC 822 section 5 date-time, with the year as four digits (the spec allows
# two, preferring four; we insist on four).
_RFC822 = re.compile(
    r"(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s*)?([0-9]{1,2})\s+"
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+([0-9]{4})\s+"
    r"([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?\s+"
    r"(UT|GMT|EST|EDT|CST|CDT|MST|MDT|PST|PDT|[A-IK-Za-ik-z]|[+-][0-9]{4})"
)
# "Email address of the author", e.g. "lawyer@boyer.net (Lawyer Boyer)".
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+(?:\s+\([^()]*\))?"
)


def validate_rss(data: bytes) -> list[str]:
    """Problems with an RSS 2.0 document (empty list = valid).

    Checks XML well-formedness; a namespace-less ``rss`` root with
    version="2.0" and exactly one ``channel``; the required channel elements
    (title, link, description), image (url, title, link) and textInput (title,
    description, name, link); that each item has a title or a description;
    that no element appears more often than the spec allows; the form of each
    value (URLs, RFC 822 dates with four-digit years and a matching weekday,
    language tags, integers, e-mail addresses in author/managingEditor/
    webMaster, enclosure url/length/type, guid isPermaLink, source url, cloud
    attributes, skipHours/skipDays values, image width <= 144 and height <=
    400); that guids are unique; and that elements or attributes the spec does
    not define are in a namespace (spec, "Extending RSS"). Namespaced elements
    (atom:link, dc:*, content:encoded, fh:archive, ...) are allowed anywhere;
    atom:link must carry href and rel.
    """
    root, problems = parse_xml(data)
    if root is None:
        return problems
    if root.tag != "rss":
        return [f"root element {describe(root)} is not a namespace-less <rss>"]
    if root.get("version") not in (None, "2.0"):
        problems.append(f"{describe(root)} version is {root.get('version')!r}, must be '2.0'")
    problems += _attribute_rules(root)
    channels = []
    for child in _elements(root):
        if child.tag == "channel":
            channels.append(child)
        elif not _foreign(child, problems):
            problems.append(f"{describe(child)} is not allowed in <rss>; only <channel> is")
    if len(channels) != 1:
        problems.append(f"<rss> must contain exactly one <channel>, found {len(channels)}")
    for channel in channels:
        problems += _attribute_rules(channel)
        problems += _children_rules(channel)
        guids = Counter(text_of(g) for g in channel.iterfind("item/guid"))
        problems += [
            f"guid {guid!r} is used by {n} items; a guid must identify one item" for guid, n in guids.items() if n > 1
        ]
    return problems


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [child for child in parent if isinstance(child.tag, str)]


def _foreign(el: etree._Element, problems: list[str]) -> bool:
    """Is ``el`` in a namespace (allowed by "Extending RSS")? Checks atom:link."""
    if etree.QName(el).namespace is None:
        return False
    if el.tag == f"{{{ATOM_NS}}}link":
        for attr in ("href", "rel"):
            if not el.get(attr):
                problems.append(f"{describe(el)} has no {attr} attribute")
        href = el.get("href")
        if href and (why := iri_problem(href, absolute=True)) is not None:
            problems.append(f"{describe(el)} href: {why}")
    return True


def _attribute_rules(el: etree._Element) -> list[str]:
    allowed = ATTRIBUTES.get(el.tag, {})
    problems = [
        f"{describe(el)} has unknown attribute {name!r} (spec: undocumented attributes must be in a namespace)"
        for name in map(str, el.attrib)
        if not name.startswith("{") and name not in allowed
    ]
    problems += [
        f"{describe(el)} is missing the required attribute {name!r}"
        for name, required in allowed.items()
        if required and el.get(name) is None
    ]
    return problems


def _children_rules(parent: etree._Element) -> list[str]:
    """Check the children of a channel, item, image, textInput or skip* element."""
    problems: list[str] = []
    table = TABLES[parent.tag]
    counts: Counter[str] = Counter()
    for child in _elements(parent):
        if _foreign(child, problems):
            continue
        if child.tag not in table:
            problems.append(
                f"{describe(child)} is not an element of <{parent.tag}> in RSS 2.0 "
                "(undocumented elements must be in a namespace)"
            )
            continue
        counts[child.tag] += 1
        kind = table[child.tag][0]
        problems += _attribute_rules(child)
        if kind in TABLES:
            problems += _children_rules(child)
        elif len(_elements(child)):
            problems.append(f"{describe(child)} must contain text only, not elements (escape markup as text)")
        else:
            problems += [f"{describe(child)}: {why}" for why in _value_problems(kind, child)]
    for name, n in counts.items():
        if (most := table[name][1]) is not None and n > most:
            problems.append(
                f"<{parent.tag}> (line {parent.sourceline}) has {n} <{name}> elements; at most {most} allowed"
            )
    for name in REQUIRED.get(parent.tag, ()):
        required = parent.find(name)
        if required is None or not text_of(required):
            problems.append(f"<{parent.tag}> (line {parent.sourceline}) is missing a non-empty required <{name}>")
    if parent.tag == "item" and not any(
        (c := parent.find(n)) is not None and text_of(c) for n in ("title", "description")
    ):
        problems.append(f"{describe(parent)} must have a title or a description")
    return problems


def _value_problems(kind: str, el: etree._Element) -> list[str]:
    value = text_of(el)
    if kind == "url":
        return [why] if (why := iri_problem(value, absolute=True)) else []
    if kind == "email":
        return (
            []
            if _EMAIL.fullmatch(value)
            else [
                f"{value!r} does not start with an e-mail address (the spec wants e.g. "
                "'jo@example.com (Jo Doe)'; put a bare name in dc:creator)"
            ]
        )
    if kind == "date":
        return [why] if (why := rfc822_problem(value)) else []
    if kind == "language":
        return [] if is_language_tag(value) else [f"{value!r} is not a language tag"]
    if kind == "integer":
        if not value.isdigit() or not value.isascii():
            return [f"{value!r} is not a non-negative integer"]
        limit = {"width": 144, "height": 400}.get(el.tag)
        return [f"{value} exceeds the maximum of {limit}"] if limit and int(value) > limit else []
    if kind == "hour":
        ok = value.isascii() and value.isdigit() and int(value) <= 23
        return [] if ok else [f"{value!r} is not an hour 0-23"]
    if kind == "day":
        return [] if value in DAYS else [f"{value!r} is not one of {', '.join(DAYS)}"]
    if kind == "guid":
        permalink = el.get("isPermaLink", "true")
        if permalink not in ("true", "false"):
            return [f"isPermaLink is {permalink!r}, must be 'true' or 'false'"]
        if not value:
            return ["guid is empty"]
        why = iri_problem(value, absolute=True) if permalink == "true" else None
        return [f"a permalink guid must be a URL: {why}"] if why else []
    if kind == "source":
        url = el.get("url")
        return [f"url: {why}"] if url and (why := iri_problem(url, absolute=True)) else []
    if kind == "enclosure":
        return _enclosure_problems(el)
    if kind == "cloud":
        return _cloud_problems(el)
    return []


def _enclosure_problems(el: etree._Element) -> list[str]:
    problems = [] if not text_of(el) else ["enclosure must be empty"]
    url, length, typ = el.get("url"), el.get("length"), el.get("type")
    if url is not None:
        if (why := iri_problem(url, absolute=True)) is not None:
            problems.append(f"url: {why}")
        elif not url.lower().startswith(("http://", "https://")):
            problems.append(f"url {url!r} is not an http(s) URL, as the spec requires")
    if length is not None and not (length.isdigit() and length.isascii()):
        problems.append(f"length {length!r} is not a number of bytes")
    if typ is not None and not MIME_TYPE.fullmatch(typ):
        problems.append(f"type {typ!r} is not a MIME type")
    return problems


def _cloud_problems(el: etree._Element) -> list[str]:
    problems = [] if not text_of(el) else ["cloud must be empty"]
    port, protocol = el.get("port"), el.get("protocol")
    if port is not None and not (port.isdigit() and port.isascii() and 0 < int(port) < 65536):
        problems.append(f"port {port!r} is not a TCP port number")
    if protocol is not None and protocol not in ("xml-rpc", "soap", "http-post"):
        problems.append(f"protocol {protocol!r} is not xml-rpc, soap or http-post")
    return problems


def rfc822_problem(value: str) -> str | None:
    """Why ``value`` is not an RSS date (RFC 822 with a 4-digit year); None if it is."""
    m = _RFC822.fullmatch(value)
    if m is None:
        return f"{value!r} is not an RFC 822 date-time with a 4-digit year, e.g. 'Sat, 07 Sep 2002 00:00:01 GMT'"
    try:
        parsedate_to_datetime(value)
        written = dt.date(int(m.group(4)), _MONTHS.index(m.group(3)) + 1, int(m.group(2)))
    except (TypeError, ValueError) as exc:
        return f"{value!r} is not a valid date: {exc}"
    if m.group(1) and m.group(1) != (weekday := DAYS[written.weekday()])[:3]:
        return f"{value!r}: {written.isoformat()} is a {weekday}, not {m.group(1)}"
    if int(m.group(5)) > 23 or int(m.group(6)) > 59 or int(m.group(7) or 0) > 60:
        return f"{value!r} has an invalid time of day"
    return None


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
