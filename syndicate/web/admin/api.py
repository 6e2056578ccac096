"""``/api/v1``: everything the console reads and does, as JSON, described at ``/api/v1/openapi.json``.

A request carries ``Authorization: Bearer <token>`` (``syndicate admin token
create``) or the console's session cookie; without either it is answered 401.
Reading needs any role; the ``POST /api/v1/actions/...`` need an admin (403
otherwise) and, with a session, its CSRF token in ``X-CSRF-Token``. Errors
are ``{"error": "..."}`` with the status that says what went wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from syndicate.console import figures, samples
from syndicate.console.accounts import Accounts
from syndicate.console.actions import Actions, Who
from syndicate.console.actions import Refused as ActionRefused
from syndicate.errors import SyndicateError
from syndicate.store import admin as admin_store
from syndicate.web.admin import openapi
from syndicate.web.admin.guard import CSRF_HEADER, Caller, caller
from syndicate.web.context import Web

MAX_BODY = 16 * 1024


class Api:
    """The JSON API."""

    def __init__(self, web: Web, accounts: Accounts) -> None:
        self.web, self.app, self.accounts = web, web.app, accounts
        self.actions = Actions(web.app)

    def blueprint(self) -> Blueprint:
        bp = Blueprint("api", __name__)
        bp.add_url_rule("/api/v1/openapi.json", "openapi", self.document, methods=["GET"])
        reads: dict[str, Callable[[Caller], Any]] = {
            "/api/v1/overview": self.overview,
            "/api/v1/subscribers/daily": self.subscribers_daily,
            "/api/v1/deliveries/hourly": self.deliveries_hourly,
            "/api/v1/deliveries": self.deliveries,
            "/api/v1/deliveries/unknown/preview": self.unknown_preview,
            "/api/v1/editions": self.editions,
            "/api/v1/partners": self.partners,
            "/api/v1/machinery": self.machinery,
            "/api/v1/audit": self.audit,
            "/api/v1/statements": self.statements,
            "/api/v1/preview": self.preview,
        }
        for path, handler in reads.items():
            bp.add_url_rule(path, handler.__name__, self._guarded(handler, act=False), methods=["GET"])
        writes: dict[str, Callable[[Caller], Any]] = {
            "/api/v1/actions/retry-failed": self.retry_failed,
            "/api/v1/actions/resend-unknown": self.resend_unknown,
            "/api/v1/actions/replay-partner": self.replay_partner,
            "/api/v1/actions/send-test": self.send_test,
            "/api/v1/actions/enable-partner": self.enable_partner,
            "/api/v1/actions/unsuppress": self.unsuppress,
            "/api/v1/actions/remove-subscriber": self.remove_subscriber,
            "/api/v1/actions/run-tick": self.run_tick,
            "/api/v1/actions/import-subscribers": self.import_subscribers,
        }
        for path, handler in writes.items():
            bp.add_url_rule(path, handler.__name__, self._guarded(handler, act=True), methods=["POST"])
        # The list's personal data: an admin's to take, recorded (a read, so no CSRF token is asked).
        bp.add_url_rule("/api/v1/subscribers/export", "export", self._guarded(self.export, act=False, admin=True),
                        methods=["GET"])  # fmt: skip
        return bp

    def _guarded(self, handler: Callable[[Caller], Any], act: bool, admin: bool = False) -> Callable[[], Response]:
        def answer() -> Response:
            who = caller(self.accounts, request)
            if who is None:
                response = _error("log in, or send Authorization: Bearer <token>", 401)
                response.headers["WWW-Authenticate"] = 'Bearer realm="syndicate"'
                return response
            if (act or admin) and not who.may_act:
                return _error("this role may read, not act", 403)
            if act and not who.vouches_for(request.headers.get(CSRF_HEADER, "")):
                return _error("a session's writes carry its CSRF token in X-CSRF-Token", 403)
            try:
                result = handler(who)
            except samples.NoSuchStatement as exc:
                return _error(str(exc), 404)
            except (ActionRefused, BadRequest, SyndicateError) as exc:
                return _error(str(exc), 409 if isinstance(exc, ActionRefused) else 400)
            response = result if isinstance(result, Response) else jsonify(result)
            response.headers["Cache-Control"] = "no-store"
            return response

        answer.__name__ = handler.__name__
        return answer

    def document(self) -> Response:
        response = jsonify(openapi.document(self.app.config.web_base_url))
        response.headers["Cache-Control"] = "no-store"
        return response

    # -- reading

    def overview(self, who: Caller) -> Any:
        with self.app.db.read() as conn:
            return figures.overview(self.app, conn)

    def subscribers_daily(self, who: Caller) -> Any:
        days = _number("days", 30, 1, figures.MAX_DAYS)
        with self.app.db.read() as conn:
            return {"days": figures.subscribers_daily(conn, self.app.clock(), days)}

    def deliveries_hourly(self, who: Caller) -> Any:
        hours = _number("hours", 48, 1, figures.MAX_HOURS)
        with self.app.db.read() as conn:
            return {"hours": figures.deliveries_hourly(conn, self.app.clock(), hours)}

    def deliveries(self, who: Caller) -> Any:
        state = request.args.get("state", "failed")
        if state not in ("failed", "unknown"):
            raise BadRequest("state is failed or unknown")
        channel = _channel()
        limit = _number("limit", 100, 1, 1000)
        with self.app.db.read() as conn:
            return {"deliveries": figures.deliveries_to_decide(conn, state, channel, limit)}

    def unknown_preview(self, who: Caller) -> Any:
        return self.actions.unknown_preview(_channel())

    def editions(self, who: Caller) -> Any:
        newest = _number("newest", 10, 1, 100)
        with self.app.db.read() as conn:
            return figures.editions(conn, newest)

    def partners(self, who: Caller) -> Any:
        with self.app.db.read() as conn:
            return {"partners": figures.partners(self.app, conn)}

    def machinery(self, who: Caller) -> Any:
        with self.app.db.read() as conn:
            return figures.machinery(self.app, conn)

    def audit(self, who: Caller) -> Any:
        limit = _number("limit", 100, 1, 1000)
        with self.app.db.read() as conn:
            lines = admin_store.audit_lines(conn, limit)
        return {"lines": [{"id": int(line.id), "at": line.at.isoformat(), "actor": line.actor, "action": line.action,
                           "detail": line.detail, "client": line.client} for line in lines]}  # fmt: skip

    def statements(self, who: Caller) -> Any:
        limit = _number("limit", 50, 1, 500)
        with self.app.db.read() as conn:
            return {"statements": figures.recent_statements(conn, limit)}

    def preview(self, who: Caller) -> Any:
        """A statement's mail (or a digest holding it) as a sample reader gets it: headers, HTML, plain text."""
        statement = request.args.get("statement", "")
        if not statement:
            raise BadRequest("statement: the id of the statement to preview")
        digest = request.args.get("digest") or None
        if digest is not None and digest not in samples.DIGESTS:
            raise BadRequest(f"digest is one of {', '.join(samples.DIGESTS)}")
        shown = samples.parts(samples.preview(self.app, statement, digest))
        return {"subject": shown.subject, "from": shown.sender, "to": shown.to, "html": shown.html, "text": shown.text}

    # -- acting

    def _who(self, who: Caller) -> Who:
        return Who(who.name, self.web.client())

    def retry_failed(self, who: Caller) -> Any:
        return self.actions.retry_failed(self._who(who), _body_text("channel", required=False))

    def resend_unknown(self, who: Caller) -> Any:
        expected = _body_count("expected", "the count of unknown deliveries you were shown")
        if expected is None:
            raise BadRequest("expected: the count of unknown deliveries you were shown (an integer) is required")
        return self.actions.resend_unknown(self._who(who), expected, _body_text("channel", required=False))

    def replay_partner(self, who: Caller) -> Any:
        expected = _body_count("expected", "the count of events a replay was shown to push")
        return self.actions.replay_partner(self._who(who), _body_text("name"), _body_text("since"), expected)

    def send_test(self, who: Caller) -> Any:
        return self.actions.send_test(self._who(who), _body_text("statement"), _body_text("to"),
                                      _body_text("relay", required=False) or None)  # fmt: skip

    def enable_partner(self, who: Caller) -> Any:
        return self.actions.enable_partner(self._who(who), _body_text("name"))

    def unsuppress(self, who: Caller) -> Any:
        return self.actions.unsuppress(self._who(who), _body_text("email"))

    def remove_subscriber(self, who: Caller) -> Any:
        return self.actions.remove_subscriber(self._who(who), _body_text("email"))

    def import_subscribers(self, who: Caller) -> Any:
        request.max_content_length = 10_000_000
        body = _body(10_000_000)
        text = body.get("csv")
        flags = {k: body.get(k, False) for k in ("consent_elsewhere", "skip_invalid", "dry_run")}
        if not isinstance(text, str) or not all(isinstance(v, bool) for v in flags.values()):
            raise BadRequest("csv: the file's text; consent_elsewhere, skip_invalid, dry_run: booleans")
        return self.actions.import_subscribers(self._who(who), text, "the API", flags["consent_elsewhere"],
                                               flags["skip_invalid"], not flags["dry_run"])  # fmt: skip

    def export(self, who: Caller) -> Any:
        rows = "".join(self.actions.export_subscribers(self._who(who)))
        return Response(rows, 200, content_type="text/csv; charset=utf-8")

    def run_tick(self, who: Caller) -> Any:
        return self.actions.run_tick(self._who(who))


class BadRequest(ValueError):
    """A request the API cannot read."""


def _error(message: str, status: int) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _number(name: str, default: int, low: int, high: int) -> int:
    given = request.args.get(name)
    if given is None:
        return default
    if not given.isascii() or not given.isdigit() or not low <= int(given) <= high:
        raise BadRequest(f"{name} is a whole number from {low} to {high}")
    return int(given)


def _channel() -> str | None:
    given = request.args.get("channel") or None
    if given is not None and given not in figures.CHANNELS:
        raise BadRequest(f"channel is one of {', '.join(figures.CHANNELS)}")
    return given


def _body(limit: int = MAX_BODY) -> dict[str, Any]:
    if request.content_length and request.content_length > limit:
        raise BadRequest("the body is too large")
    data = request.get_data(cache=True)
    if not data.strip():
        return {}
    value = request.get_json(silent=True)
    if not isinstance(value, dict):
        raise BadRequest("the body is a JSON object")
    return value


def _body_text(name: str, required: bool = True) -> str:
    value = _body().get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise BadRequest(f"{name}: a string")
    return value


def _body_count(name: str, what: str) -> int | None:
    """A non-negative integer from the body, or None when it is absent (JSON's 3.0 is the integer 3)."""
    value = _body().get(name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadRequest(f"{name}: {what} (an integer)")
    return value
