"""Syntax checks shared by the feed validators: XML parsing, RFC 3339 dates,
RFC 3987 IRIs / RFC 3986 URIs, BCP 47 language tags and MIME types."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

from lxml import etree

XML_NS = "http://www.w3.org/XML/1998/namespace"


def parse_xml(data: bytes) -> tuple[etree._Element | None, list[str]]:
    """Parse ``data`` as XML 1.0 without fetching or expanding anything external.

    Returns the root element, or ``None`` and the well-formedness errors."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_comments=False)
    try:
        return etree.fromstring(data, parser), []
    except etree.XMLSyntaxError as exc:
        # parser.error_log holds this parse only (exc.error_log can hold older,
        # unrelated libxml2 messages of the thread, e.g. from RELAX NG runs).
        errors = [f"XML is not well-formed: line {e.line}: {e.message}" for e in parser.error_log]
        return None, errors or [f"XML is not well-formed: {exc}"]


def describe(el: etree._Element) -> str:
    """A short, human-readable locator for ``el``: ``<prefix:name> (line N)``."""
    qname = etree.QName(el)
    prefix = el.prefix + ":" if el.prefix else ""
    return f"<{prefix}{qname.localname}> (line {el.sourceline})"


def text_of(el: etree._Element) -> str:
    return (el.text or "").strip()


# --- RFC 3339 section 5.6 "date-time" ---------------------------------------

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)


def rfc3339_problem(value: str, *, uppercase: bool = False) -> str | None:
    """Why ``value`` is not an RFC 3339 ``date-time`` (None if it is one).

    A time zone is mandatory in that production. ``uppercase=True`` adds the
    RFC 4287 section 3.3 rule that "T" and "Z" must be uppercase."""
    m = _RFC3339.fullmatch(value)
    if m is None:
        return f"{value!r} is not an RFC 3339 date-time with a time zone"
    if uppercase and (value[10] != "T" or value.endswith("z")):
        return f"{value!r}: RFC 4287 section 3.3 requires an uppercase 'T' and 'Z'"
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        # RFC 3339 allows a leap second (60); check the rest of the calendar.
        dt.datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError as exc:
        return f"{value!r} is not a valid date-time: {exc}"
    if second > 60:
        return f"{value!r} is not a valid date-time: second must be in 0..60"
    if m.group(8) and (int(m.group(9)) > 23 or int(m.group(10)) > 59):
        return f"{value!r} has an invalid time zone offset"
    return None


# --- RFC 3987 IRIs and RFC 3986 URIs ------------------------------------------

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
# unreserved / sub-delims / gen-delims of RFC 3986; '%' is checked separately.
_URI_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:/?#[]@")
_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _ucschar_ok(ch: str) -> bool:
    """RFC 3987 ``ucschar``/``iprivate``: non-ASCII outside controls, surrogates,
    non-characters and the bidi formatting characters (RFC 3987 section 4.1)."""
    cp = ord(ch)
    if cp < 0xA0 or 0xD800 <= cp <= 0xDFFF or 0xFDD0 <= cp <= 0xFDEF or cp & 0xFFFE == 0xFFFE:
        return False
    return cp not in (0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E)


def iri_problem(value: str, *, absolute: bool, ascii_only: bool = False) -> str | None:
    """Why ``value`` is not an IRI reference (RFC 3987); None if it is one.

    ``absolute=True`` requires a scheme (an "IRI", not a relative reference);
    ``ascii_only=True`` restricts to RFC 3986 URIs. Hierarchical http(s)/ftp
    references must have a host, and a port must be numeric."""
    if value != value.strip() or not value:
        return f"{value!r} is empty or has leading/trailing whitespace"
    for ch in value:
        if ch in _URI_CHARS or ch == "%":
            continue
        if ascii_only or not _ucschar_ok(ch):
            return f"{value!r} contains the character {ch!r}, not allowed in a URI/IRI"
    if _PCT.search(value):
        return f"{value!r} has a '%' not followed by two hex digits"
    if value.count("#") > 1:
        return f"{value!r} has more than one '#'"
    scheme, sep, _ = value.partition(":")
    has_scheme = bool(sep) and _SCHEME.fullmatch(scheme) is not None
    if absolute and not has_scheme:
        return f"{value!r} is not an absolute IRI (no scheme)"
    if not has_scheme and ":" in value.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]:
        return f"{value!r}: a relative reference's first segment cannot contain ':'"
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError as exc:
        return f"{value!r} is not a valid IRI: {exc}"
    if any(c in "[]" for c in parts.path + parts.query + parts.fragment):
        return f"{value!r} has '[' or ']' outside an IP literal host"
    if parts.scheme.lower() in ("http", "https", "ftp") and not parts.hostname:
        return f"{value!r} has no host"
    return None


# --- BCP 47 (RFC 5646) language tags, well-formedness only --------------------

_ALNUM = "[A-Za-z0-9]"
_LANGTAG = (
    r"(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})"  # language ["-" extlang]
    r"(?:-[A-Za-z]{4})?"  # script
    r"(?:-(?:[A-Za-z]{2}|[0-9]{3}))?"  # region
    rf"(?:-(?:{_ALNUM}{{5,8}}|[0-9]{_ALNUM}{{3}}))*"  # variants
    rf"(?:-[0-9A-WYZa-wyz](?:-{_ALNUM}{{2,8}})+)*"  # extensions
    rf"(?:-[Xx](?:-{_ALNUM}{{1,8}})+)?"  # private use
)
BCP47_PATTERN = (
    rf"^(?:{_LANGTAG}|[Xx](?:-{_ALNUM}{{1,8}})+"
    r"|[Ii]-(?:ami|bnn|default|enochian|hak|klingon|lux|mingo|navajo|pwn|tao|tay|tsu)"
    r"|(?:en-GB-oed|sgn-BE-FR|sgn-BE-NL|sgn-CH-DE))$"
)
_BCP47 = re.compile(BCP47_PATTERN)


def is_language_tag(value: str) -> bool:
    """Is ``value`` a well-formed BCP 47 language tag (RFC 5646 section 2.1)?"""
    return _BCP47.match(value) is not None


# RFC 6838 section 4.2 restricted-name, with optional parameters.
_TOKEN = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+\-]{0,126}"
MIME_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(?:\s*;\s*[^;=\s]+=(?:[^;\s]+|\"[^\"]*\"))*")
