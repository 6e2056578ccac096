"""Signatures, webhook ids, what each reply means, and the [[partners]] settings."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from servers.http import new_secret
from standardwebhooks.webhooks import Webhook

from syndicate.config import from_mapping
from syndicate.deliver.webhooks import SecretError
from syndicate.deliver.webhooks.http import Reply
from syndicate.deliver.webhooks.signing import Signer, decode, signer_for, webhook_id
from syndicate.deliver.webhooks.verdict import judge, retry_after
from syndicate.errors import ConfigError
from syndicate.outbox import Claim, Outcome

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SITE = {"title": "Example Org", "url": "https://example.org"}


def config(*partners: dict[str, Any]) -> Any:
    return from_mapping({"site": SITE, "partners": list(partners)}, Path.cwd())


def partner(**settings: Any) -> dict[str, Any]:
    return {"name": "p", "url": "https://partner.example/hook", "secret_env": "P_SECRET", **settings}


# -- signatures: checked with the standardwebhooks library, an independent implementation --


def test_signature_is_what_standard_webhooks_expects() -> None:
    secret = new_secret()
    body = '{"type": "statement.published", "data": {"title": "Ça va? Привет"}}'.encode()
    signature = Signer((decode("p", "P_SECRET", secret),)).signature("msg_1", 1795694400, body)
    expected = Webhook(secret).sign("msg_1", datetime.fromtimestamp(1795694400, tz=UTC), body.decode())
    assert signature == expected


def test_rotation_sends_both_signatures_each_verifiable(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = new_secret(), new_secret()
    monkeypatch.setenv("P_SECRET", new)
    monkeypatch.setenv("P_OLD", old)
    settings = config(partner(previous_secret_env="P_OLD"))
    signer = signer_for(settings, settings.partners[0])
    stamp = int(datetime.now(UTC).timestamp())
    headers = signer.headers("msg_7_abc", stamp, b"<entry/>")
    assert headers["webhook-id"] == "msg_7_abc"
    assert headers["webhook-timestamp"] == str(stamp)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(b"<entry/>", headers, json_parse=False)


@pytest.mark.parametrize(
    ("secret", "complaint"),
    [
        ("czNjcjN0czNjcjN0", "does not start with whsec_"),
        ("whsec_s3cr3t!", "is not whsec_ followed by base64"),
        ("whsec_", "is empty"),
    ],
)
def test_bad_secret_is_named_by_its_variable_never_shown(secret: str, complaint: str) -> None:
    with pytest.raises(SecretError) as raised:
        decode("p", "P_SECRET", secret)
    message = str(raised.value)
    assert message.startswith("partner p: the secret in P_SECRET ")
    assert complaint in message
    assert "s3cr3t" not in message
    assert "czNjcjN0" not in message


def test_missing_secret_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("P_SECRET", raising=False)
    settings = config(partner())
    with pytest.raises(SecretError, match=r"partner p: config: partners\[0\]\.secret_env: .*P_SECRET is not set"):
        signer_for(settings, settings.partners[0])


def test_webhook_id_is_fixed_per_delivery() -> None:
    claim = Claim(42, "webhook", "event", 3, "p", 1, NOW, "token-1")
    retried = Claim(42, "webhook", "event", 3, "p", 2, NOW, "token-2")  # another attempt, another node
    afresh = Claim(42, "webhook", "event", 3, "p", 1, NOW + timedelta(days=1), "token-3")  # a new database
    assert webhook_id(claim) == webhook_id(retried)
    assert webhook_id(claim).startswith("msg_42_")
    assert webhook_id(afresh) != webhook_id(claim)


# -- what a reply means --

P = config(partner()).partners[0]


def reply(status: int, reason: str = "", body: bytes = b"", **headers: str) -> Reply:
    return Reply(status, reason, {k.replace("_", "-").lower(): v for k, v in headers.items()}, body, 0.1)


@pytest.mark.parametrize(
    ("answer", "outcome", "retry_at", "disable"),
    [
        (reply(200, "OK"), Outcome.SENT, None, False),
        (reply(202, "Accepted"), Outcome.SENT, None, False),
        (reply(204), Outcome.SENT, None, False),
        (reply(410, "Gone"), Outcome.FAILED, None, True),
        (reply(429, "Too Many Requests", Retry_After="120"), Outcome.RETRY, NOW + timedelta(seconds=120), False),
        (
            reply(503, "Service Unavailable", Retry_After="Thu, 26 Nov 2026 13:30:00 GMT"),
            Outcome.RETRY,
            datetime(2026, 11, 26, 13, 30, tzinfo=UTC),
            False,
        ),
        (reply(503, "Service Unavailable"), Outcome.RETRY, None, False),
        (reply(301, "Moved Permanently", Location="https://elsewhere.example/"), Outcome.RETRY, None, False),
        (reply(408, "Request Timeout"), Outcome.RETRY, None, False),
        (reply(500, "Internal Server Error", b"boom"), Outcome.RETRY, None, False),
        (reply(400, "Bad Request"), Outcome.FAILED, None, False),
        (reply(401, "Unauthorized", b"invalid signature"), Outcome.FAILED, None, False),
        (reply(404, "Not Found"), Outcome.FAILED, None, False),
    ],
)
def test_judge(answer: Reply, outcome: Outcome, retry_at: datetime | None, disable: bool) -> None:
    verdict = judge(P, answer, NOW)
    assert (verdict.outcome, verdict.retry_at, verdict.disable) == (outcome, retry_at, disable)
    if outcome != Outcome.SENT:
        assert verdict.error is not None
        assert verdict.error.startswith(f"partner p: https://partner.example/hook answered {answer.status}")


def test_error_carries_the_reply() -> None:
    assert judge(P, reply(500, "Internal Server Error", b"database\n down"), NOW).error == (
        "partner p: https://partner.example/hook answered 500 Internal Server Error: database down"
    )
    moved = judge(P, reply(301, "Moved Permanently", Location="https://elsewhere.example/"), NOW).error
    assert moved is not None
    assert "redirects are not followed (to https://elsewhere.example/)" in moved


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", NOW),
        (" 30 ", NOW + timedelta(seconds=30)),
        ("Thu, 26 Nov 2026 12:05:00 GMT", NOW + timedelta(minutes=5)),
        ("Thu, 26 Nov 2026 11:00:00 GMT", NOW),  # a date gone by: now
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after(value: str | None, expected: datetime | None) -> None:
    assert retry_after(value, NOW) == expected


# -- the settings --


def test_partner_defaults() -> None:
    (found,) = config(partner()).partners
    assert (found.license, found.excerpt_words, found.format, found.timeout_seconds) == ("excerpt", 60, "atom", 10.0)
    assert (found.languages, found.categories, found.previous_secret_env) == ((), (), "")


@pytest.mark.parametrize(
    ("settings", "key", "words"),
    [
        ({"url": "http://partner.example/hook"}, "partners[0].url", "https URL (http only on loopback)"),
        ({"url": "http://127.partner.example/hook"}, "partners[0].url", "https URL (http only on loopback)"),
        ({"url": "ftp://partner.example/"}, "partners[0].url", "absolute http or https URL"),
        ({"secret_env": "whsec_c2VjcmV0+/="}, "partners[0].secret_env", "environment variable"),
        ({"secret_env": ""}, "partners[0].secret_env", "environment variable"),
        ({"license": "some"}, "partners[0].license", "'excerpt', 'full'"),
        ({"format": "rss"}, "partners[0].format", "'atom', 'json'"),
        ({"excerpt_words": 0}, "partners[0].excerpt_words", "between 1 and 10000"),
        ({"name": "a partner"}, "partners[0].name", "letters, digits"),
        ({"timeout": 3}, "partners[0].timeout", "did you mean partners[0].timeout_seconds"),
    ],
)
def test_bad_partner_settings_name_the_key(settings: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config(partner(**settings))
    assert raised.value.key == key
    assert words in str(raised.value)


def test_missing_secret_env_is_required() -> None:
    with pytest.raises(ConfigError, match=r"partners\[0\]\.secret_env: is required"):
        config({"name": "p", "url": "https://partner.example/hook"})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://127.8.9.10/hook",
        "http://[::1]:80/",
        "http://localhost/hook",
        "https://p.example/",
    ],
)
def test_https_or_loopback(url: str) -> None:
    assert config(partner(url=url)).partners[0].url == url


def test_partner_names_are_unique() -> None:
    with pytest.raises(ConfigError) as raised:
        config(partner(), partner(url="https://other.example/"))
    assert raised.value.key == "partners[1].name"
    assert "'p' is already the name of another partner" in str(raised.value)


def test_secret_b64_roundtrip() -> None:
    key = b"\x00\x01 key bytes \xff"
    assert decode("p", "P_SECRET", "whsec_" + base64.b64encode(key).decode()) == key
