"""What every area of the web app is handed: the syndicate app and the web's own collaborators."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import request

from syndicate.app import App
from syndicate.web.forms import FormGuard
from syndicate.web.limits import SubscribeLimits
from syndicate.web.links import Links
from syndicate.web.pages import Pages

# Reports whether the scheduler of this process is alive: at least {"alive": bool}.
SchedulerProbe = Callable[[], Mapping[str, Any]]


@dataclass(frozen=True)
class Web:
    """The collaborators of the page handlers, built once by :func:`syndicate.web.create_app`."""

    app: App
    pages: Pages
    guard: FormGuard
    links: Links
    limits: SubscribeLimits
    scheduler: SchedulerProbe | None = None

    @staticmethod
    def client() -> str:
        """The client's address (the proxy's view of it when ``web.proxy_hops`` trusts one)."""
        return request.remote_addr or "unknown"
