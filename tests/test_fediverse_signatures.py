"""HTTP signatures, checked against Fedify (npm ``@fedify/fedify``), an ActivityPub implementation not ours.

Both ways and in both forms: what syndicate signs (draft-cavage-12 and RFC
9421) Fedify verifies, and what Fedify signs syndicate verifies. Then what
must be refused: a changed body, another key, an old or future date (a
replay), a signature that leaves the host or the digest out, an algorithm
that is not RSA-SHA256, no signature at all; and hostile headers never
break the parser (hypothesis).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from syndicate.activitypub import signatures
from syndicate.activitypub.keys import new_key_pair
from syndicate.activitypub.signatures import BadSignature, Message

MODULES = os.environ.get("SYNDICATE_NODE_MODULES", str(ROOT / ".ci" / "node" / "node_modules"))
SCRIPT = ROOT / "tests" / "fediverse" / "signatures.mjs"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ACTOR = "https://peer.example/users/alice"
KEY_ID = ACTOR + "#main-key"
INBOX = "https://news.example/ap/inbox"
BODY = b'{"type": "Follow", "actor": "https://peer.example/users/alice"}'
SPECS = {"cavage": "draft-cavage-http-signatures-12", "rfc9421": "rfc9421"}


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return new_key_pair()


def fedify(job: dict[str, Any]) -> dict[str, Any]:
    """One job for Fedify, through tests/fediverse/signatures.mjs."""
    if not shutil.which("node") or not os.path.isdir(os.path.join(MODULES, "@fedify", "fedify")):
        if os.environ.get("SYNDICATE_REQUIRE_VALIDATORS") == "1":
            pytest.fail(f"SYNDICATE_REQUIRE_VALIDATORS=1, but node or @fedify/fedify in {MODULES} is missing")
        pytest.skip("needs node and @fedify/fedify (npm install --prefix .ci/node @fedify/fedify)")
    done = subprocess.run(["node", str(SCRIPT)], input=json.dumps(job), capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SYNDICATE_NODE_MODULES": MODULES})  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def request(body: bytes = BODY, **headers: str) -> Message:
    return Message("POST", INBOX, CaseInsensitiveDict({"Content-Type": "application/activity+json", **headers}), body)


def signed(spec: str, private: str, now: datetime = NOW, body: bytes = BODY) -> Message:
    sign = signatures.sign_cavage if spec == "cavage" else signatures.sign_rfc9421
    return sign(request(body), KEY_ID, private, now)


@pytest.mark.parametrize("spec", ["cavage", "rfc9421"])
def test_fedify_verifies_what_syndicate_signs(keys: tuple[str, str], spec: str) -> None:
    private, public = keys
    message = signed(spec, private, datetime.now(UTC))
    job = {"do": "verify", "method": "POST", "url": INBOX, "headers": dict(message.headers), "body": BODY.decode(),
           "publicKeyPem": public, "keyId": KEY_ID, "actorId": ACTOR}  # fmt: skip
    assert fedify(job) == {"verified": True, "keyId": KEY_ID}
    tampered = {**job, "body": BODY.decode().replace("Follow", "Undo")}
    assert fedify(tampered)["verified"] is False, "Fedify refuses it once the body changed: the check can fail"


@pytest.mark.parametrize("spec", ["cavage", "rfc9421"])
def test_syndicate_verifies_what_fedify_signs(keys: tuple[str, str], spec: str) -> None:
    private, public = keys
    now = datetime.now(UTC)
    answer = fedify({"do": "sign", "spec": SPECS[spec], "method": "POST", "url": INBOX, "body": BODY.decode(),
                     "headers": {"Content-Type": "application/activity+json"}, "privateKeyPem": private,
                     "keyId": KEY_ID})  # fmt: skip
    message = Message("POST", INBOX, CaseInsensitiveDict(answer["headers"]), BODY)
    assert signatures.verify(message, lambda key_id: public if key_id == KEY_ID else None, now) == (
        signatures.Signed(KEY_ID, spec)
    )
    message.body = BODY.replace(b"Follow", b"Undo")
    with pytest.raises(BadSignature):
        signatures.verify(message, lambda key_id: public, now)


@pytest.mark.parametrize("spec", ["cavage", "rfc9421"])
def test_forged_and_replayed_requests_are_refused_with_the_reason(keys: tuple[str, str], spec: str) -> None:
    private, public = keys
    other_private, _ = new_key_pair()
    assert signatures.verify(signed(spec, private), lambda _: public, NOW).key_id == KEY_ID
    cases = {
        "a changed body": (signed(spec, private), lambda m: setattr(m, "body", BODY + b" "), public, NOW),
        "another key": (signed(spec, other_private), None, public, NOW),
        "replayed two hours on": (signed(spec, private), None, public, NOW + timedelta(hours=2)),
        "from the future": (signed(spec, private, NOW + timedelta(hours=2)), None, public, NOW),
        "no key for it": (signed(spec, private), None, "", NOW),
    }
    accepted = []
    for name, (message, change, key, now) in cases.items():
        if change:
            change(message)
        try:
            signatures.verify(message, lambda _, key=key: key or None, now)
        except BadSignature:
            continue
        accepted.append(name)
    assert accepted == []


def test_a_cavage_signature_must_cover_the_request_line_host_date_and_digest(keys: tuple[str, str]) -> None:
    private, public = keys
    for headers, reason in (("date", "does not cover (request-target), host, digest"),
                            ("(request-target) host date", "does not cover digest"),
                            ("(request-target) date digest", "does not cover host")):  # fmt: skip
        message = signed("cavage", private)
        message.headers["Signature"] = message.headers["Signature"].replace(
            'headers="(request-target) host date digest content-type"', f'headers="{headers}"'
        )
        with pytest.raises(BadSignature, match=reason.replace("(", r"\(").replace(")", r"\)")):
            signatures.verify(message, lambda _: public, NOW)
    message = signed("cavage", private)
    message.headers["Signature"] = message.headers["Signature"].replace("rsa-sha256", "hmac-sha256")
    with pytest.raises(BadSignature, match="not rsa-sha256"):
        signatures.verify(message, lambda _: public, NOW)
    with pytest.raises(BadSignature, match="no Signature header"):
        signatures.verify(request(), lambda _: public, NOW)
    message = signed("cavage", private)
    message.headers["Digest"] = "SHA-256=" + "A" * 44
    with pytest.raises(BadSignature, match="Digest header does not match"):
        signatures.verify(message, lambda _: public, NOW)


@settings(max_examples=200, deadline=None)
@given(header=st.text(max_size=400), date=st.text(max_size=60), digest=st.text(max_size=80))
def test_hostile_signature_headers_are_refused_never_crash(header: str, date: str, digest: str) -> None:
    message = request(Signature=header, Date=date, Digest=digest)
    with pytest.raises(BadSignature):
        signatures.verify(message, lambda _: None, NOW)


@settings(max_examples=100, deadline=None)
@given(signature_input=st.text(max_size=300), signature=st.text(max_size=300))
def test_hostile_rfc9421_headers_are_refused_never_crash(signature_input: str, signature: str) -> None:
    message = request(**{"Signature-Input": signature_input or "x", "Signature": signature})
    with pytest.raises(BadSignature):
        signatures.verify(message, lambda _: None, NOW)
