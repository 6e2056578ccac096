"""Tests of the loopback HTTP servers in tests/servers/http.py, driven with plain requests."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests
from servers.http import (
    HubServer,
    LoopbackHTTPServer,
    PartnerFarm,
    PartnerServer,
    Reply,
    http_date,
    new_secret,
    refused_url,
)
from standardwebhooks.webhooks import Webhook

TOPIC = "https://news.example.org/feed.xml"
QUICK = 0.3  # client read timeout for requests that are meant to time out
OK_TIMEOUT = 3.0  # client timeout for requests that are meant to succeed

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every server thread started by a test is gone when the test ends."""
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in threading.enumerate() if t not in before]
    assert leaked == []


@pytest.fixture
def secret() -> str:
    """A fresh `whsec_` secret."""
    return new_secret()


@pytest.fixture
def partner(secret: str) -> Iterator[PartnerServer]:
    """A running partner verifying with `secret`."""
    with PartnerServer(secret) as server:
        yield server
    assert server.errors == []


@pytest.fixture
def hub() -> Iterator[HubServer]:
    """A running hub."""
    with HubServer() as server:
        yield server
    assert server.errors == []


def signed(
    secrets: str | Sequence[str],
    payload: Any = None,
    *,
    msg_id: str | None = None,
    age: float = 0,
) -> tuple[bytes, dict[str, str]]:
    """Body and Standard Webhooks headers, one `v1,` signature per secret."""
    body = json.dumps(payload if payload is not None else {"type": "issue.published", "data": {}})
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time() - age)
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    keys = [secrets] if isinstance(secrets, str) else secrets
    signature = " ".join(Webhook(key).sign(msg_id, when, body) for key in keys)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }
    return body.encode(), headers


def deliver(url: str, secrets: str | Sequence[str], **kwargs: Any) -> requests.Response:
    """POST one signed event to `url`."""
    body, headers = signed(secrets, msg_id=kwargs.pop("msg_id", None))
    kwargs.setdefault("timeout", OK_TIMEOUT)
    return requests.post(url, data=body, headers=headers, **kwargs)


def publish(url: str, **form: str) -> requests.Response:
    """POST a form-encoded publish ping."""
    data = form or {"hub.mode": "publish", "hub.url": TOPIC}
    return requests.post(url, data=data, timeout=OK_TIMEOUT)


# --------------------------------------------------------------------------- hub


def test_hub_records_publish_ping(hub: HubServer) -> None:
    response = publish(hub.url)
    assert response.status_code == 204
    assert hub.pings == [TOPIC]
    (request,) = hub.requests
    assert request.method == "POST"
    assert request.path == "/hub"
    assert request.form() == {"hub.mode": ["publish"], "hub.url": [TOPIC]}
    assert request.status == 204
    assert hub.published[0].at == request.at <= time.monotonic()


def test_hub_accepts_hub_topic_and_several_urls(hub: HubServer) -> None:
    assert publish(hub.url, **{"hub.mode": "publish", "hub.topic": TOPIC}).status_code == 204
    data = [("hub.mode", "publish"), ("hub.url", TOPIC), ("hub.url", TOPIC + "?page=2")]
    assert requests.post(hub.url, data=data, timeout=OK_TIMEOUT).status_code == 204
    assert hub.pings == [TOPIC, TOPIC, TOPIC + "?page=2"]


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"hub.mode": "subscribe", "hub.url": TOPIC}, 400),
        ({"hub.mode": "publish"}, 400),
    ],
)
def test_hub_rejects_malformed_ping(hub: HubServer, form: dict[str, str], status: int) -> None:
    assert publish(hub.url, **form).status_code == status
    assert hub.pings == []


def test_hub_rejects_json_body_and_wrong_path(hub: HubServer) -> None:
    as_json = requests.post(hub.url, json={"hub.mode": "publish", "hub.url": TOPIC}, timeout=OK_TIMEOUT)
    assert as_json.status_code == 415
    assert publish(hub.url_for("/elsewhere")).status_code == 404
    assert hub.pings == []


@pytest.mark.parametrize("status", [500, 503])
def test_hub_fails_first_n_with_status(hub: HubServer, status: int) -> None:
    hub.fail_first(2, status=status)
    assert [publish(hub.url).status_code for _ in range(3)] == [status, status, 204]
    assert [r.status for r in hub.requests] == [status, status, 204]
    assert hub.pings == [TOPIC]


def test_hub_fails_first_n_by_dropping(hub: HubServer) -> None:
    hub.fail_first(1, drop=True)
    with pytest.raises(requests.ConnectionError):
        publish(hub.url)
    assert publish(hub.url).status_code == 204
    assert [r.status for r in hub.requests] == [None, 204]
    assert hub.pings == [TOPIC]


# --------------------------------------------------------------------------- partner: signatures


def test_partner_accepts_valid_signature(partner: PartnerServer, secret: str) -> None:
    payload = {"type": "issue.published", "data": {"issue": 7}}
    body, headers = signed(secret, payload, msg_id="msg_1")
    response = requests.post(partner.url, data=body, headers=headers, timeout=OK_TIMEOUT)
    assert response.status_code == 200
    (delivery,) = partner.accepted
    assert (delivery.webhook_id, delivery.payload, delivery.secret_index) == ("msg_1", payload, 0)
    assert delivery.request.body == body
    assert delivery.request.header("Webhook-Id") == "msg_1"
    assert partner.rejected == []


def test_partner_rejects_bad_signature(partner: PartnerServer) -> None:
    response = deliver(partner.url, new_secret())
    assert response.status_code == 401
    assert partner.accepted == []
    (rejection,) = partner.rejected
    assert rejection.status == 401
    assert "No matching signature" in rejection.reason


def test_partner_rejects_tampered_body(partner: PartnerServer, secret: str) -> None:
    body, headers = signed(secret, {"amount": 1})
    response = requests.post(partner.url, data=body.replace(b"1", b"9"), headers=headers, timeout=OK_TIMEOUT)
    assert response.status_code == 401
    assert len(partner.rejected) == 1


def test_partner_rejects_missing_headers_and_stale_timestamp(partner: PartnerServer, secret: str) -> None:
    unsigned = requests.post(partner.url, json={"type": "x"}, timeout=OK_TIMEOUT)
    body, headers = signed(secret, age=600)
    stale = requests.post(partner.url, data=body, headers=headers, timeout=OK_TIMEOUT)
    assert (unsigned.status_code, stale.status_code) == (401, 401)
    reasons = [r.reason for r in partner.rejected]
    assert "Missing required headers" in reasons[0]
    assert "too old" in reasons[1]


def test_partner_rejects_signed_non_json(partner: PartnerServer, secret: str) -> None:
    when = datetime.now(UTC)
    signature = Webhook(secret).sign("msg_x", when, "not json")
    headers = {"webhook-id": "msg_x", "webhook-timestamp": str(int(when.timestamp())), "webhook-signature": signature}
    response = requests.post(partner.url, data=b"not json", headers=headers, timeout=OK_TIMEOUT)
    assert response.status_code == 400
    assert partner.rejected[0].reason == "body is not JSON"


@pytest.mark.parametrize(
    ("receiver_keys", "sender_keys", "index"),
    [
        (("old", "new"), ("old",), 0),
        (("old", "new"), ("new",), 1),
        (("new",), ("old", "new"), 0),
        (("old",), ("old", "new"), 0),
    ],
)
def test_partner_accepts_rotated_secrets(
    receiver_keys: tuple[str, ...], sender_keys: tuple[str, ...], index: int
) -> None:
    keys = {"old": new_secret(), "new": new_secret()}
    with PartnerServer([keys[k] for k in receiver_keys]) as partner:
        assert deliver(partner.url, [keys[k] for k in sender_keys]).status_code == 200
        assert [d.secret_index for d in partner.accepted] == [index]


def test_partner_set_secrets_at_runtime(partner: PartnerServer) -> None:
    rotated = new_secret()
    partner.set_secrets(rotated)
    assert deliver(partner.url, rotated).status_code == 200


def test_partner_accepts_chunked_body(partner: PartnerServer, secret: str) -> None:
    body, headers = signed(secret)
    response = requests.post(partner.url, data=iter([body[:5], body[5:]]), headers=headers, timeout=OK_TIMEOUT)
    assert response.status_code == 200
    assert partner.requests[0].header("transfer-encoding") == "chunked"
    assert partner.accepted[0].request.body == body


# --------------------------------------------------------------------------- partner: de-duplication


def test_partner_deduplicates_webhook_id(partner: PartnerServer, secret: str) -> None:
    body, headers = signed(secret, msg_id="msg_dup")
    statuses = [requests.post(partner.url, data=body, headers=headers, timeout=OK_TIMEOUT).status_code for _ in "ab"]
    assert deliver(partner.url, secret, msg_id="msg_other").status_code == 200
    assert statuses == [200, 200]
    assert [d.webhook_id for d in partner.accepted] == ["msg_dup", "msg_other"]
    assert [d.webhook_id for d in partner.duplicates] == ["msg_dup"]


def test_faulted_delivery_is_not_marked_processed(partner: PartnerServer, secret: str) -> None:
    partner.queue(Reply.status(503))
    assert deliver(partner.url, secret, msg_id="msg_retry").status_code == 503
    assert deliver(partner.url, secret, msg_id="msg_retry").status_code == 200
    assert [d.webhook_id for d in partner.accepted] == ["msg_retry"]
    assert partner.duplicates == []


# --------------------------------------------------------------------------- partner: faults


@pytest.mark.parametrize(
    ("reply", "status", "retry_after"),
    [
        (Reply.retry_after(429, 2), 429, "2"),
        (Reply.status(410), 410, None),
        (Reply.status(500, {"X-Trace": "t1"}, b"boom"), 500, None),
    ],
)
def test_partner_scripted_status(
    partner: PartnerServer, secret: str, reply: Reply, status: int, retry_after: str | None
) -> None:
    partner.queue(reply)
    response = deliver(partner.url, secret)
    assert response.status_code == status
    assert response.headers.get("Retry-After") == retry_after
    assert partner.accepted == []
    assert deliver(partner.url, secret).status_code == 200


def test_partner_retry_after_http_date(partner: PartnerServer, secret: str) -> None:
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)
    partner.queue(Reply.retry_after(503, date=when), Reply.status(503, {"Retry-After": http_date(5)}))
    first, second = deliver(partner.url, secret), deliver(partner.url, secret)
    assert (first.status_code, second.status_code) == (503, 503)
    assert parsedate_to_datetime(first.headers["Retry-After"]) == when
    assert parsedate_to_datetime(second.headers["Retry-After"]) > datetime.now(UTC)


def test_partner_default_switches_at_runtime(partner: PartnerServer, secret: str) -> None:
    partner.set_default(Reply.status(500))
    partner.queue(Reply.status(429))
    codes = [deliver(partner.url, secret).status_code for _ in range(3)]
    partner.set_default(Reply.ok())
    codes.append(deliver(partner.url, secret).status_code)
    assert codes == [429, 500, 500, 200]
    assert len(partner.accepted) == 1


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_redirect_not_followed(partner: PartnerServer, secret: str, code: int) -> None:
    partner.queue(Reply.redirect(code, "/moved"))
    response = deliver(partner.url, secret, allow_redirects=False)
    assert response.status_code == code
    assert response.headers["Location"] == partner.url_for("/moved")
    assert partner.requests_to("/moved") == []
    assert partner.accepted == []


def test_redirect_target_hit_is_recorded(partner: PartnerServer, secret: str) -> None:
    partner.queue(Reply.redirect(301, "/moved"))
    response = deliver(partner.url, secret)  # requests follows by default (and turns POST into GET)
    assert response.status_code == 404
    (hit,) = partner.requests_to("/moved")
    assert hit.method == "GET"
    assert partner.accepted == []


def test_hang_times_out_client_then_release_processes(partner: PartnerServer, secret: str) -> None:
    partner.queue(Reply.hang())
    with pytest.raises(requests.exceptions.ReadTimeout):
        deliver(partner.url, secret, timeout=(OK_TIMEOUT, QUICK))
    assert partner.hanging == 1
    assert partner.requests[0].status is None
    partner.release()
    partner.wait_until(lambda: len(partner.accepted) == 1)
    assert partner.hanging == 0


def test_hang_for_a_while_then_answer(partner: PartnerServer, secret: str) -> None:
    partner.queue(Reply.hang(seconds=0.2))
    started = time.monotonic()
    assert deliver(partner.url, secret).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_stop_wakes_hanging_handler(secret: str) -> None:
    partner = PartnerServer(secret).start()
    partner.set_default(Reply.hang())
    errors: list[BaseException] = []

    def client() -> None:
        try:
            # a read timeout past the test's own: only the server's hang-up can end this request
            deliver(partner.url, secret, timeout=(OK_TIMEOUT, 60))
        except requests.RequestException as error:
            errors.append(error)

    thread = threading.Thread(target=client)
    thread.start()
    partner.wait_until(lambda: partner.hanging == 1)
    partner.stop()
    assert partner.hanging == 0
    thread.join()
    assert [type(e) for e in errors] == [requests.ConnectionError]


def test_close_without_answer(partner: PartnerServer, secret: str) -> None:
    partner.queue(Reply.close())
    with pytest.raises(requests.ConnectionError):
        deliver(partner.url, secret)
    assert len(partner.requests) == 1
    assert partner.requests[0].status is None
    assert partner.accepted == []


def test_refused_url() -> None:
    with pytest.raises(requests.ConnectionError):
        requests.post(refused_url("/webhook"), data=b"{}", timeout=OK_TIMEOUT)


def test_trickled_body_defeats_read_timeout(partner: PartnerServer, secret: str) -> None:
    partner.queue(Reply.trickle(b"0123456789", interval=0.05))
    started = time.monotonic()
    response = deliver(partner.url, secret, timeout=(OK_TIMEOUT, 0.2))
    elapsed = time.monotonic() - started
    assert (response.status_code, response.content) == (200, b"0123456789")
    assert elapsed >= 0.45  # each byte came within the read timeout; the whole took longer
    assert len(partner.accepted) == 1


def test_trickled_body_streamed_with_deadline(partner: PartnerServer, secret: str) -> None:
    partner.queue(Reply.trickle(b"x" * 100, interval=0.05))
    deadline = time.monotonic() + 0.3
    with deliver(partner.url, secret, stream=True) as response:
        received = b""
        for chunk in response.iter_content(1):
            received += chunk
            if time.monotonic() > deadline:
                break
    assert 0 < len(received) < 100


def test_slow_read_of_request_body(partner: PartnerServer, secret: str) -> None:
    partner.queue(Reply.slow_read(interval=0.01, chunk=2))
    started = time.monotonic()
    body, headers = signed(secret)
    response = requests.post(partner.url, data=body, headers=headers, timeout=OK_TIMEOUT)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.01 * len(body) / 2
    assert partner.accepted[0].request.body == body


def test_partner_wrong_path_and_method(partner: PartnerServer, secret: str) -> None:
    assert deliver(partner.url_for("/other"), secret).status_code == 404
    assert requests.get(partner.url, timeout=OK_TIMEOUT).status_code == 405
    assert [r.status for r in partner.rejected] == [404, 405]


def test_keep_alive_session_and_plain_server() -> None:
    with LoopbackHTTPServer() as server, requests.Session() as session:
        server.queue(Reply.status(202))
        codes = [session.get(server.url, timeout=OK_TIMEOUT).status_code for _ in range(3)]
    assert codes == [202, 200, 200]


# --------------------------------------------------------------------------- farm


def test_farm_serves_healthy_and_hangs_the_rest() -> None:
    with PartnerFarm(6, hanging=2) as farm:
        assert len(set(farm.urls)) == 6
        assert len(farm.hanging_urls) == 2

        def post(index: int) -> int | str:
            try:
                return deliver(farm.urls[index], farm.secrets[index], timeout=(OK_TIMEOUT, 0.5)).status_code
            except requests.exceptions.ReadTimeout:
                return "timeout"

        with ThreadPoolExecutor(max_workers=6) as pool:
            outcomes = dict(zip(farm.urls, pool.map(post, range(6)), strict=True))
        times = farm.received_times()
        hanging = [farm.partners[i] for i in sorted(farm.hanging_indices)]
        for partner in hanging:  # still hanging after its client gave up: only stop() ends it
            partner.wait_until(lambda p=partner: p.hanging == 1)
    assert [partner.hanging for partner in hanging] == [0, 0]
    assert {url for url, outcome in outcomes.items() if outcome == "timeout"} == set(farm.hanging_urls)
    assert {url for url, outcome in outcomes.items() if outcome == 200} == set(times) == set(farm.healthy_urls)


def test_farm_rejects_bad_hanging_count() -> None:
    with pytest.raises(ValueError, match="hanging"):
        PartnerFarm(3, hanging=4)
