"""Subscribers: addresses checked and normalised, preferences, consent; CSV import and export.

Only ``active`` subscribers get newsletters. A subscriber added without
``confirmed`` is ``pending`` and is sent a confirmation mail (double opt-in).
"""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from syndicate.config import LANGUAGE_TAG


class Status(enum.StrEnum):
    """Where a subscriber stands."""

    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class Frequency(enum.StrEnum):
    """How often a subscriber hears from us."""

    IMMEDIATE = "immediate"
    DAILY = "daily"
    WEEKLY = "weekly"


class InvalidSubscriber(ValueError):
    """An address or preference that cannot be accepted; the message says which and why."""


# A narrower set than RFC 5322 allows, so an address is safe as it is in headers, text and HTML.
_LOCAL = re.compile(r"^[A-Za-z0-9._%+'-]+\Z")  # \Z, not $: "$" would let a final newline through
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)\Z")


def normalise_email(raw: str) -> str:
    """A checked, lower-cased address (international domains in their ASCII form)."""
    value = raw.strip()
    if value.count("@") != 1:
        raise InvalidSubscriber(f"{raw!r} is not an e-mail address")
    local, domain = value.rsplit("@", 1)
    try:
        domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise InvalidSubscriber(f"{raw!r}: the domain is not valid") from exc
    labels = domain.split(".")
    if not _LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidSubscriber(f"{raw!r}: the part before @ is not valid")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise InvalidSubscriber(f"{raw!r}: the domain is not valid")
    address = f"{local.lower()}@{domain}"
    if len(address) > 254:
        raise InvalidSubscriber(f"{raw!r} is longer than 254 characters")
    return address


def check_languages(values: Iterable[str]) -> tuple[str, ...]:
    """Language tags, checked and sorted without repeats."""
    found = sorted({v.strip() for v in values if v.strip()})
    for value in found:
        if not LANGUAGE_TAG.match(value):
            raise InvalidSubscriber(f"{value!r} is not a language tag such as 'en' or 'tr'")
    return tuple(found)


def check_categories(values: Iterable[str]) -> tuple[str, ...]:
    """Categories, each value split at ``;`` or ``,`` (the stored form cannot hold a comma), sorted without repeats."""
    return tuple(sorted({c.strip() for value in values for c in re.split(r"[;,]", value) if c.strip()}))


def check_frequency(value: str) -> Frequency:
    """A frequency by name."""
    try:
        return Frequency(value.strip().lower())
    except ValueError as exc:
        raise InvalidSubscriber(f"frequency {value!r} is not one of immediate, daily, weekly") from exc


def joined(values: Iterable[str]) -> str:
    """Stored form of a list: ",a,b," (empty string for none), so SQL can match ``%,a,%``."""
    items = sorted(set(values))
    return f",{','.join(items)}," if items else ""


def split(stored: str) -> tuple[str, ...]:
    """A stored list back as a tuple."""
    return tuple(v for v in stored.split(",") if v)


@dataclass(frozen=True)
class NewSubscriber:
    """A subscriber to be added: checked, normalised, with the consent that allows it."""

    email: str
    languages: tuple[str, ...]
    categories: tuple[str, ...] = ()
    frequency: Frequency = Frequency.IMMEDIATE
    confirmed: bool = False
    consent_method: str = ""
    consent_at: datetime | None = None


@dataclass
class ImportReport:
    """What a CSV import found: the good rows, and every bad one by line."""

    rows: list[NewSubscriber] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


EXPORT_COLUMNS = (
    "email",
    "status",
    "languages",
    "categories",
    "frequency",
    "consent_at",
    "consent_method",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
)


def parse_csv(text: str, *, default_languages: tuple[str, ...], confirmed: bool, method: str) -> ImportReport:
    """Read subscribers from CSV text with a header row (``email`` required; ``languages``,
    ``categories`` (separated by ``;`` or ``,``), ``frequency`` optional).

    A bad row is reported by the line it starts on, counted as a text editor counts them (a quoted
    field may hold line breaks).
    """
    report = ImportReport()
    rows = _rows(text, report)
    header = [name.strip().lower() for name in next(rows, (1, []))[1]]
    if "email" not in header:
        report.errors.append((1, "the header row must name an 'email' column"))
        return report
    seen: dict[str, int] = {}
    for line, values in rows:
        try:
            subscriber = _row(header, values, default_languages, confirmed, method)
        except InvalidSubscriber as exc:
            report.errors.append((line, str(exc)))
            continue
        if subscriber.email in seen:
            report.errors.append((line, f"{subscriber.email} is already on line {seen[subscriber.email]}"))
            continue
        seen[subscriber.email] = line
        report.rows.append(subscriber)
    return report


def _rows(text: str, report: ImportReport) -> Iterator[tuple[int, list[str]]]:
    """(first line, values) of every row that is not blank; rows CSV cannot read go to the report."""
    reader = csv.reader(io.StringIO(text))
    start = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            report.errors.append((start, f"not readable as CSV: {exc}"))
            values = []
        line, start = start, reader.line_num + 1
        if any(value.strip() for value in values):
            yield line, values


def _row(
    header: list[str], values: list[str], default_languages: tuple[str, ...], confirmed: bool, method: str
) -> NewSubscriber:
    if len(values) > len(header):
        raise InvalidSubscriber("the row has more columns than the header")
    fields = {name: from_cell(value.strip()) for name, value in zip(header, values, strict=False)}
    languages = check_languages(re.split(r"[;,\s]+", fields.get("languages", ""))) or default_languages
    categories = check_categories([fields.get("categories", "")])
    frequency = check_frequency(fields.get("frequency") or "immediate")
    return NewSubscriber(normalise_email(fields.get("email", "")), languages, categories, frequency, confirmed, method)


# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection"): an
# export writes it after a quote, which spreadsheets show as text, and an import takes the quote off.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_cell(value: object) -> object:
    """``value`` as an exported cell: text a spreadsheet would run as a formula is quoted."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def from_cell(value: str) -> str:
    """An imported cell as it was before :func:`as_cell` quoted it."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_STARTS) else value


def to_csv(rows: Iterable[dict[str, object]]) -> Iterator[str]:
    """CSV lines (header first) for ``subscribers export``; no cell can start a spreadsheet formula."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow({name: as_cell(value) for name, value in row.items()})
        yield buffer.getvalue()
