"""Read one statement file into a :class:`Statement`, or say exactly why not.

Every rule an input can break is reported as a :class:`Problem` naming the
file and line; errors skip the file, warnings let it through (cleaned).

Text is cleaned where it enters, at each of the three places a character XML
cannot carry can appear: in the raw file, in a front-matter value once its
escapes are decoded (``"\\u0002"``), and in the body once its character
references are decoded (``&#1;``). The body's HTML goes through the one
allow-list of :func:`~syndicate.text.sanitise_html`, as a feed source's does.
Every parser here runs in time linear in its input.
"""

from __future__ import annotations

import difflib
import re
import reprlib
from dataclasses import MISSING, Field, dataclass, field
from datetime import UTC, date, datetime, time
from email.utils import parsedate_to_datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from markdown_it import MarkdownIt

from syndicate.config import LANGUAGE_TAG, SiteConfig
from syndicate.model import Problem, Severity, Statement, field_types, front_matter_fields
from syndicate.sources.frontmatter import Document, FrontMatterError, split
from syndicate.text import (
    XML_ILLEGAL,
    Removed,
    excerpt_words,
    html_to_text,
    one_line,
    sanitise_html,
    slugify,
    xml_clean,
)

# The model says which fields a file declares; a key with no rule of its own below is read by its type.
FRONT_MATTER = front_matter_fields()
KNOWN_KEYS = tuple(f.name for f in FRONT_MATTER)
SUMMARY_WORDS = 40
_ID = re.compile(r"^[\w][\w.-]*\Z")
_LINE_BREAK = re.compile("[\r\n\x85\u2028\u2029]")
# Inline links: text holds no bracket and the URL no parenthesis, so no text is scanned twice.
_INLINE_LINK = re.compile(r"\[([^\[\]]+)\]\(([^()\s]+)\)")
_CHARACTER_REFERENCE = re.compile(r"&#([xX][0-9a-fA-F]{1,8}|[0-9]{1,10});?")


def _short_repr() -> reprlib.Repr:
    # Values quoted in messages are cut short: a YAML alias bomb must not become a gigabyte of text.
    short = reprlib.Repr()
    short.maxstring = short.maxother = 80
    short.maxlevel = 3
    return short


_shown = _short_repr().repr


class Invalid(Exception):
    """One front-matter value is wrong; the file is skipped."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


@dataclass
class Reader:
    """Turns the bytes of statement files into statements, for one site's defaults."""

    site: SiteConfig
    markdown: MarkdownIt = field(default_factory=lambda: MarkdownIt("commonmark", {"html": True}).enable("table"))

    def read(self, ref: str, data: bytes, fingerprint: str = "") -> tuple[Statement | None, list[Problem]]:
        """Parse ``data`` read from ``ref`` (a path relative to the statements folder)."""
        problems: list[Problem] = []
        try:
            text = self._decode(ref, data, problems)
            doc = split(text)
            statement = self._build(ref, doc, fingerprint, problems)
        except FrontMatterError as exc:
            return None, [*problems, Problem(ref, exc.message, exc.line)]
        except Invalid as exc:
            return None, [*problems, Problem(ref, exc.message, doc.line_of(exc.key))]
        return statement, problems

    def _decode(self, ref: str, data: bytes, problems: list[Problem]) -> str:
        if not data.strip():
            raise FrontMatterError("file is empty", 1)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            byte = data[exc.start : exc.start + 1].hex()
            raise FrontMatterError(
                f"not UTF-8: byte 0x{byte} cannot be decoded (save the file as UTF-8)", line
            ) from exc
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        return self._strip_illegal(ref, text, problems)

    @staticmethod
    def _strip_illegal(ref: str, text: str, problems: list[Problem]) -> str:
        found = XML_ILLEGAL.search(text)
        cleaned, removed = xml_clean(text)
        if found and removed:
            problems.append(Problem(ref, str(removed), text.count("\n", 0, found.start()) + 1, Severity.WARNING))
        return cleaned

    def _build(self, ref: str, doc: Document, fingerprint: str, problems: list[Problem]) -> Statement:
        """The statement ``doc`` declares; the front matter is checked before the body is rendered."""
        _warn_unknown_keys(ref, doc, problems)
        meta = _clean_meta(ref, doc, problems)
        statement_id = self._id(ref, meta)
        declared = self._declared(ref, doc, meta, statement_id, problems)
        body_html, body_text, removed = self._body(ref, doc.body)
        if removed:
            how = " (written as character references)" if removed.count else ""
            message = f"body: {removed}{how}"
            problems.append(Problem(ref, message, _reference_line(doc), Severity.WARNING))
        if not body_text.strip():
            problems.append(Problem(ref, "statement has no body", doc.body_line, Severity.WARNING))
        declared["summary"] = declared["summary"] or excerpt_words(html_to_text(_opening(body_html)), SUMMARY_WORDS)
        return Statement(
            **declared,
            id=statement_id,
            body_html=body_html,
            body_text=body_text,
            source_ref=ref,
            fingerprint=fingerprint,
            id_line=doc.key_lines.get("id"),
        )

    def _declared(
        self, ref: str, doc: Document, meta: dict[str, Any], statement_id: str, problems: list[Problem]
    ) -> dict[str, Any]:
        """Every front-matter value but the id, checked by its own rule where it has one, else by its type."""
        own = {
            "title": self._title(ref, doc, meta, problems),
            "published": self._published(meta),
            "lang": self._lang(meta),
            "author": _text(meta, "author") or self.site.author or self.site.title,
            "canonical_url": self._canonical(meta, statement_id),
            "summary": one_line(_text(meta, "summary")),
        }
        return {f.name: own[f.name] if f.name in own else self._typed(meta, f) for f in FRONT_MATTER if f.name != "id"}

    def _typed(self, meta: dict[str, Any], f: Field[Any]) -> Any:
        """A front-matter value read by the type of its field; the field's default when the key is absent."""
        key, kind = f.name, field_types(Statement)[f.name]
        if key not in meta:
            if f.default is MISSING:
                raise Invalid(key, f"{key} is required")
            return f.default
        if kind is bool:
            return _flag(meta, key)
        if kind is str:
            return _text(meta, key)
        if kind == str | None:
            return _text(meta, key) or None
        if kind in (datetime, datetime | None):
            return to_datetime(meta[key], self.site.tz, key)
        if kind == tuple[str, ...]:
            return _names(meta, key)
        raise TypeError(f"front-matter key {key!r} is of type {kind}, which no rule reads; give it one in _declared")

    def _id(self, ref: str, meta: dict[str, Any]) -> str:
        if "id" not in meta:
            default = slugify(PurePosixPath(ref).stem)
            if not _ID.match(default):
                raise Invalid("id", "the file name gives no usable id; name the file in letters or set id")
            return default
        value = meta["id"]
        if not isinstance(value, str | int) or not _ID.match(str(value)):
            raise Invalid("id", f"id {_shown(value)} must be letters, digits, '.', '-' or '_' (it appears in URLs)")
        return str(value)

    @staticmethod
    def _title(ref: str, doc: Document, meta: dict[str, Any], problems: list[Problem]) -> str:
        value = meta.get("title")
        if value is None:
            raise Invalid("title", "title is required")
        if not isinstance(value, str):
            raise Invalid("title", f"title must be text, not {_shown(value)}")
        if not value.strip():
            raise Invalid("title", "title is empty")
        if _LINE_BREAK.search(value.strip()):
            problems.append(
                Problem(ref, "title has a line break; joined into one line", doc.line_of("title"), Severity.WARNING)
            )
        return one_line(value)

    def _published(self, meta: dict[str, Any]) -> datetime:
        if "published" not in meta:
            raise Invalid("published", "published is required (a date-time such as 2013-09-12T10:00:00+03:00)")
        return to_datetime(meta["published"], self.site.tz, "published")

    def _lang(self, meta: dict[str, Any]) -> str:
        value = meta.get("lang", self.site.language)
        if not isinstance(value, str) or not LANGUAGE_TAG.match(value):
            raise Invalid("lang", f"lang {_shown(value)} is not a language tag such as 'en' or 'tr'")
        return value

    def _canonical(self, meta: dict[str, Any], statement_id: str) -> str:
        if "canonical_url" not in meta:
            return f"{self.site.url.rstrip('/')}/statements/{statement_id}"
        value = meta["canonical_url"]
        parts = urlsplit(value) if isinstance(value, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise Invalid("canonical_url", f"canonical_url {_shown(value)} must be an absolute http(s) URL")
        return str(value)

    def _body(self, ref: str, body: str) -> tuple[str, str, Removed | None]:
        """HTML for feeds (sanitised) and the text part for mail, both from the source; and what was removed."""
        if ref.lower().endswith(".html"):
            safe, removed = sanitise_html(body)
            return (safe.strip() + "\n" if safe.strip() else ""), html_to_text(safe), removed
        safe, removed = sanitise_html(self.markdown.render(body))
        return safe, markdown_to_text(body), removed


def to_datetime(value: Any, tz: ZoneInfo, key: str) -> datetime:
    """A front-matter date or date-time as an aware datetime; the site's zone when none is given."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str):
        moment = _parse_time_text(value.strip(), key, tz)
    elif isinstance(value, time):
        raise Invalid(key, f"{key} {value.isoformat()} is a time of day without a date")
    else:
        raise Invalid(key, f"{key} {_shown(value)} is not a date-time")
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def _parse_time_text(value: str, key: str, tz: ZoneInfo) -> datetime:
    """ISO 8601 (``2013-09-12T10:00``, ``2013-09-12``) or RFC 2822 (``Thu, 12 Sep 2013 10:00 +0300``)."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        wanted = "an ISO 8601 date-time such as 2013-09-12T10:00:00+03:00"
        raise Invalid(key, f"{key} {_shown(value)} is not a date-time (wanted {wanted})") from None
    # RFC 2822's "-0000" means UTC (the sender's zone unknown); Python returns it naive.
    if moment.tzinfo is None and re.search(r"-0000\s*$", value):
        return moment.replace(tzinfo=UTC)
    return moment


def _opening(html: str, paragraphs: int = 3) -> str:
    """The first few paragraphs of ``html``: all an automatic summary reads (a long body costs no more)."""
    end = 0
    for _ in range(paragraphs):
        found = html.find("</p>", end)
        if found == -1:
            return html
        end = found + 4
    return html[:end]


def markdown_to_text(source: str) -> str:
    """The text part of a mail, written from the Markdown source: readable as it is."""
    lines = [line.rstrip() for line in source.strip().split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    # Inline links read better as "text <url>" than as Markdown syntax.
    return _INLINE_LINK.sub(r"\1 <\2>", text)


def _clean_meta(ref: str, doc: Document, problems: list[Problem]) -> dict[str, Any]:
    """The front matter with text values (and lists of them) cleaned of what XML cannot carry.

    Only the top level and its lists are walked: every known key is text, a
    list of text, or neither (and then refused by its own check); a deeper
    walk could be led through a YAML alias bomb.
    """
    meta = dict(doc.meta)
    for key, value in doc.meta.items():
        removed: list[Removed] = []
        meta[key] = _clean_value(value, removed)
        if removed:
            total = Removed(sum(r.count for r in removed), removed[0].first)
            problems.append(Problem(ref, f"{key}: {total}", doc.line_of(key), Severity.WARNING))
    return meta


def _clean_value(value: Any, removed: list[Removed]) -> Any:
    if isinstance(value, list):
        return [_clean_value(item, removed) if isinstance(item, str) else item for item in value]
    if not isinstance(value, str):
        return value
    cleaned, found = xml_clean(value)
    if found:
        removed.append(found)
    return cleaned


def _reference_line(doc: Document) -> int:
    """The line of the body's first character reference to something XML cannot carry."""
    for match in _CHARACTER_REFERENCE.finditer(doc.body):
        digits = match.group(1)
        code = int(digits[1:], 16) if digits[0] in "xX" else int(digits)
        if code > 0x10FFFF or XML_ILLEGAL.match(chr(code)):
            return doc.body_line + doc.body.count("\n", 0, match.start())
    return doc.body_line


def _warn_unknown_keys(ref: str, doc: Document, problems: list[Problem]) -> None:
    for key in doc.meta:
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            message = f"unknown front-matter key '{key}'{hint}; ignored"
            problems.append(Problem(ref, message, doc.line_of(key), Severity.WARNING))


def _text(meta: dict[str, Any], key: str) -> str:
    value = meta.get(key, "")
    if not isinstance(value, str):
        raise Invalid(key, f"{key} must be text, not {_shown(value)}")
    return value.strip()


def _flag(meta: dict[str, Any], key: str) -> bool:
    value = meta.get(key, False)
    if not isinstance(value, bool):
        raise Invalid(key, f"{key} must be true or false, not {_shown(value)}")
    return value


def _names(meta: dict[str, Any], key: str) -> tuple[str, ...]:
    value = meta[key]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise Invalid(key, f"{key} must be a list of names, not {_shown(value)}")
    return tuple(dict.fromkeys(one_line(v) for v in value))
