"""What a report that came back says: a bounce (hard or soft), a complaint, an auto-reply, an unsubscribe.

One function, :func:`classify`, for every way a report comes in (the
listener, a mailbox, a provider's webhook turns its event into the same
:class:`Finding`). In order:

- an RFC 3464 delivery status notification (``multipart/report;
  report-type=delivery-status``): ``Action: failed`` with a 5.x.x status about
  the address (5.1.x addressing, 5.2.x mailbox but 5.2.2 full, 5.4.4 no such
  domain; or no status at all) is hard; 4.x.x, ``Action: delayed``, and the
  5.x.x that are about us or the message (5.7.x policy, spam blocks) are
  soft, as in :func:`syndicate.deliver.email.ledger.about_the_address`: a
  server set up wrong must not bounce the whole list in one run;
  ``delivered``, ``relayed`` and ``expanded`` say nothing bad;
- an RFC 5965 feedback report (``report-type=feedback-report``): a complaint;
- mail to the unsubscribe address: an unsubscribe, with the signed token
  from the subject when the reader's client kept it;
- an RFC 3834 auto-reply (``Auto-Submitted`` other than ``no``, the headers
  vacation programs set, an out-of-office subject): ignored;
- anything else that flufl.bounce's detectors recognise as a bounce (qmail,
  old Exchange, a dozen others): hard or soft as they say;
- the rest is ``unknown``, kept for the operator.

A DSN or feedback report is read from its machine-readable part alone (the
second of its three parts, found by its boundary): the returned original,
often the whole newsletter, is not parsed. A report whose second part does
not read as one is parsed whole and goes down the list above.

Hostile input is expected: the parser is the standard library's, lenient
(``compat32``), and nothing here raises on a malformed message.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import enum
import logging
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value, getaddresses, parseaddr
from typing import Any

from flufl.bounce import all_failures

# flufl.bounce logs every detector that trips over a message; on hostile input that is expected
# (the report is then kept as unknown), not an error for the operator's log.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)


class Kind(enum.StrEnum):
    """What a report is."""

    HARD = "hard"
    SOFT = "soft"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    AUTO_REPLY = "auto-reply"
    DELIVERED = "delivered"  # a DSN that says all went well (some servers send them on request)
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Finding:
    """What :func:`classify` read in a report."""

    kind: Kind
    recipient: str = ""  # whom it is about: the DSN's final recipient, the complaint's original recipient
    status: str = ""  # the enhanced status code (RFC 3463), when one was given
    detail: str = ""  # the diagnostic, the feedback type, or the subject: for the operator
    token: str = ""  # an unsubscribe's signed token, from its subject
    sender: str = ""  # who sent the report (for an unsubscribe: the reader)


STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
TOKEN = re.compile(r"\bunsubscribe\s+([a-z][0-9]+\.[0-9]+\.[\w-]+)", re.IGNORECASE | re.ASCII)
AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|abwesenheit|absence|"
    r"otomatik (yan[ıi]t|cevap)|ofis d[ıi][şs][ıi]nda|auto:|vacation)",
    re.IGNORECASE,
)
VACATION_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Vacation", "X-Autoresponder")
MAX_DETAIL = 1000
HEADER_END = re.compile(rb"\r?\n\r?\n")
HEADER_LINE = re.compile(r"^(From |[\041-\071\073-\176]*:|[\t ])")  # as email.feedparser's headerRE
NEWLINE = re.compile(r"\r\n|\r|\n")
MAX_HEAD = 64 * 1024
SIMPLE_ADDRESS = re.compile(
    r"<?([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)>?",
    re.ASCII,
)


def parse(raw: bytes) -> Message:
    """A report as a message (leniently: a broken one still yields what can be read)."""
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def classify(raw: bytes, to_unsubscribe: bool = False) -> Finding:
    """What ``raw`` says (``to_unsubscribe``: it was sent to the unsubscribe address)."""
    machine = _machine_part(raw)
    if machine is not None:  # the report's machine-readable part says it all: the rest need not be parsed
        part, report = machine
        finding = (_dsn if report == "delivery-status" else _arf_part)(parse(part))
        if finding is not None:
            return finding
    message = parse(raw)
    report = _report_type(message)
    if report == "delivery-status":
        finding = _dsn(message)
        if finding is not None:
            return finding
    if report == "feedback-report":
        return _arf(message)
    if to_unsubscribe:
        subject = _header(message, "Subject")
        token = TOKEN.search(subject)
        return Finding(Kind.UNSUBSCRIBE, detail=subject, token=token.group(1) if token else "",
                       sender=_address(message, "From"))  # fmt: skip
    if _auto_reply(message):
        return Finding(Kind.AUTO_REPLY, detail=_header(message, "Subject"), sender=_address(message, "From"))
    return _fallback(message)


def _machine_part(raw: bytes) -> tuple[bytes, str] | None:
    """A DSN's or feedback report's machine-readable part (its second), alone, and the report type.

    RFC 3464 and RFC 5965 put the human-readable text first, the machine-readable part
    second, and the original message (often the whole newsletter) third. Only the second
    says anything; parsing the others is most of the work. ``None`` when ``raw`` is not
    such a report with its parts delimited; a part that does not read is parsed whole.
    """
    found = _content_type(raw)
    if found is None:
        return None
    value, body = found
    head = Message()
    head["Content-Type"] = value
    try:
        if head.get_content_type() != "multipart/report":
            return None
        params: dict[str, Any] = {}  # read once: as get_param and get_boundary read them, each alone
        for key, given in head.get_params(failobj=[]):
            params.setdefault(key.lower(), given)
        report = str(params.get("report-type", "") or "").lower()
        boundary = collapse_rfc2231_value(params["boundary"]).rstrip() if "boundary" in params else None
        if report not in ("delivery-status", "feedback-report") or not boundary:
            return None
        marker = b"\n--" + boundary.encode("ascii")
    except (UnicodeError, ValueError, TypeError):  # a hostile header: the whole parse will say what it can
        return None
    lines: list[tuple[int, int]] = []  # where each of the first three delimiter lines starts and ends
    at = raw.find(marker, max(body - 2, 0))
    while at != -1 and len(lines) < 3:
        after = at + len(marker)
        line_end = raw.find(b"\n", after)
        line_end = len(raw) if line_end == -1 else line_end + 1
        if not raw[after:line_end].strip(b" \t\r\n"):  # the boundary alone: not "--" (the end), not a longer one
            lines.append((at, line_end))
        at = raw.find(marker, after)
    if len(lines) < 3:
        return None
    return raw[lines[1][1] : lines[2][0]].rstrip(b"\r"), report


def _content_type(raw: bytes) -> tuple[str, int] | None:
    """The first Content-Type header's value, and where the body starts, read as the email package reads them.

    The header lines are split and told apart as its feed parser does (``str.splitlines``
    on the ASCII text, a header line is a name and a colon or a folded continuation, the
    first other line ends the headers), without building a message: most of the cost of a
    small report is that machinery.
    """
    end = HEADER_END.search(raw)
    text = raw[: end.end() if end else min(len(raw), MAX_HEAD)].decode("ascii", "surrogateescape")
    value: list[str] | None = None
    current: list[str] | None = None
    position = 0
    for line in text.splitlines(True):
        if not HEADER_LINE.match(line):
            if NEWLINE.match(line):
                position += len(line)
            break
        position += len(line)
        if line[0] in " \t":
            if current is not None:
                current.append(line)
            continue
        if line.startswith("From "):
            current = None
            continue
        name, _, rest = line.partition(":")
        if not name:
            current = None
            continue
        current = [rest.lstrip(" \t")] if value is None and name.lower() == "content-type" else None
        if current is not None:
            value = current
    if value is None:
        return None
    return "".join(value).rstrip("\r\n"), len(text[:position].encode("ascii", "surrogateescape"))


def _report_type(message: Message) -> str:
    if message.get_content_type() != "multipart/report":
        return ""
    return str(message.get_param("report-type", "") or "").lower()


def _dsn(message: Message) -> Finding | None:
    """RFC 3464: the per-recipient fields of the message/delivery-status part."""
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            return None
        worst: Finding | None = None
        for block in blocks:
            if not isinstance(block, Message) or not block.get("Action"):
                continue
            finding = _recipient_block(block)
            if worst is None or _rank(finding.kind) > _rank(worst.kind):
                worst = finding
        return worst
    return None


def _rank(kind: Kind) -> int:
    return {Kind.DELIVERED: 0, Kind.SOFT: 1, Kind.HARD: 2}.get(kind, 0)


def _recipient_block(block: Message) -> Finding:
    action = _header(block, "Action").lower()
    status = STATUS.search(_header(block, "Status"))
    code = status.group(0) if status else ""
    recipient = _typed_address(_header(block, "Final-Recipient")) or _typed_address(
        _header(block, "Original-Recipient")
    )
    detail = _header(block, "Diagnostic-Code") or _header(block, "Status")
    if code.endswith(".0.0") or not code:  # Exim says 5.0.0 for every failure: the remote's reply says more
        said = STATUS.search(detail)
        code = said.group(0) if said and (not code or said.group(1) == code[0]) else code
    if action == "failed":
        kind = Kind.HARD if about_the_address(code) else Kind.SOFT
    elif action == "delayed":
        kind = Kind.SOFT
    else:
        kind = Kind.DELIVERED
    return Finding(kind, recipient, code, detail[:MAX_DETAIL])


def about_the_address(code: str) -> bool:
    """Whether a permanent failure's status says the address itself is bad."""
    if not code:
        return True  # failed, and nothing more said
    klass, subject, detail = code.split(".")
    if klass != "5":
        return False
    if (subject, detail) == ("0", "0"):
        return True  # permanent, and nothing more said
    return subject == "1" or (subject == "2" and detail != "2") or (subject, detail) == ("4", "4")


def _arf(message: Message) -> Finding:
    """RFC 5965: the machine-readable part says who complained about what."""
    return _arf_part(message) or Finding(Kind.COMPLAINT, detail="feedback report without its machine-readable part")


def _arf_part(message: Message) -> Finding | None:
    for part in message.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        fields = _fields(part)
        recipient = _plain(fields.get("original-rcpt-to", ""))
        detail = fields.get("feedback-type", "abuse")
        return Finding(Kind.COMPLAINT, recipient, detail=detail[:MAX_DETAIL])
    return None


def _fields(part: Message) -> dict[str, str]:
    """The header fields of a message/feedback-report part, however the parser held them."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return {k.lower(): str(v).strip() for k, v in payload[0].items()}
    text = payload if isinstance(payload, str) else ""
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon and name.strip():
            found.setdefault(name.strip().lower(), value.strip())
    return found


def _auto_reply(message: Message) -> bool:
    """RFC 3834 and what vacation programs set beside it."""
    submitted = _header(message, "Auto-Submitted").lower()
    if submitted and not submitted.startswith("no"):
        return True
    if any(message.get(name) for name in VACATION_HEADERS):
        return True
    if _header(message, "Precedence").lower() == "auto_reply":
        return True
    return bool(AUTO_SUBJECT.match(_header(message, "Subject")))


def _fallback(message: Message) -> Finding:
    """flufl.bounce's detectors, for the bounces that follow no standard."""
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector tripping over a broken message is no reason to lose the report
        temporary, permanent = frozenset(), frozenset()
    if permanent:
        return Finding(Kind.HARD, _decoded(min(permanent)), detail=_header(message, "Subject")[:MAX_DETAIL])
    if temporary:
        return Finding(Kind.SOFT, _decoded(min(temporary)), detail=_header(message, "Subject")[:MAX_DETAIL])
    return Finding(Kind.UNKNOWN, detail=_header(message, "Subject")[:MAX_DETAIL], sender=_address(message, "From"))


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
        return " ".join(str(value).split()) if value is not None else ""
    except Exception:  # an undecodable header reads as empty
        return ""


def _address(message: Message, name: str) -> str:
    pairs = getaddresses([_header(message, name)])
    return pairs[0][1].lower() if pairs and "@" in pairs[0][1] else ""


def _typed_address(value: str) -> str:
    """``rfc822; someone@example.org`` -> the address."""
    _, _, address = value.rpartition(";")
    return _plain(address)


def _plain(value: str) -> str:
    value = value.strip()
    simple = SIMPLE_ADDRESS.fullmatch(value)  # most are: parseaddr would return it unchanged
    if simple:
        return simple.group(1).lower()
    address = parseaddr(value)[1] or value.strip("<>")
    return address.lower() if "@" in address else ""


def _decoded(address: bytes) -> str:
    return address.decode("utf-8", "replace").lower()
