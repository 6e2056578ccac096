"""The operator's console (``/admin``) and its JSON API (``/api/v1``), over :mod:`syndicate.console`.

::

    guard.py     who is asking: the session cookie or a bearer token; CSRF
    console.py   /admin/login, /admin (the dashboard), /admin/deliveries, /admin/audit, /admin/actions/<name>
    api.py       /api/v1/... (the console's charts are drawn from it), /api/v1/openapi.json
    openapi.py   the OpenAPI 3.1 document
    static/      console.js, and uPlot (vendored from the npm registry, MIT)
"""

from __future__ import annotations

from flask import Blueprint

from syndicate.console.accounts import Accounts
from syndicate.web.admin.api import Api
from syndicate.web.admin.console import Console
from syndicate.web.context import Web


def blueprints(web: Web) -> list[Blueprint]:
    """The console's and the API's routes, sharing one view of the accounts."""
    accounts = Accounts(web.app.db, web.app.config.admin, web.app.clock)
    return [Console(web, accounts).blueprint(), Api(web, accounts).blueprint()]
