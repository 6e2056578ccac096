"""The console's pages: log in and out, the dashboard, the deliveries to decide about, the audit log, actions.

Every page but the login asks for a session (else: 303 to ``/admin/login``).
Viewers see everything; an action (a form post to ``/admin/actions/<name>``)
needs an admin, the session's CSRF token, and a confirmation: the first post
answers a page saying what will be done (for a resend, how many and to
whom), whose own form repeats the request with ``confirmed``; only that
second post acts. Each action is recorded in the audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, redirect, request, send_from_directory

from syndicate.console import figures, samples
from syndicate.console.accounts import Accounts, Refused
from syndicate.console.actions import Actions, Who
from syndicate.console.actions import Refused as ActionRefused
from syndicate.errors import SyndicateError
from syndicate.store import admin as admin_store
from syndicate.web import forms
from syndicate.web.admin.guard import COOKIE, CSRF_FIELD, Caller, caller, clear_session_cookie, set_session_cookie
from syndicate.web.context import Web

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
LOGIN_FORM = "admin-login"
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
ACTIONS = ("retry-failed", "resend-unknown", "replay-partner", "enable-partner", "unsuppress", "remove-subscriber",
           "run-tick", "import-subscribers", "send-test")  # fmt: skip
FIELDS = ("channel", "name", "email", "expected", "consent_elsewhere", "skip_invalid", "since", "statement", "to",
          "relay")  # fmt: skip
# A previewed newsletter is shown as a reader's mail program would: its HTML in a sandboxed frame, no script,
# nothing it links to loaded but its own styles and images.
PREVIEW_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; frame-ancestors 'self'"
)
MAX_IMPORT = 10_000_000  # bytes of CSV the import takes


class Console:
    """The console's HTML pages."""

    def __init__(self, web: Web, accounts: Accounts) -> None:
        self.web, self.app, self.accounts = web, web.app, accounts
        self.actions = Actions(web.app)

    def blueprint(self) -> Blueprint:
        bp = Blueprint("admin", __name__)
        bp.add_url_rule("/admin/login", "login", self.login_page, methods=["GET"])
        bp.add_url_rule("/admin/login", "login_post", self.login, methods=["POST"])
        bp.add_url_rule("/admin/logout", "logout", self.logout, methods=["POST"])
        bp.add_url_rule("/admin", "dashboard", self._page(self.dashboard), methods=["GET"])
        bp.add_url_rule("/admin/deliveries", "deliveries", self._page(self.deliveries), methods=["GET"])
        bp.add_url_rule("/admin/audit", "audit", self._page(self.audit), methods=["GET"])
        bp.add_url_rule("/admin/preview", "preview", self._page(self.preview), methods=["GET"])
        bp.add_url_rule("/admin/preview/body", "preview_body", self._page(self.preview_body), methods=["GET"])
        bp.add_url_rule("/admin/subscribers.csv", "export", self._page(self.export), methods=["GET"])
        bp.add_url_rule("/admin/actions/<name>", "action", self._page(self.action), methods=["POST"])
        bp.add_url_rule("/admin/static/<path:path>", "static", self.static, methods=["GET"])
        return bp

    # -- helpers

    def _secure(self) -> bool:
        return request.is_secure or self.app.config.web_base_url.startswith("https:")

    def _render(self, template: str, status: int = 200, **context: Any) -> Response:
        lang = self.web.pages.language(from_form=False)
        response = self.web.pages.render(f"admin/{template}", lang, status, **context)
        response.headers["Content-Security-Policy"] = CONSOLE_CSP
        return response

    def _page(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        """``handler`` behind a session: no session, to the login page (and back here after it)."""

        def page(**kwargs: Any) -> Response:
            who = caller(self.accounts, request)
            if who is None or who.via != "session":
                target = request.path if request.method == "GET" else "/admin"
                return redirect(f"/admin/login?next={target}", 303)  # type: ignore[return-value]
            return handler(who, **kwargs)

        page.__name__ = handler.__name__
        return page

    # -- logging in and out

    def login_page(self, errors: tuple[str, ...] = (), status: int = 200) -> Response:
        binding = request.cookies.get(forms.COOKIE)
        fresh = not forms.looks_like_binding(binding)
        if fresh or binding is None:
            binding = forms.new_binding()
        target = _local(request.values.get("next", "/admin"))
        response = self._render("login.html", status, errors=errors, next=target,
                                form_token=self.web.guard.issue(LOGIN_FORM, binding))  # fmt: skip
        if fresh:
            response.set_cookie(forms.COOKIE, binding, httponly=True, samesite="Strict", secure=self._secure())
        return response

    def login(self) -> Response:
        binding = request.cookies.get(forms.COOKIE, "")
        if forms.cross_site(request.headers.get("Sec-Fetch-Site")) or not self.web.guard.valid(
            LOGIN_FORM, binding, request.form.get(forms.FIELD, "")
        ):
            return self.login_page(("form_expired",), 403)
        form = request.form
        try:
            done = self.accounts.login(form.get("name", ""), form.get("password", ""), form.get("code", ""),
                                       self.web.client())  # fmt: skip
        except Refused as exc:
            log.warning("console login refused for %r from %s: %s", form.get("name", "")[:80], self.web.client(), exc)
            return self.login_page(("login_refused",), 401)
        old = request.cookies.get(COOKIE)
        if old:  # a session fixed before the login is not carried over: it ends
            self.accounts.logout(old, self.web.client())
        response = redirect(_local(form.get("next", "/admin")), 303)
        set_session_cookie(response, done.cookie, self._secure(), self.app.config.admin.session_hours * 3600)
        return response  # type: ignore[return-value]

    def logout(self) -> Response:
        who = caller(self.accounts, request)
        if who is not None and who.via == "session" and who.vouches_for(request.form.get(CSRF_FIELD, "")):
            self.accounts.logout(request.cookies.get(COOKIE, ""), self.web.client())
        response = redirect("/admin/login", 303)
        clear_session_cookie(response, self._secure())
        return response  # type: ignore[return-value]

    # -- pages

    def dashboard(self, who: Caller) -> Response:
        now = self.app.clock()
        with self.app.db.read() as conn:
            context: dict[str, Any] = {
                "overview": figures.overview(self.app, conn),
                "subscribers": figures.subscribers_daily(conn, now, 30),
                "hourly": figures.deliveries_hourly(conn, now, 48),
                "editions": figures.editions(conn),
                "partners": figures.partners(self.app, conn),
                "machinery": figures.machinery(self.app, conn),
            }
        keys = sorted({k for row in context["hourly"] for k in row["counts"]})
        return self._render("dashboard.html", who=who, hourly_keys=keys, partner_names=[p.name for p in
                            self.app.config.partners], **context)  # fmt: skip

    def deliveries(self, who: Caller) -> Response:
        state = request.args.get("state", "failed")
        state = state if state in ("failed", "unknown") else "failed"
        with self.app.db.read() as conn:
            rows = figures.deliveries_to_decide(conn, state, None)
        return self._render("deliveries.html", who=who, state=state, rows=rows)

    def audit(self, who: Caller) -> Response:
        with self.app.db.read() as conn:
            lines = admin_store.audit_lines(conn, 200)
        return self._render("audit.html", who=who, lines=lines)

    def preview(self, who: Caller) -> Response:
        """A statement's mail (or a digest holding it) as a reader gets it; without a statement, the choice."""
        chosen, digest = request.args.get("statement", ""), request.args.get("digest") or None
        with self.app.db.read() as conn:
            recent = figures.recent_statements(conn)
        shown, status, error = None, 200, ""
        if chosen:
            try:
                shown = samples.parts(samples.preview(self.app, chosen, digest))
            except samples.NoSuchStatement as exc:
                status, error = 404, str(exc)
            except SyndicateError as exc:
                status, error = 400, str(exc)
        relays = [r.name for r in self.app.config.mail_relays] if self.app.config.email.transport == "smtp" else []
        response = self._render("preview.html", status, who=who, recent=recent, chosen=chosen, digest=digest or "",
                                shown=shown, error=error, relays=relays)  # fmt: skip
        response.headers["Content-Security-Policy"] = CONSOLE_CSP.replace(
            "default-src 'none';", "default-src 'none'; frame-src 'self';"
        )
        return response

    def preview_body(self, who: Caller) -> Response:
        """The previewed mail's HTML alone, for the preview's sandboxed frame."""
        try:
            shown = samples.parts(samples.preview(self.app, request.args.get("statement", ""),
                                                  request.args.get("digest") or None))  # fmt: skip
        except SyndicateError as exc:
            return Response(str(exc), 404, content_type="text/plain; charset=utf-8")
        response = Response(shown.html, 200, content_type="text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = PREVIEW_CSP
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def export(self, who: Caller) -> Response:
        """Every subscriber as CSV (admins only: it is the list's personal data), recorded in the audit log."""
        if not who.may_act:
            return self._render("notice.html", 403, who=who, key="viewer_only")
        rows = "".join(self.actions.export_subscribers(Who(who.name, self.web.client())))
        return Response(rows, 200, content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="subscribers.csv"',
                                 "Cache-Control": "no-store"})  # fmt: skip

    def action(self, who: Caller, name: str) -> Response:
        if name == "import-subscribers":
            request.max_content_length = MAX_IMPORT
        if name not in ACTIONS:
            return self._render("notice.html", 404, who=who, key="no_such_action")
        if not who.may_act:
            return self._render("notice.html", 403, who=who, key="viewer_only")
        if forms.cross_site(request.headers.get("Sec-Fetch-Site")) or not who.vouches_for(
            request.form.get(CSRF_FIELD, "")
        ):
            return self._render("notice.html", 403, who=who, key="form_expired")
        fields = {k: v for k, v in request.form.items() if k in FIELDS}
        if name == "import-subscribers":
            return self._import(who, fields)
        acting = Who(who.name, self.web.client())
        try:
            if request.form.get("confirmed") != "yes":
                return self._confirm(who, name, fields)
            result = self._do(name, acting, fields)
        except ActionRefused as exc:
            return self._render("notice.html", 409, who=who, key="action_refused", detail=str(exc))
        return self._render("done.html", who=who, action=name, result=result)

    def _confirm(self, who: Caller, name: str, fields: dict[str, str]) -> Response:
        """The page that says what ``name`` will do (how many, to whom) and asks to go on."""
        preview, counted = None, None
        if name == "resend-unknown":
            preview = self.actions.unknown_preview(fields.get("channel"))
        if name == "replay-partner":
            counted = self.actions.replay_preview(fields.get("name", ""), fields.get("since", ""))
        described = {"name": "", "email": "", "channel": "", "since": "", "statement": "", "to": "", **fields,
                     **({"count": counted["count"]} if counted else {})}  # fmt: skip
        if counted:
            fields = {**fields, "expected": str(counted["count"])}
        return self._render("confirm.html", who=who, action=name, fields=fields, described=described,
                            preview=preview, report=None)  # fmt: skip

    def _import(self, who: Caller, fields: dict[str, str]) -> Response:
        """The first post reads the file and shows its report; the confirmation (carrying the text) imports."""
        upload = request.files.get("file")
        name = (upload.filename or "") if upload else request.form.get("file_name", "")
        raw = upload.read() if upload else request.form.get("csv", "").encode()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return self._render("notice.html", 400, who=who, key="action_refused", detail="the file is not UTF-8")
        consent, skip = fields.get("consent_elsewhere") == "yes", fields.get("skip_invalid") == "yes"
        apply = request.form.get("confirmed") == "yes"
        result = self.actions.import_subscribers(Who(who.name, self.web.client()), text, name, consent, skip, apply)
        if apply:
            return self._render("done.html", who=who, action="import-subscribers", result=result)
        described = {"name": "", "email": "", "channel": "", "rows": result["rows"]}
        return self._render("confirm.html", who=who, action="import-subscribers", fields=fields,
                            described=described, preview=None, report=result, csv=text, file_name=name)  # fmt: skip

    def _do(self, name: str, who: Who, fields: dict[str, str]) -> dict[str, Any]:
        channel = fields.get("channel") or None
        if name == "retry-failed":
            return self.actions.retry_failed(who, channel)
        if name == "resend-unknown":
            expected = fields.get("expected", "")
            if not expected.isdigit():
                raise ActionRefused("the count shown is missing: look again")
            return self.actions.resend_unknown(who, int(expected), channel)
        if name == "replay-partner":
            expected = fields.get("expected", "")
            if not expected.isdigit():
                raise ActionRefused("the count shown is missing: look again")
            return self.actions.replay_partner(who, fields.get("name", ""), fields.get("since", ""), int(expected))
        if name == "send-test":
            return self.actions.send_test(who, fields.get("statement", ""), fields.get("to", ""),
                                          fields.get("relay") or None)  # fmt: skip
        if name == "enable-partner":
            return self.actions.enable_partner(who, fields.get("name", ""))
        if name == "unsuppress":
            return self.actions.unsuppress(who, fields.get("email", ""))
        if name == "remove-subscriber":
            return self.actions.remove_subscriber(who, fields.get("email", ""))
        return self.actions.run_tick(who)

    def static(self, path: str) -> Response:
        response = send_from_directory(STATIC, path, max_age=3600)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _local(target: str) -> str:
    """A place in the console to go back to; anything else (another site, ``//host``) is the dashboard."""
    if target.startswith("/admin") and not target.startswith("//") and "\\" not in target and target.isprintable():
        return target
    return "/admin"
