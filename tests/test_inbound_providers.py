"""Providers' event webhooks: Amazon SES (through SNS), Postmark and SendGrid, each signed as its provider signs.

The payloads are written from each provider's documented examples; the
signatures are made here with the `cryptography` package as the provider
makes them (SNS: RSA PKCS#1 v1.5 over its canonical string, with the
certificate served by a real HTTP server on loopback standing where
sns.<region>.amazonaws.com stands; SendGrid: ECDSA P-256 over timestamp and
body; Postmark: the HTTP Basic credentials of its webhook URL). Mailgun's are
in test_inbound.py.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from servers.http import LoopbackHTTPServer, RecordedRequest, Response
from test_inbound import CONFIG, READERS, mailed, status_of, suppressed
from web_support import make_web

from syndicate.errors import ConfigError
from syndicate.inbound import providers
from syndicate.inbound.classify import Kind
from syndicate.inbound.providers.mailgun import Mailgun
from syndicate.inbound.providers.postmark import Postmark
from syndicate.inbound.providers.sendgrid import SIGNATURE, TIMESTAMP, SendGrid
from syndicate.inbound.providers.ses import SES
from syndicate.store import inbound as inbound_store

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-bounces"
POSTMARK_AUTH = "syndicate-hooks:9c1e5b3a7d0f42e8b6a4c2d0"


# -- Amazon SES through SNS


class SNSHost(LoopbackHTTPServer):
    """Plays sns.<region>.amazonaws.com: serves the signing certificate and takes subscription confirmations."""

    def __init__(self, certificate: bytes) -> None:
        super().__init__("/")
        self.certificate = certificate

    def process(self, request: RecordedRequest) -> Response:
        if request.path.endswith(".pem"):
            return Response(200, (("Content-Type", "application/x-pem-file"),), self.certificate)
        return Response(200, (("Content-Type", "text/xml"),), b"<ConfirmSubscriptionResponse/>")


class SNSSigner:
    """Signs messages as Amazon SNS does, with a key of its own and a certificate for it."""

    def __init__(self, now: datetime) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.eu-west-1.amazonaws.com")])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .sign(self.key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
        )

    def sign(self, message: dict[str, Any], cert_url: str, version: str = "2") -> bytes:
        fields = (
            ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
            if message["Type"] == "Notification"
            else ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
        )
        text = "".join(f"{name}\n{message[name]}\n" for name in fields if name in message)
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(text.encode(), padding.PKCS1v15(), algorithm)
        signed = {**message, "SignatureVersion": version, "Signature": base64.b64encode(signature).decode()}
        return json.dumps({**signed, "SigningCertURL": cert_url}).encode()


def ses_bounce(reader: str, message_id: str = "", kind: str = "Permanent", status: str = "5.1.1") -> dict[str, Any]:
    """SES's bounce notification, as in its documentation (headers only when the identity sends them)."""
    mail: dict[str, Any] = {
        "timestamp": "2026-11-26T10:00:01.237Z", "source": "news@example.org",
        "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/example.org", "sendingAccountId": "123456789012",
        "messageId": "0102018c1a2b3c4d-5e6f7a8b-1111-2222-3333-444455556666-000000", "destination": [reader],
        "headersTruncated": False,
    }  # fmt: skip
    if message_id:
        mail["headers"] = [{"name": "From", "value": "Example Org <news@example.org>"},
                           {"name": "To", "value": reader}, {"name": "Message-ID", "value": message_id}]  # fmt: skip
        mail["commonHeaders"] = {"from": ["Example Org <news@example.org>"], "to": [reader], "messageId": message_id}
    return {
        "notificationType": "Bounce",
        "bounce": {"bounceType": kind, "bounceSubType": "General" if kind == "Permanent" else "MailboxFull",
                   "bouncedRecipients": [{"emailAddress": reader, "action": "failed", "status": status,
                                          "diagnosticCode": f"smtp; 550 {status} <{reader}>... User unknown"}],
                   "timestamp": "2026-11-26T10:00:02.237Z",
                   "feedbackId": "0102018c1a2b3c4d-aaaa-bbbb-cccc-ddddeeeeffff-000000",
                   "reportingMTA": "dsn; a1-23.smtp-out.eu-west-1.amazonses.com"},
        "mail": mail,
    }  # fmt: skip


def ses_complaint(reader: str) -> dict[str, Any]:
    return {
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": reader}], "timestamp": "2026-11-26T11:00:00.000Z",
                      "feedbackId": "0102018c-cccc-dddd-eeee-ffff00001111-000000", "userAgent": "Yahoo!-Mail-Feedback/2.0",
                      "complaintFeedbackType": "abuse", "arrivalDate": "2026-11-26T10:59:00.000Z"},
        "mail": {"messageId": "0102018c-0000-1111", "destination": [reader], "source": "news@example.org"},
    }  # fmt: skip


def notification(event: dict[str, Any], message_id: str = "", topic: str = TOPIC) -> dict[str, Any]:
    """The SNS envelope of an SES notification."""
    return {
        "Type": "Notification", "MessageId": message_id or str(uuid.uuid4()), "TopicArn": topic,
        "Message": json.dumps(event), "Timestamp": "2026-11-26T10:00:03.000Z",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + topic,
    }  # fmt: skip


def test_ses_notifications_verified_as_sns_signs_them_act_and_forgeries_change_nothing(site, make_app, caplog):
    with mailed(site, make_app) as app:
        signer = SNSSigner(app.clock())
        with SNSHost(signer.certificate) as sns:
            trusted = re.compile(re.escape(sns.base_url) + "/")
            client = make_web(app, verifiers=providers.configured(app.config.inbound, sns=trusted)).client
            cert_url = sns.url_for("/SimpleNotificationService-0123456789abcdef.pem")
            hard, fallback, complainer, other = READERS

            def post(body: bytes) -> Any:
                return client.post("/hooks/ses", data=body, content_type="text/plain; charset=UTF-8")

            subscribe_url = sns.url_for(f"/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37fb687f5d51")
            confirmation = {"Type": "SubscriptionConfirmation", "MessageId": str(uuid.uuid4()), "Token": "2336412f37fb687f5d51",
                            "TopicArn": TOPIC, "SubscribeURL": subscribe_url, "Timestamp": "2026-11-26T09:00:00.000Z",
                            "Message": f"You have chosen to subscribe to the topic {TOPIC}."}  # fmt: skip
            assert post(signer.sign(confirmation, cert_url)).status_code == 200
            assert [r.path for r in sns.requests] == ["/SimpleNotificationService-0123456789abcdef.pem",
                                                      subscribe_url.removeprefix(sns.base_url)], "confirmed"  # fmt: skip

            named = notification(ses_bounce(hard, app.message_ids[hard]))  # the original Message-ID kept
            first = post(signer.sign(named, cert_url, version="1"))  # SHA-1, SNS's default
            again = post(signer.sign(named, cert_url, version="1"))  # SNS retrying: the same MessageId
            assert (first.status_code, again.status_code) == (200, 200) and first.data == again.data
            unnamed = post(signer.sign(notification(ses_bounce(fallback)), cert_url))  # no headers: by address
            complaint = post(signer.sign(notification(ses_complaint(complainer)), cert_url))
            blocked = notification(ses_bounce(other, status="5.7.1"))  # permanent, but a spam block: soft
            assert (unnamed.status_code, complaint.status_code, post(signer.sign(blocked, cert_url)).status_code) == (
                200,
                200,
                200,
            )
            assert len([r for r in sns.requests if r.path.endswith(".pem")]) == 1, "the certificate is kept"

            forger = SNSSigner(app.clock())
            forged = post(forger.sign(notification(ses_bounce(other)), cert_url))  # another key
            tampered = json.loads(signer.sign(notification(ses_bounce(complainer)), cert_url))
            tampered["Message"] = json.dumps(ses_bounce(other))
            elsewhere = post(signer.sign(notification(ses_bounce(other)), "http://169.254.169.254/latest/cert.pem"))
            foreign = post(signer.sign(notification(ses_bounce(other), topic=TOPIC + "-other"), cert_url))
            refused = [forged.status_code, post(json.dumps(tampered).encode()).status_code, elsewhere.status_code,
                       foreign.status_code, post(b"not json").status_code]  # fmt: skip
            assert refused == [406] * 5
            assert len(sns.requests) == 2, "no request went anywhere a forged message named"

        assert status_of(app, hard) == "bounced" and status_of(app, fallback) == "bounced"
        assert status_of(app, complainer) == "complained" and status_of(app, other) == "active"
        with app.db.read() as conn:
            reports = inbound_store.listing(conn)
        assert sorted(r.kind or "" for r in reports) == ["complaint", "hard", "hard", "soft"]
        assert {r.source for r in reports} == {"ses"} and all(r.delivery_id for r in reports), "each names its mail"
        assert "a ses webhook request was refused" in caplog.text


# -- Postmark


def postmark_bounce(reader: str, kind: str = "HardBounce", code: int = 1, id: int = 4323372036) -> dict[str, Any]:
    """Postmark's bounce webhook, as in its documentation."""
    return {
        "RecordType": "Bounce", "MessageStream": "outbound", "ID": id, "Type": kind, "TypeCode": code,
        "Name": "Hard bounce", "Tag": "newsletter", "MessageID": str(uuid.uuid4()), "Metadata": {},
        "ServerID": 23, "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.", "Email": reader,
        "From": "news@example.org", "BouncedAt": "2026-11-26T10:00:01Z", "DumpAvailable": True, "Inactive": True,
        "CanActivate": True, "Subject": "News 0",
    }  # fmt: skip


def basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def test_postmark_webhooks_need_their_credentials_and_act(site, make_app, monkeypatch):
    monkeypatch.setenv("TEST_POSTMARK_HOOK_AUTH", POSTMARK_AUTH)
    with mailed(site, make_app) as app:
        client = make_web(app).client
        hard, complainer, unsubscriber, soft = READERS
        body = json.dumps(postmark_bounce(hard)).encode()
        asked = client.post("/hooks/postmark", data=body, content_type="application/json")
        assert asked.status_code == 401 and asked.headers["WWW-Authenticate"].startswith("Basic")
        wrong = client.post("/hooks/postmark", data=body, headers=basic("syndicate-hooks:guess"))
        assert wrong.status_code == 401 and status_of(app, hard) == "active"

        def post(event: dict[str, Any]) -> Any:
            return client.post("/hooks/postmark", data=json.dumps(event), headers=basic(POSTMARK_AUTH))

        first, again = post(postmark_bounce(hard)), post(postmark_bounce(hard))
        assert (first.status_code, again.status_code) == (200, 200) and first.data == again.data, "one report"
        complaint = {
            **postmark_bounce(complainer, "SpamComplaint", 100001, id=4323372037),
            "RecordType": "SpamComplaint",
        }
        change = {"RecordType": "SubscriptionChange", "MessageID": str(uuid.uuid4()), "ServerID": 23,
                  "MessageStream": "broadcast", "ChangedAt": "2026-11-26T12:00:00Z", "Recipient": unsubscriber,
                  "Origin": "Recipient", "SuppressSending": True, "SuppressionReason": "ManualSuppression",
                  "Tag": "newsletter", "Metadata": {}}  # fmt: skip
        transient = postmark_bounce(soft, "Transient", 2, id=4323372038)
        assert [post(e).status_code for e in (complaint, change, transient)] == [200, 200, 200]
        assert [status_of(app, r) for r in READERS] == ["bounced", "complained", "unsubscribed", "active"]
        assert suppressed(app) == {hard, complainer}
        with app.db.read() as conn:
            reports = {r.kind: r for r in inbound_store.listing(conn)}
        assert set(reports) == {"hard", "complaint", "unsubscribe", "soft"}
        assert reports["soft"].action == "soft bounce 1 of 3" and reports["hard"].delivery_id


# -- SendGrid


class SendGridSigner:
    """Signs requests as SendGrid's signed Event Webhook does."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.verification_key = base64.b64encode(der).decode()  # as SendGrid shows it

    def headers(self, body: bytes, timestamp: int) -> dict[str, str]:
        signature = self.key.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": str(timestamp),
            "Content-Type": "application/json",
        }


def sendgrid_event(reader: str, event: str, smtp_id: str = "", **fields: Any) -> dict[str, Any]:
    """One event of SendGrid's Event Webhook, as in its documentation."""
    return {"email": reader, "timestamp": 1764151200, "smtp-id": smtp_id or "<14c5d75ce93.dfd.64b469@ismtpd-555>",
            "event": event, "category": ["newsletter"], "sg_event_id": f"sg-{event}-{reader}",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0", **fields}  # fmt: skip


def test_sendgrid_signed_event_batches_act_and_forged_stale_or_altered_ones_change_nothing(site, make_app, monkeypatch):
    signer = SendGridSigner()
    monkeypatch.setenv("TEST_SENDGRID_VERIFICATION_KEY", signer.verification_key)
    with mailed(site, make_app) as app:
        client = make_web(app).client
        hard, complainer, deferred, delivered = READERS
        now = int(app.clock().timestamp())
        batch = [
            sendgrid_event(hard, "bounce", app.message_ids[hard], type="bounce", status="5.1.1",
                           reason="550 5.1.1 The email account that you tried to reach does not exist"),
            sendgrid_event(complainer, "spamreport"),
            sendgrid_event(deferred, "deferred", response="452 4.2.2 Mailbox full", attempt="1"),
            sendgrid_event(delivered, "delivered", response="250 OK"),
        ]  # fmt: skip
        body = json.dumps(batch).encode()
        stale = client.post("/hooks/sendgrid", data=body, headers=signer.headers(body, now - 3600))
        altered = client.post("/hooks/sendgrid", data=body.replace(b"spamreport", b"delivered"),
                              headers=signer.headers(body, now))  # fmt: skip
        other = SendGridSigner()
        forged = client.post("/hooks/sendgrid", data=body, headers=other.headers(body, now))
        unsigned = client.post("/hooks/sendgrid", data=body, content_type="application/json")
        assert [r.status_code for r in (stale, altered, forged, unsigned)] == [406] * 4
        assert [status_of(app, r) for r in READERS] == ["active"] * 4, "nothing changed"

        first = client.post("/hooks/sendgrid", data=body, headers=signer.headers(body, now))
        again = client.post("/hooks/sendgrid", data=body, headers=signer.headers(body, now + 5))
        assert (first.status_code, again.status_code) == (200, 200)
        assert first.data.count(b"report ") == 4 and first.data == again.data, "each event one report, once"
        assert [status_of(app, r) for r in READERS] == ["bounced", "complained", "active", "active"]
        with app.db.read() as conn:
            reports = {r.kind: r for r in inbound_store.listing(conn)}
        assert set(reports) == {"hard", "complaint", "soft", "delivered"}
        assert reports["soft"].action == "soft bounce 1 of 3" and reports["hard"].delivery_id


def test_a_sendgrid_key_that_is_not_a_public_key_stops_the_start_with_a_clear_error(site, make_app, monkeypatch):
    monkeypatch.setenv("TEST_SENDGRID_VERIFICATION_KEY", "not-a-key")
    site.extra = CONFIG.format(port=25)
    app = make_app(site)
    with pytest.raises(ConfigError, match=r"TEST_SENDGRID_VERIFICATION_KEY.*not a SendGrid verification key"):
        make_web(app)


# -- hostile input

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
FIELDS = st.sampled_from(["event", "event-data", "RecordType", "Type", "Message", "bounce", "mail", "email",
                          "status", "reason", "notificationType", "bouncedRecipients", "smtp-id", "Details"])  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(provider=st.sampled_from(providers.PROVIDERS), event=st.dictionaries(FIELDS | st.text(max_size=8), JSON))
def test_each_providers_reader_takes_any_json_object_without_raising(provider, event):
    if provider == "ses" and isinstance(event.get("Message"), dict | list):  # SNS carries SES's JSON as a string
        event["Message"] = json.dumps(event["Message"])
    finding, delivery = providers.read(provider, json.dumps(event).encode())
    assert finding.kind in set(Kind) and (delivery is None or delivery > 0)


@settings(max_examples=200, deadline=None)
@given(
    provider=st.sampled_from(["postmark", "sendgrid", "mailgun", "ses"]),
    body=st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()),
    headers=st.dictionaries(st.sampled_from(["authorization", SIGNATURE, TIMESTAMP]), st.text(max_size=40)),
)
def test_each_verifier_refuses_anything_unsigned_with_forged_only(provider, body, headers):
    verify = {
        "postmark": Postmark(POSTMARK_AUTH),
        "sendgrid": SendGrid(SendGridSigner().verification_key),
        "mailgun": Mailgun("key-7d1c0a5b3e9f4a2c8b6d0e1f2a3b4c5d"),
        "ses": SES([TOPIC], get=lambda url: pytest.fail(f"fetched {url}")),
    }[provider]
    with pytest.raises(providers.Forged):
        verify(body, headers, datetime(2026, 11, 26, tzinfo=UTC))


def test_json_nested_thousands_deep_is_refused_as_not_json_not_a_crash():
    from syndicate.inbound.providers.common import Forged, json_object

    with pytest.raises(Forged, match="nested too deep"):
        json_object(b"[" * 30000 + b"]" * 30000, "an event")
