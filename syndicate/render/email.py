"""Newsletter mail: each edition rendered once into a message template, personalised per recipient.

Rendering (Jinja2, CSS inlining, MIME) happens once per edition and its bytes
are stored. What differs per recipient (address, Message-ID, the signed
unsubscribe and preferences links) is left as the placeholders of
:mod:`syndicate.mail`, replaced in the bytes when each letter is pressed, so a
hundred thousand recipients cost a hundred thousand joins, not renders. Both
parts are UTF-8 with 8bit transfer encoding and no line is over 998 bytes, so
replacing a placeholder never needs re-encoding.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any

import css_inline
import jinja2

from syndicate.config import Config
from syndicate.mail import CONFIRM, DATE, MAIL_POLICY, MESSAGE_ID, PREFERENCES, TO, UNSUBSCRIBE
from syndicate.mail import MessageTemplate as MessageTemplate  # where ``preview`` looks for it
from syndicate.model import Revision
from syndicate.render import templates

TEXT_WIDTH = 76
HTML_FOLD = 240  # characters: even at 4 bytes each a line stays under the 998-byte limit
# A line with no space to fold at (a long URL) is cut here at the latest: under 998 bytes with room
# for what personalisation puts in.
LINE_BYTES = 900
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
REQUIRED_TEMPLATES = tuple(
    f"email/{name}"
    for name in (
        "base.html",
        "base.txt",
        "statement.html",
        "statement.txt",
        "digest.html",
        "digest.txt",
        "confirm.html",
        "confirm.txt",
        "style.css",
    )
)


@dataclass(frozen=True)
class Rendered:
    """An edition's subject and message template."""

    subject: str
    message: bytes


class EmailRenderer:
    """Renders statement, digest and confirmation mails from ``templates/email``."""

    def __init__(self, config: Config, env: jinja2.Environment) -> None:
        self.config = config
        self.env = env
        env.filters.setdefault("localdate", localdate)
        env.filters.setdefault("wraptext", wrap_text)

    def statement(self, revision: Revision, edition_key: str, now: datetime) -> Rendered:
        """The mail for one statement."""
        context = {"entry": revision, "lang": revision.lang}
        return self._render("statement", revision.title, context, edition_key, now, list_mail=True)

    def digest(self, period: str, lang: str, revisions: list[Revision], edition_key: str, now: datetime) -> Rendered:
        """A daily or weekly digest of ``revisions``."""
        day = now.astimezone(self.config.site.tz)
        subject = f"{self.config.site.title}: {period} digest, {localdate(day, lang)}"
        context = {"entries": revisions, "lang": lang, "period": period}
        return self._render("digest", subject, context, edition_key, now, list_mail=True)

    def confirmation(self, lang: str, edition_key: str, now: datetime) -> Rendered:
        """The double opt-in mail with its confirm link."""
        subject = f"Confirm your subscription to {self.config.site.title}"
        return self._render("confirm", subject, {"lang": lang}, edition_key, now, list_mail=False)

    def _render(
        self, name: str, subject: str, context: dict[str, Any], key: str, now: datetime, *, list_mail: bool
    ) -> Rendered:
        web = self.config.web_base_url
        recipient = {
            "email": TO.decode(),
            "unsubscribe_url": f"{web}/unsubscribe/{UNSUBSCRIBE.decode()}" if list_mail else None,
            "preferences_url": f"{web}/preferences/{PREFERENCES.decode()}" if list_mail else None,
            "confirm_url": f"{web}/confirm/{CONFIRM.decode()}",
        }
        context = {**context, "site": self.config.site, "subject": subject, "recipient": recipient}
        html = templates.load(self.env, f"email/{name}.html").render(context)
        text = templates.load(self.env, f"email/{name}.txt").render(context)
        message = self._mime(subject, fold_html(css_inline.inline(html)), wrap_text(text), key, now, list_mail)
        return Rendered(subject, message)

    def _mime(self, subject: str, html: str, text: str, key: str, now: datetime, list_mail: bool) -> bytes:
        email = self.config.email
        host = self.config.site.domain
        message = EmailMessage(policy=MAIL_POLICY)
        message["From"] = formataddr(self.config.sender)
        message["To"] = TO.decode()
        message["Subject"] = subject
        message["Date"] = DATE.decode()
        message["Message-ID"] = f"<{MESSAGE_ID.decode()}@{host}>"
        if email.reply_to:
            message["Reply-To"] = email.reply_to
        if list_mail:
            list_id = email.list_id or f"statements.{host}"
            mailto = self.config.unsubscribe_address
            message["List-Id"] = f"{self.config.site.title} <{list_id}>"
            unsubscribe = f"{self.config.web_base_url}/unsubscribe/{UNSUBSCRIBE.decode()}"
            message["List-Unsubscribe"] = (
                f"<{unsubscribe}>, <mailto:{mailto}?subject=unsubscribe%20{UNSUBSCRIBE.decode()}>"
            )
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(text, subtype="plain", charset="utf-8", cte="8bit")
        message.add_alternative(html, subtype="html", charset="utf-8", cte="8bit")
        # A boundary from the edition, not from chance: the same edition renders to the same bytes.
        message.set_boundary("=_syndicate_" + hashlib.sha256(key.encode()).hexdigest()[:24])
        return message.as_bytes(policy=MAIL_POLICY)


def localdate(moment: datetime, lang: str = "en") -> str:
    """A date as readers of ``lang`` write it (English by name, others by number)."""
    if lang.split("-")[0] == "en":
        return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"
    return moment.strftime("%d.%m.%Y")


def wrap_text(text: str, width: int = TEXT_WIDTH) -> str:
    """Wrap each long line at word boundaries; URLs and short lines stay whole."""
    lines = []
    for line in text.split("\n"):
        if len(line) <= width:
            lines.append(line.rstrip())
        else:
            for wrapped in textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False):
                lines.extend(_hard_break(wrapped))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def fold_html(html: str) -> str:
    """Break HTML lines longer than a mail line may be, at a space between words or tags."""
    out = []
    for line in html.split("\n"):
        while len(line) > HTML_FOLD:
            cut = line.rfind(" ", 0, HTML_FOLD)
            if cut <= 0:
                cut = line.find(" ", HTML_FOLD)
            if cut > 0 and len(line[:cut].encode()) <= LINE_BYTES:
                out.append(line[:cut])
                line = line[cut + 1 :]
            elif len(line.encode()) > LINE_BYTES:
                cut = _hard_cut(line)
                out.append(line[:cut])
                line = line[cut:]
            else:
                break
        out.append(line)
    return "\n".join(out)


def _hard_cut(line: str) -> int:
    """Where to cut a line with no space within reach (a long URL): after a tag if one is near, else
    anywhere; browsers drop line breaks inside a URL."""
    fits = _fits(line)
    at_tag = max(fits.rfind(">") + 1, fits.rfind("<"))
    return at_tag if at_tag > len(fits) // 2 else len(fits)


def _fits(line: str) -> str:
    """The longest start of ``line`` that stays within LINE_BYTES once encoded."""
    return line.encode()[:LINE_BYTES].decode(errors="ignore")


def _hard_break(line: str) -> list[str]:
    """``line`` cut into pieces of at most LINE_BYTES (a word longer than a mail line may be)."""
    pieces = []
    while len(line.encode()) > LINE_BYTES:
        head = _fits(line)
        pieces.append(head)
        line = line[len(head) :]
    return [*pieces, line]
