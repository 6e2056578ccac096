"""The newsletter message itself, parsed back with Python's email package: parts, headers, footer, DKIM.

Mail goes through the file transport (the default), so each test reads the
``.eml`` files a subscriber's mail server would have been handed.
"""

from __future__ import annotations

import base64
import email
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import dkim
import pytest
from click.testing import CliRunner
from conftest import Site
from lxml import html as lxml_html
from sqlalchemy import select

from syndicate.app import App
from syndicate.cli import main
from syndicate.model import Revision
from syndicate.pipeline import tick
from syndicate.plan.editions import EditionPlanner
from syndicate.render import templates
from syndicate.render.email import EmailRenderer, Rendered
from syndicate.store import subscribers as subscriber_store
from syndicate.store.schema import deliveries
from syndicate.subscribers import Frequency, NewSubscriber
from syndicate.tokens import BadToken

TITLE = "İzmir'de ışık, şehir ve dağ: Заявление о солидарности"
SENDER = "İnsan Hakları Derneği · Правозащитный центр"
LONG_PARAGRAPH = " ".join(f"word{i % 10}" for i in range(834))[:5000]
CYRILLIC = " ".join(["Мы выражаем солидарность со всеми, кто защищает права человека."] * 60)
LONG_URL = "https://example.net/archive/" + "a" * 1500
BODY = f"""**Kalın metin** ve [bağlantı](https://example.net/kaynak) İĞÜŞÖÇ ığüşöç.

{LONG_PARAGRAPH}

{CYRILLIC}

Kaynak: <{LONG_URL}>
"""
CANONICAL = "https://example.org/statements/news"
READERS = ("ayse@example.org", "ivan@example.org", "third@example.org")


def add(app: App, *addresses: str) -> None:
    with app.db.write() as conn:
        for address in addresses:
            new = NewSubscriber(address, ("en",), (), Frequency.IMMEDIATE, True, "test")
            subscriber_store.add(conn, new, app.clock())


@dataclass
class Mail:
    """One delivered message: its delivery id, raw bytes and parsed form."""

    delivery_id: int
    raw: bytes
    message: EmailMessage

    @property
    def text(self) -> str:
        # An 8bit part keeps the wire's CRLF when parsed back; a mail client shows plain line ends.
        return str(self.message.get_body(("plain",)).get_content()).replace("\r\n", "\n")  # type: ignore[union-attr]

    @property
    def html(self) -> str:
        return str(self.message.get_body(("html",)).get_content())  # type: ignore[union-attr]


def outbox(site: Site) -> list[Mail]:
    """Every message the file transport wrote, in delivery order."""
    mails = []
    for path in sorted((site.root / "outbox").glob("*.eml"), key=lambda p: int(p.stem)):
        raw = path.read_bytes()
        mails.append(Mail(int(path.stem), raw, email.message_from_bytes(raw, policy=policy.default)))  # type: ignore[arg-type]
    return mails


def mail_statement(site: Site, make_app: Any, body: str = BODY, readers: tuple[str, ...] = READERS) -> App:
    """Install, subscribe ``readers``, publish one statement and deliver it through the file transport."""
    site.extra += f'\n[email]\nfrom_name = "{SENDER}"\n'
    app: App = make_app(site)
    tick(app)
    add(app, *readers)
    site.statement("news.md", TITLE, "2026-11-26T14:30:00+03:00", body=body)
    tick(app)
    return app


@pytest.fixture
def mailed(sqlite_site: Site, make_app: Any) -> tuple[App, list[Mail]]:
    app = mail_statement(sqlite_site, make_app)
    mails = outbox(sqlite_site)
    assert len(mails) == len(READERS)
    return app, mails


def display_name(raw: bytes) -> str:
    """The From display name decoded as RFC 2047 says: the white space between encoded-words is dropped.

    The modern parser (policy.default) of Python 3.11 keeps it and splits the name where the
    encoder cut it (CPython gh-128110), so the legacy decoder reads this one header.
    """
    name, _ = parseaddr(str(email.message_from_bytes(raw, policy=policy.compat32)["From"]))
    return str(make_header(decode_header(name)))


def unsubscribe_links(message: EmailMessage) -> tuple[str, str]:
    https, mailto = (part.strip(" <>") for part in str(message["List-Unsubscribe"]).split(","))
    return https, mailto


def test_both_parts_are_utf8_and_turkish_and_russian_survive_subject_sender_and_bodies(mailed):
    _, mails = mailed
    mail = mails[0]
    assert mail.message.get_content_type() == "multipart/alternative"
    parts = list(mail.message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert {p.get_content_charset() for p in parts} == {"utf-8"}
    assert re.search(rb"^Subject: =\?utf-8\?", mail.raw, re.MULTILINE), "a non-ASCII subject is sent as encoded-words"
    assert mail.message["Subject"] == TITLE
    assert display_name(mail.raw) == SENDER
    for part in (mail.text, mail.html):
        assert "İĞÜŞÖÇ ığüşöç" in part and "Мы выражаем солидарность" in part
    assert TITLE in mail.html and TITLE in mail.text


def test_no_line_is_longer_than_998_bytes(mailed):
    _, mails = mailed
    for mail in mails:
        longest = max(len(line) for line in mail.raw.split(b"\r\n"))
        assert longest <= 998, f"delivery {mail.delivery_id} has a line of {longest} bytes"
    words = re.findall(r"word\d", mails[0].text)
    assert len(words) == len(re.findall(r"word\d", LONG_PARAGRAPH)), "folding lost no words"


def test_headers_of_a_list_mail_with_a_message_id_from_the_delivery(mailed):
    app, mails = mailed
    with app.db.read() as conn:
        targets = dict(conn.execute(select(deliveries.c.id, deliveries.c.target)).all())
        people = subscriber_store.by_ids(conn, [int(t) for t in targets.values()])
    for mail in mails:
        message = mail.message
        assert message["To"] == people[int(targets[mail.delivery_id])].email
        assert message["From"].addresses[0].addr_spec == "newsletter@example.org"
        assert message["Message-ID"] == f"<syndicate.{mail.delivery_id}@example.org>"
        assert isinstance(message["Date"].datetime, datetime)
        assert message["List-Id"] == "Example Org <statements.example.org>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        https, mailto = unsubscribe_links(message)
        assert https.startswith("http://127.0.0.1:8080/unsubscribe/")
        assert mailto.startswith("mailto:unsubscribe@example.org")


def test_the_unsubscribe_url_carries_a_token_for_that_subscriber_only(mailed):
    app, mails = mailed
    for mail in mails:
        https, _ = unsubscribe_links(mail.message)
        token = https.rsplit("/", 1)[1]
        app.secrets.verify(token, "unsubscribe", str(mail.message["To"]), app.clock())
        with pytest.raises(BadToken):
            app.secrets.verify(token, "unsubscribe", "someone.else@example.org", app.clock())
    tokens = {unsubscribe_links(m.message)[0] for m in mails}
    assert len(tokens) == len(mails)


def test_the_footer_has_attribution_reason_unsubscribe_and_preferences(mailed):
    _, mails = mailed
    mail = mails[0]
    [footer] = lxml_html.document_fromstring(mail.html).find_class("footer")
    assert f"because {mail.message['To']} subscribed to statements from Example Org" in footer.text_content()
    links = {a.text_content().strip(): a.get("href") for a in footer.iter("a")}
    assert links["Example Org"] == "https://example.org"
    assert links[CANONICAL] == CANONICAL, "an active link to the canonical statement, shown as it is"
    https, _ = unsubscribe_links(mail.message)
    assert links["Unsubscribe"] == https
    token = https.rsplit("/", 1)[1]
    assert links["Change what you receive"] == f"http://127.0.0.1:8080/preferences/{token}", (
        "one token manages the subscription"
    )
    text_footer = mail.text.split("\n--\n", 1)[1]
    assert f"First published by Example Org at {CANONICAL}" in text_footer
    assert f"because {mail.message['To']} subscribed" in text_footer
    assert f"Unsubscribe: {https}" in text_footer
    assert re.search(
        rf"Change what you receive:\s+http://127\.0\.0\.1:8080/preferences/{re.escape(token)}", text_footer
    )


def test_no_tracking_pixels_and_no_redirecting_links(mailed):
    _, mails = mailed
    page = lxml_html.document_fromstring(mails[0].html)
    assert list(page.iter("img")) == [], "the templates have no images and neither has the statement"
    # A URL too long for one mail line is cut; browsers drop line breaks from URLs (WHATWG URL standard).
    hrefs = {re.sub(r"[\t\r\n]", "", a.get("href")) for a in page.iter("a")}
    of_the_statement = {"https://example.net/kaynak", LONG_URL}
    ours = {h for h in hrefs if re.fullmatch(r"http://127\.0\.0\.1:8080/(unsubscribe|preferences)/[\w.-]+", h)}
    assert hrefs - ours - of_the_statement == {CANONICAL, "https://example.org"}


def test_css_is_inlined(mailed):
    _, mails = mailed
    page = lxml_html.document_fromstring(mails[0].html)
    assert list(page.iter("style")) == []
    assert "font-family" in (page.body.get("style") or "")
    assert all(p.get("style") for p in page.iter("p"))


def test_the_text_part_is_written_from_the_markdown_source(mailed):
    _, mails = mailed
    assert "**Kalın metin** ve bağlantı <https://example.net/kaynak>" in mails[0].text
    assert "<strong>Kalın metin</strong>" in mails[0].html


class CountingRenderer(EmailRenderer):
    """The real renderer, counting how often the planner asks it for a statement mail."""

    calls = 0

    def statement(self, revision: Revision, edition_key: str, now: datetime) -> Rendered:
        CountingRenderer.calls += 1
        return super().statement(revision, edition_key, now)


def test_an_edition_is_rendered_once_and_only_personalised_per_recipient(sqlite_site, make_app):
    app: App = make_app(sqlite_site)
    renderer = CountingRenderer(app.config, templates.environment(app.config.templates.dir))
    app.stages[0] = EditionPlanner(app.config, app.db, renderer)
    CountingRenderer.calls = 0
    tick(app)
    add(app, *READERS)
    sqlite_site.statement("news.md", TITLE, "2026-11-26T14:30:00+03:00", body="Short body.")
    tick(app)
    tick(app)
    assert CountingRenderer.calls == 1

    def impersonal(mail: Mail) -> bytes:
        data = mail.raw.replace(str(mail.message["To"]).encode(), b"TO")
        data = data.replace(f"syndicate.{mail.delivery_id}@".encode(), b"ID@")
        return re.sub(rb"/(unsubscribe|preferences)/[\w.-]+|(%20)[\w.-]+>", rb"/\1\2TOKEN", data)

    mails = outbox(sqlite_site)
    assert len(mails) == len(READERS)
    assert len({impersonal(m) for m in mails}) == 1, "the mails differ only where they are personalised"


@pytest.fixture
def dkim_key(tmp_path: Path) -> tuple[Path, bytes]:
    """An RSA key made with openssl, and its DNS record."""
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def test_dkim_signs_each_mail_including_both_unsubscribe_headers(sqlite_site, make_app, dkim_key):
    key, record = dkim_key
    sqlite_site.extra = f'[email.dkim]\nselector = "mail2026"\ndomain = "example.org"\nkey_file = "{key}"\n'
    mail_statement(sqlite_site, make_app, body="Short body, Заявление.")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mail2026._domainkey.example.org."
        return record

    mails = outbox(sqlite_site)
    assert len(mails) == len(READERS)
    for mail in mails:
        assert dkim.verify(mail.raw, dnsfunc=dns)
        signed = re.sub(r"\s", "", str(mail.message["DKIM-Signature"]))
        h = dict(tag.split("=", 1) for tag in signed.split(";") if tag)["h"].lower().split(":")
        assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= set(h)
    tampered = mails[0].raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x")
    assert not dkim.verify(tampered, dnsfunc=dns)


@pytest.mark.parametrize("content", [None, "not a key"])
def test_a_dkim_key_that_cannot_sign_is_a_config_error_naming_the_key(sqlite_site, tmp_path, content):
    key = tmp_path / "dkim.pem"
    if content is not None:
        key.write_text(content)
    sqlite_site.extra = f'[email.dkim]\nselector = "s"\ndomain = "example.org"\nkey_file = "{key}"\n'
    sqlite_site.config()
    result = CliRunner().invoke(main, ["--config", str(sqlite_site.root / "config.toml"), "once"])
    assert result.exit_code == 1
    assert f"config: email.dkim.key_file: {'cannot read' if content is None else ''}" in result.output
    assert str(key) in result.output
