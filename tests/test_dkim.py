"""DKIM: every signature verifies with dkimpy after the message crossed a real SMTP server.

The keys are made by openssl, and the DNS records the verifier reads are made
from openssl's output too, not from syndicate's: the verifier and its records
are independent of the signer. ``syndicate dkim dns`` must print those same
records.
"""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner
from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st
from servers.smtp import SMTPServer
from test_email_delivery import ADDRESSES, publish, received, smtp_site

from syndicate.cli import main
from syndicate.deliver.email.dkim import RSA, Key, Signer, canonical_body
from syndicate.pipeline import tick

DOMAIN = "example.org"


def _openssl(*args: str) -> bytes:
    return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bytes]]:
    """An RSA-2048 and an Ed25519 key made by openssl, each with its TXT record (p= from openssl too)."""
    folder = tmp_path_factory.mktemp("dkim")
    rsa_key, ed_key = folder / "rsa.pem", folder / "ed25519.pem"
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(rsa_key))
    _openssl("genpkey", "-algorithm", "ED25519", "-out", str(ed_key))
    rsa_public = _openssl("pkey", "-in", str(rsa_key), "-pubout", "-outform", "DER")
    ed_public = _openssl("pkey", "-in", str(ed_key), "-pubout", "-outform", "DER")[-32:]  # SPKI ends in the raw key
    return {
        "rsa": (rsa_key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(rsa_public)),
        "ed25519": (ed_key, b"v=DKIM1; k=ed25519; p=" + base64.b64encode(ed_public)),
    }


def _config(keys: dict[str, tuple[Path, bytes]], both: bool) -> str:
    text = f'[email.dkim]\nselector = "rsa2026"\ndomain = "{DOMAIN}"\nkey_file = "{keys["rsa"][0]}"\n'
    if both:
        text += 'algorithms = ["rsa-sha256", "ed25519-sha256"]\ned25519_selector = "ed2026"\n'
        text += f'ed25519_key_file = "{keys["ed25519"][0]}"\n'
    return text


def _dns(keys: dict[str, tuple[Path, bytes]]):  # type: ignore[no-untyped-def]
    records = {
        f"rsa2026._domainkey.{DOMAIN}.".encode(): keys["rsa"][1],
        f"ed2026._domainkey.{DOMAIN}.".encode(): keys["ed25519"][1],
    }

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)

    return lookup


def _signatures(raw: bytes) -> list[dict[str, str]]:
    found = re.findall(rb"^DKIM-Signature:(.*?)\r\n(?=\S)", raw, flags=re.S | re.M)
    return [dict(t.strip().split("=", 1) for t in re.sub(r"\s", "", f.decode()).split(";") if t) for f in found]


def _verified(raw: bytes, keys: dict[str, tuple[Path, bytes]]) -> list[bool]:
    """dkimpy's verdict on each DKIM-Signature of ``raw``, top to bottom."""
    verifier = dkim.DKIM(raw)
    verdicts = []
    for i in range(len(_signatures(raw))):
        try:
            verdicts.append(bool(verifier.verify(idx=i, dnsfunc=_dns(keys))))
        except dkim.ValidationError:  # a body hash mismatch is raised, not returned
            verdicts.append(False)
    return verdicts


@pytest.mark.parametrize("both", [False, True], ids=["rsa", "rsa+ed25519"])
def test_every_signature_verifies_after_crossing_a_real_smtp_server(site, make_app, keys, both):
    with SMTPServer() as server:
        site.extra = smtp_site(site, server).extra + _config(keys, both)
        app = publish(site, make_app, ADDRESSES)
        tick(app)
    assert sum(received(server).values()) == len(ADDRESSES)
    for message in server.messages:
        signatures = _signatures(message.raw)
        assert [s["a"] for s in signatures] == (["rsa-sha256", "ed25519-sha256"] if both else ["rsa-sha256"])
        assert _verified(message.raw, keys) == [True] * len(signatures)
        for signature in signatures:
            assert signature["c"] == "relaxed/relaxed"
            h = signature["h"].lower().split(":")
            for name in (
                "from",
                "to",
                "subject",
                "date",
                "message-id",
                "list-id",
                "list-unsubscribe",
                "list-unsubscribe-post",
            ):
                assert h.count(name) >= 2, f"{name} is over-signed"
        assert len({s["bh"] for s in signatures}) == 1, "one body hash for both signatures"


def _one_signed_mail(site, make_app, keys) -> bytes:  # type: ignore[no-untyped-def]
    with SMTPServer() as server:
        site.extra = smtp_site(site, server).extra + _config(keys, True)
        tick(publish(site, make_app, ADDRESSES[:1]))
    (message,) = server.messages
    assert _verified(message.raw, keys) == [True, True]
    return message.raw


@pytest.mark.parametrize(
    "change",
    [
        lambda raw: raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x"),
        lambda raw: re.sub(rb"\r\nSubject: ", b"\r\nSubject: Re: ", raw, count=1),
        # A header added in transit: a second List-Unsubscribe or Subject above the signed ones.
        lambda raw: b"List-Unsubscribe: <https://evil.example/u>\r\n" + raw,
        lambda raw: b"Subject: Click here\r\n" + raw,
        lambda raw: raw.replace(b"\r\n\r\n", b"\r\n\r\nAn added line.\r\n", 1),
    ],
    ids=["header changed", "subject changed", "list-unsubscribe added", "subject added", "body changed"],
)
def test_a_message_changed_in_transit_fails_verification(sqlite_site, make_app, keys, change):
    raw = _one_signed_mail(sqlite_site, make_app, keys)
    changed = change(raw)
    assert changed != raw
    assert _verified(changed, keys) == [False, False]


def test_a_message_re_encoded_for_a_7bit_server_is_signed_after_the_re_encoding(sqlite_site, make_app, keys):
    with SMTPServer(without=["8BITMIME"]) as server:
        sqlite_site.extra = smtp_site(sqlite_site, server).extra + _config(keys, True)
        tick(publish(sqlite_site, make_app, ADDRESSES[:2]))
    assert len(server.messages) == 2
    for message in server.messages:
        assert message.raw.isascii()
        assert b"Content-Transfer-Encoding: quoted-printable" in message.raw
        assert _verified(message.raw, keys) == [True, True]


def test_dkim_dns_prints_the_records_openssl_makes(sqlite_site, keys):
    sqlite_site.extra = _config(keys, True)
    sqlite_site.config()
    result = CliRunner().invoke(main, ["--config", str(sqlite_site.root / "config.toml"), "dkim", "dns"])
    assert result.exit_code == 0, result.output
    printed = {
        name: "".join(re.findall(r'"([^"]*)"', strings))
        for name, strings in re.findall(r"^(\S+)\. IN TXT \( (.*) \)$", result.output, flags=re.M)
    }
    assert printed == {
        f"rsa2026._domainkey.{DOMAIN}": keys["rsa"][1].decode(),
        f"ed2026._domainkey.{DOMAIN}": keys["ed25519"][1].decode(),
    }


@pytest.mark.parametrize(
    ("make", "wanted"),
    [
        (("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:768"), "768 bits; receivers want at least 1024"),
        (("genpkey", "-algorithm", "ED25519"), "is not an RSA key"),
    ],
    ids=["too short", "wrong algorithm"],
)
def test_check_names_a_key_that_is_too_short_or_of_the_wrong_algorithm(sqlite_site, tmp_path, keys, make, wanted):
    key = tmp_path / "bad.pem"
    _openssl(*make, "-out", str(key))
    sqlite_site.extra = f'[email.dkim]\nselector = "s"\ndomain = "{DOMAIN}"\nkey_file = "{key}"\n'
    sqlite_site.config()
    result = CliRunner().invoke(main, ["--config", str(sqlite_site.root / "config.toml"), "check"])
    assert result.exit_code != 0
    assert "email.dkim.key_file" in result.output and wanted in result.output and str(key) in result.output


def test_an_ed25519_key_file_holding_an_rsa_key_is_named(sqlite_site, keys):
    text = _config(keys, True).replace(str(keys["ed25519"][0]), str(keys["rsa"][0]))
    sqlite_site.extra = text
    sqlite_site.config()
    result = CliRunner().invoke(main, ["--config", str(sqlite_site.root / "config.toml"), "check"])
    assert result.exit_code != 0
    assert "email.dkim.ed25519_key_file" in result.output and "is not an Ed25519 key" in result.output


def test_one_body_hash_serves_every_signature_and_a_repeated_body(keys):
    """Signing the same body under two header sets hashes it once (counted by the canonicaliser's calls)."""
    signer = Signer([Key(RSA, "rsa2026", DOMAIN, keys["rsa"][0].read_bytes())])
    calls = []
    import syndicate.deliver.email.dkim as module

    original = module.canonical_body
    module.canonical_body = lambda body: calls.append(body) or original(body)  # type: ignore[assignment]
    try:
        for to in ("a@example.org", "b@example.org"):
            signed = signer.sign(f"From: n@{DOMAIN}\r\nTo: {to}\r\nSubject: s\r\n\r\nSame body.\r\n".encode())
            assert _verified(signed, keys) == [True]
    finally:
        module.canonical_body = original  # type: ignore[assignment]
    assert len(calls) == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=" \t\r\nab.", max_size=12), max_size=12))
def test_the_body_is_canonicalised_as_dkimpy_does_it(lines):
    """Relaxed body canonicalisation against dkimpy's own, on bodies of spaces, tabs and empty lines.

    A body on the wire ends in CRLF (DATA's end needs one), and the verifier sees it so; syndicate may
    sign it before that CRLF is added, which must come to the same.
    """
    body = "\r\n".join(line.replace("\r", "").replace("\n", "") for line in lines).encode()
    on_the_wire = body if body.endswith(b"\r\n") else body + b"\r\n"
    assert canonical_body(body) == canonical_body(on_the_wire) == Relaxed.canonicalize_body(on_the_wire)
