"""The OpenAPI 3.1 document of ``/api/v1``, served at ``/api/v1/openapi.json`` (and checked by schemathesis)."""

from __future__ import annotations

from typing import Any

from syndicate import __version__
from syndicate.outbox import Channel
from syndicate.web.admin.guard import COOKIE

CHANNELS = [c.value for c in Channel]
COUNTS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}
TIME = {"type": "string", "format": "date-time"}
ROWS = {"type": "array", "items": {"type": "object"}}


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


ERRORS = {
    "400": {"$ref": "#/components/responses/Error"},
    "401": {"$ref": "#/components/responses/Error"},
    "403": {"$ref": "#/components/responses/Error"},
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _read(summary: str, schema: dict[str, Any], parameters: list[dict[str, Any]] | None = None,
          not_found: bool = False) -> dict[str, Any]:  # fmt: skip
    responses = {
        "200": _ok(schema),
        **ERRORS,
        **({"404": {"$ref": "#/components/responses/Error"}} if not_found else {}),
    }
    return {"get": {"summary": summary, "parameters": parameters or [], "responses": responses}}


def _act(summary: str, body: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "description": "Needs an admin; with a session, its CSRF token in X-CSRF-Token. Recorded in the audit log.",
            "requestBody": {"required": bool(body.get("required")), "content": {"application/json": {"schema": body}}},
            "responses": {"200": _ok(result), "409": {"$ref": "#/components/responses/Error"}, **ERRORS},
        }
    }


CHANNEL = _query("channel", {"type": "string", "enum": CHANNELS}, "Only this channel.")
OVERVIEW = _object(
    {
        "now": TIME,
        "statements": COUNTS,
        "scheduled": {
            "type": "array",
            "items": _object(
                {
                    "id": {"type": "string"},
                    "title": {"type": "string"},
                    "lang": {"type": "string"},
                    "at": TIME,
                    "seconds_left": {"type": "integer", "minimum": 0},
                }
            ),
        },
        "last_tick": {"type": ["object", "null"]},
        "last_check": {
            "type": ["object", "null"],
            "description": "What the last `syndicate check` (or the daemon's start) found",
            "properties": {
                "at": TIME,
                "by": {"type": "string"},
                "errors": {"type": "integer", "minimum": 0},
                "warnings": {"type": "integer", "minimum": 0},
                "problems": {"type": "array", "items": {"type": "string"}},
            },
        },
        "last_send": {"type": ["object", "null"]},
        "owed": COUNTS,
        "decisions": COUNTS,
        "pings_pending": {"type": "integer", "minimum": 0},
    }
)
DAY = _object(
    {
        "day": {"type": "string"},
        **{k: {"type": "integer", "minimum": 0} for k in ("new", "confirmed", "unsubscribed", "bounced", "complained")},
    }
)
HOUR = _object({"hour": {"type": "string"}, "counts": COUNTS})
EDITION = _object(
    {
        "edition": {"type": "integer"},
        "subject": {"type": "string"},
        "sent": {"type": "integer"},
        "hard": {"type": "integer"},
        "soft": {"type": "integer"},
        "complaints": {"type": "integer"},
        "unsubscribes": {"type": "integer"},
        "complaint_rate": {"type": "number"},
        "over_the_line": {"type": "boolean"},
    }
)
PATHS: dict[str, Any] = {
    "/api/v1/overview": _read("Statements by state, embargoes to come, the last tick and send, what is owed", OVERVIEW),
    "/api/v1/subscribers/daily": _read(
        "New, confirmed, unsubscribed, bounced and complained subscribers per day (UTC)",
        _object({"days": {"type": "array", "items": DAY}}),
        [_query("days", {"type": "integer", "minimum": 1, "maximum": 366}, "How many days, up to today.")],
    ),
    "/api/v1/deliveries/hourly": _read(
        "Settled deliveries per hour (UTC), by channel:state",
        _object({"hours": {"type": "array", "items": HOUR}}),
        [_query("hours", {"type": "integer", "minimum": 1, "maximum": 744}, "How many hours, up to this one.")],
    ),
    "/api/v1/deliveries": _read(
        "Failed or unknown deliveries, newest first (the operator's to decide about)",
        _object({"deliveries": ROWS}),
        [
            _query("state", {"type": "string", "enum": ["failed", "unknown"]}, "Which (default failed)."),
            CHANNEL,
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "At most this many."),
        ],
    ),
    "/api/v1/deliveries/unknown/preview": _read(
        "How many deliveries are unknown, and to whom: what a resend would send again",
        _object({"count": {"type": "integer", "minimum": 0}, "shown": ROWS}),
        [CHANNEL],
    ),
    "/api/v1/editions": _read(
        "The newest mailed editions: sent, bounces, complaints (rate against the line), unsubscribes",
        _object({"complaint_line": {"type": "number"}, "editions": {"type": "array", "items": EDITION}}),
        [_query("newest", {"type": "integer", "minimum": 1, "maximum": 100}, "How many editions.")],
    ),
    "/api/v1/partners": _read("Each partner: last success, backlog, disabled", _object({"partners": ROWS})),
    "/api/v1/machinery": _read("Nodes (heartbeats) and mail relays", _object({"nodes": ROWS, "relays": ROWS})),
    "/api/v1/audit": _read(
        "The audit log, newest first",
        _object(
            {
                "lines": {
                    "type": "array",
                    "items": _object(
                        {
                            "id": {"type": "integer"},
                            "at": TIME,
                            "actor": {"type": "string"},
                            "action": {"type": "string"},
                            "detail": {"type": "string"},
                            "client": {"type": "string"},
                        }
                    ),
                }
            }
        ),
        [_query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "At most this many.")],
    ),
    "/api/v1/statements": _read(
        "The newest statements, published or not (to choose one to preview or test)",
        _object(
            {
                "statements": {
                    "type": "array",
                    "items": _object(
                        {
                            "id": {"type": "string"},
                            "title": {"type": "string"},
                            "lang": {"type": "string"},
                            "state": {"type": "string"},
                            "published": TIME,
                        }
                    ),
                }
            }
        ),
        [_query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "At most this many.")],
    ),
    "/api/v1/preview": _read(
        "A statement's mail (or the digest holding it) as a sample reader gets it",
        _object({k: {"type": "string"} for k in ("subject", "from", "to", "html", "text")}),
        [
            {
                "name": "statement",
                "in": "query",
                "required": True,
                "schema": {"type": "string", "minLength": 1},
                "description": "The statement's id.",
            },
            _query("digest", {"type": "string", "enum": ["daily", "weekly"]}, "The digest holding it instead."),
        ],
        not_found=True,
    ),
    "/api/v1/actions/replay-partner": _act(
        "Push again, as new deliveries, what a partner was sent since a date or time (site.timezone)",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "since": {"type": "string", "minLength": 1, "description": "2026-05-01 or 2026-05-01T09:30"},
                "expected": {"type": "integer", "minimum": 0},
            },
            "required": ["name", "since"],
        },
        _object({"replayed": {"type": "integer", "minimum": 0}}),
    ),
    "/api/v1/actions/send-test": _act(
        "Send a statement's mail to one address through a relay (not through the outbox); the relay's reply",
        {
            "type": "object",
            "properties": {
                "statement": {"type": "string", "minLength": 1},
                "to": {"type": "string", "minLength": 1},
                "relay": {"type": "string"},
            },
            "required": ["statement", "to"],
        },
        _object({"delivered": {"type": "boolean"}, "reply": {"type": "string"}}),
    ),
    "/api/v1/actions/retry-failed": _act(
        "Try failed deliveries again",
        {"type": "object", "properties": {"channel": {"type": "string", "enum": CHANNELS}}},
        _object({"requeued": {"type": "integer", "minimum": 0}}),
    ),
    "/api/v1/actions/resend-unknown": _act(
        "Send the unknown deliveries again (expected: the count the preview showed)",
        {
            "type": "object",
            "properties": {
                "expected": {"type": "integer", "minimum": 0},
                "channel": {"type": "string", "enum": CHANNELS},
            },
            "required": ["expected"],
        },
        _object({"requeued": {"type": "integer", "minimum": 0}}),
    ),
    "/api/v1/actions/enable-partner": _act(
        "Push to a disabled partner again",
        {"type": "object", "properties": {"name": {"type": "string", "minLength": 1}}, "required": ["name"]},
        _object({"enabled": {"type": "boolean"}, "released": {"type": "integer", "minimum": 0}}),
    ),
    "/api/v1/actions/unsuppress": _act(
        "Take an address off the suppression list",
        {"type": "object", "properties": {"email": {"type": "string", "minLength": 1}}, "required": ["email"]},
        _object({"unsuppressed": {"type": "string"}}),
    ),
    "/api/v1/actions/remove-subscriber": _act(
        "Remove a subscriber entirely",
        {"type": "object", "properties": {"email": {"type": "string", "minLength": 1}}, "required": ["email"]},
        _object({"removed": {"type": "string"}}),
    ),
    "/api/v1/actions/import-subscribers": _act(
        "Import subscribers from a CSV's text, as `subscribers import` does (dry_run: the report alone)",
        {
            "type": "object",
            "properties": {
                "csv": {"type": "string"},
                "consent_elsewhere": {"type": "boolean"},
                "skip_invalid": {"type": "boolean"},
                "dry_run": {"type": "boolean"},
            },
            "required": ["csv"],
        },
        _object(
            {
                "rows": {"type": "integer", "minimum": 0},
                "errors": {
                    "type": "array",
                    "items": _object({"line": {"type": "integer"}, "reason": {"type": "string"}}),
                },
                "imported": {"type": "integer", "minimum": 0},
                "already": {"type": "integer", "minimum": 0},
            }
        ),
    ),
    "/api/v1/subscribers/export": {
        "get": {
            "summary": "Every subscriber as CSV (admins only; recorded in the audit log)",
            "responses": {
                "200": {"description": "OK", "content": {"text/csv": {"schema": {"type": "string"}}}},
                **ERRORS,
            },
        }
    },
    "/api/v1/actions/run-tick": _act(
        "Run one tick now",
        {"type": "object"},
        _object({"seconds": {"type": "number"}, "stages": {"type": "object"}, "failed": {"type": "object"}}),
    ),
}


def document(base_url: str) -> dict[str, Any]:
    """The document, with the server it is served from."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "syndicate console API",
            "version": __version__,
            "description": "What the operator's console reads and does. Tokens: `syndicate admin token create`.",
        },
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": COOKIE},
            },
            "responses": {"Error": _ok(_object({"error": {"type": "string"}}), "What went wrong")},
        },
    }
