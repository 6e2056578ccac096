"""JSON Feed 1.1 validator (https://www.jsonfeed.org/version/1.1/)."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError

from ._common import iri_problem, rfc3339_problem

SCHEMA_PATH = Path(__file__).with_name("jsonfeed-1.1.schema.json")

# jsonschema checks "uri" only with rfc3987 installed and "date-time" only with
# rfc3339-validator; neither is, so a checker of our own implements both.
FORMAT_CHECKER = FormatChecker()


def _is_uri(instance: object) -> bool:
    """JSON Schema "uri": an absolute RFC 3986 URI (non-ASCII must be %-encoded)."""
    if isinstance(instance, str) and (why := iri_problem(instance, absolute=True, ascii_only=True)):
        raise ValueError(why)
    return True


def _is_date_time(instance: object) -> bool:
    """JSON Schema "date-time": an RFC 3339 date-time, time zone included."""
    if isinstance(instance, str) and (why := rfc3339_problem(instance)):
        raise ValueError(why)
    return True


FORMAT_CHECKER.checks("uri", raises=ValueError)(_is_uri)
FORMAT_CHECKER.checks("date-time", raises=ValueError)(_is_date_time)


@functools.cache
def jsonfeed_validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FORMAT_CHECKER)


def validate_json_feed(data: bytes) -> list[str]:
    """Problems with a JSON Feed 1.1 document (empty list = valid).

    The document must be UTF-8 JSON (RFC 8259) without NaN/Infinity or repeated
    member names, and must match ``jsonfeed-1.1.schema.json``: version
    "https://jsonfeed.org/version/1.1", title and items required; items with a
    string id and content_html and/or content_text; the spec's types for every
    other member (URLs as absolute URIs, dates as RFC 3339, language as an
    RFC 5646 tag, author objects with a name, url or avatar, hubs with type
    and url, attachments with url and mime_type); and no members the spec does
    not define except extensions ('_' then a letter, holding an object).
    Item ids must also be unique within the document.
    """
    problems: list[str] = []

    def pairs(members: list[tuple[str, Any]]) -> dict[str, Any]:
        names = Counter(name for name, _ in members)
        problems.extend(f"member {name!r} appears {n} times in one object" for name, n in names.items() if n > 1)
        return dict(members)

    def no_constant(name: str) -> None:
        raise ValueError(f"{name} is not a JSON value")

    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=pairs, parse_constant=no_constant)
    except UnicodeDecodeError as exc:
        return [f"not UTF-8 (RFC 8259 §8.1): {exc}"]
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        return [f"not valid JSON: {exc}"]

    errors = sorted(jsonfeed_validator().iter_errors(doc), key=lambda e: e.json_path)
    problems += [_describe(error) for error in errors]
    items = doc.get("items") if isinstance(doc, dict) else None
    if isinstance(items, list):
        ids = Counter(item["id"] for item in items if isinstance(item, dict) and isinstance(item.get("id"), str))
        problems += [
            f"$.items: id {item_id!r} is used by {n} items; ids must be unique" for item_id, n in ids.items() if n > 1
        ]
    return problems


def _describe(error: ValidationError) -> str:
    message = error.message
    if error.validator == "additionalProperties" and isinstance(error.schema, dict):
        patterns = error.schema.get("patternProperties", {})
        unknown = [
            repr(name)
            for name in error.instance
            if name not in error.schema.get("properties", {})
            and not any(re.search(pattern, name) for pattern in patterns)
        ]
        message = (
            f"unknown member {', '.join(unknown)}: not a JSON Feed 1.1 field, and not "
            "an extension (a name starting with '_' and a letter)"
        )
    elif error.validator == "anyOf" and isinstance(error.schema, dict):
        message = error.schema.get("description", message)
    elif error.validator == "format" and error.cause is not None:
        message = f"{message}: {error.cause}"
    return f"{error.json_path}: {message}"
