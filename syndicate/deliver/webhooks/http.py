"""One POST to a partner and its reply; every requests error is translated here into :class:`Unreachable`.

Redirects are never followed. The status line decides the outcome, so a body
that trickles in byte by byte cannot hold a push: a success is not read at
all, and a failure's body is read only for a short sample, within the
partner's timeout.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import requests
import urllib3

from syndicate.config import PartnerConfig
from syndicate.deliver.webhooks import Unreachable

SAMPLE_BYTES = 300


@dataclass(frozen=True)
class Reply:
    """What a partner answered."""

    status: int
    reason: str
    headers: Mapping[str, str]
    sample: bytes
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether the partner took the push (2xx)."""
        return 200 <= self.status < 300

    def describe(self) -> str:
        """The status line, and the start of the body if there was one, on one line."""
        text = " ".join(self.sample.decode("utf-8", "replace").split())
        return f"{self.status} {self.reason}".strip() + (f": {text}" if text else "")


def session(user_agent: str) -> requests.Session:
    """An HTTP session for one partner's lane: one connection, no retries of its own."""
    made = requests.Session()
    made.headers["User-Agent"] = user_agent
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
    made.mount("http://", adapter)
    made.mount("https://", adapter)
    return made


def post(http: requests.Session, partner: PartnerConfig, body: bytes, headers: Mapping[str, str]) -> Reply:
    """POST ``body`` to the partner's URL; raise :class:`Unreachable` if no reply came."""
    timeout = partner.timeout_seconds
    started = time.monotonic()
    try:
        response = http.post(
            partner.url,
            data=body,
            headers=dict(headers),
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        )
        with response:
            sample = b"" if 200 <= response.status_code < 300 else _sample(response, started + timeout)
            seconds = time.monotonic() - started
            found = {name.lower(): value for name, value in response.headers.items()}
            return Reply(response.status_code, response.reason or "", found, sample, seconds)
    except requests.ConnectTimeout as exc:
        raise Unreachable(partner.name, f"could not connect to {partner.url} within {timeout:g} s") from exc
    except requests.Timeout as exc:
        raise Unreachable(partner.name, f"no reply from {partner.url} within {timeout:g} s") from exc
    except requests.RequestException as exc:
        raise Unreachable(partner.name, f"could not reach {partner.url}: {_reason(exc)}") from exc


def _sample(response: requests.Response, deadline: float) -> bytes:
    """The first bytes of the body, as many as come before ``deadline``."""
    read = b""
    try:
        while len(read) < SAMPLE_BYTES and time.monotonic() < deadline:
            chunk = response.raw.read1(SAMPLE_BYTES - len(read))
            if not chunk:
                break
            read += chunk
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError):
        pass  # the status line is the answer; the body only illustrates it
    return read


def _reason(exc: BaseException) -> str:
    """The innermost operating-system reason (e.g. "Connection refused"), else the error itself."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return str(exc)
