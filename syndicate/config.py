"""Configuration: defaults, then ``config.toml``, checked once into one frozen object.

Every setting is a field of a frozen dataclass below, declared with
:func:`setting` (its default, a check, and the help text that the configuration
reference, ``docs/configuration.md``, repeats).
That one table drives loading, validation and the documentation test, so a
setting cannot exist without being checked and documented.

Secrets never live in the file: a key ending in ``_env`` names the environment
variable that holds the secret, and is read only when it is needed.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from syndicate.errors import ConfigError

REQUIRED: Any = object()
Check = Callable[[str, Any, "LoadContext"], Any]
T = TypeVar("T")

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*\Z")


@dataclass(frozen=True)
class LoadContext:
    """What checks need besides the value: where relative paths start."""

    root: Path


def setting(help: str, default: Any = REQUIRED, check: Check | None = None) -> Any:
    """Declare one setting: its help text, its default as written in TOML, and its check.

    The default goes through the same check as a value from the file, so a
    relative default path starts at the config folder like any other.
    """
    return field(default=None, metadata={"help": help, "default": default, "check": check})


def section(cls: type[T], help: str) -> Any:
    """Declare a nested table (``[email.smtp]``) holding settings of ``cls``."""
    return field(default=None, metadata={"help": help, "section": cls})


def table_list(cls: type[T], help: str) -> Any:
    """Declare an array of tables (``[[partners]]``) of ``cls``."""
    return field(default=(), metadata={"help": help, "table_list": cls})


# -- checks: each takes (key, raw value, context) and returns the clean value --


def _want(key: str, ok: bool, wanted: str, value: Any) -> None:
    if not ok:
        raise ConfigError(key, f"wanted {wanted}, got {value!r}")


# Every character that ends a line somewhere (a mail header, an SMTP command) or cannot be sent at all.
_BREAKS_A_LINE = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")
# What no text may hold: characters XML cannot carry (a feed with one is not XML).
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def text(key: str, value: Any, ctx: LoadContext) -> str:
    """A non-empty single-line string."""
    _want(key, isinstance(value, str) and value.strip() != "", "a non-empty string", value)
    _want(key, not _BREAKS_A_LINE.search(value), "one line without line breaks or control characters", value)
    return str(value).strip()


def any_text(key: str, value: Any, ctx: LoadContext) -> str:
    """Any string, possibly empty or multi-line, without control characters (tab and line breaks aside)."""
    _want(key, isinstance(value, str), "a string", value)
    _want(key, not _NOT_TEXT.search(value), "text without control characters", value)
    return str(value)


def one_line_text(key: str, value: Any, ctx: LoadContext) -> str:
    """A string, possibly empty, on one line: no line break or control character (it goes into a header)."""
    _want(key, isinstance(value, str), "a string", value)
    _want(key, not _BREAKS_A_LINE.search(value), "one line without line breaks or control characters", value)
    return str(value)


_DNS_NAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*"
)
_ADDRESS_LITERAL = re.compile(r"\[(?:[0-9.]{7,15}|IPv6:[0-9A-Fa-f:.]{2,45})\]")
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _matching(pattern: re.Pattern[str], wanted: str) -> Check:
    """A string ``pattern`` matches whole, or "" for the default."""

    def check(key: str, value: Any, ctx: LoadContext) -> str:
        _want(key, value == "" or (isinstance(value, str) and bool(pattern.fullmatch(value))), wanted, value)
        return str(value)

    return check


# Each goes into a header or an SMTP command as it is: nothing but the characters its grammar allows.
host_name = _matching(_DNS_NAME, "a host name like mail.example.org")
helo_name = _matching(re.compile(f"{_DNS_NAME.pattern}|{_ADDRESS_LITERAL.pattern}"), "a host name or [address]")
dot_atom = _matching(_DOT_ATOM, "a name like statements.example.org (RFC 2919)")


def boolean(key: str, value: Any, ctx: LoadContext) -> bool:
    """true or false."""
    _want(key, isinstance(value, bool), "true or false", value)
    return bool(value)


def integer(low: int, high: int | None = None) -> Check:
    """An integer in [low, high]."""

    def check(key: str, value: Any, ctx: LoadContext) -> int:
        in_range = isinstance(value, int) and not isinstance(value, bool) and value >= low
        in_range = in_range and (high is None or value <= high)
        limits = f"at least {low}" if high is None else f"between {low} and {high}"
        _want(key, in_range, f"an integer {limits}", value)
        return int(value)

    return check


def optional_integer(low: int) -> Check:
    """An integer of at least ``low``, or "" (None) for a default taken from another setting."""
    whole = integer(low)

    def check(key: str, value: Any, ctx: LoadContext) -> int | None:
        return None if value == "" else whole(key, value, ctx)

    return check


def number(low: float) -> Check:
    """A number (integer or float) of at least ``low``."""

    def check(key: str, value: Any, ctx: LoadContext) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= low
        _want(key, ok, f"a number of at least {low}", value)
        return float(value)

    return check


def choice(*options: str) -> Check:
    """One of a fixed set of strings."""

    def check(key: str, value: Any, ctx: LoadContext) -> str:
        _want(key, value in options, "one of " + ", ".join(map(repr, options)), value)
        return str(value)

    return check


def text_list(key: str, value: Any, ctx: LoadContext) -> tuple[str, ...]:
    """A list of non-empty strings."""
    ok = isinstance(value, list | tuple) and all(isinstance(v, str) and v.strip() for v in value)
    _want(key, ok, "a list of non-empty strings", value)
    return tuple(v.strip() for v in value)


def choice_list(*options: str) -> Check:
    """A non-empty list whose items are each one of ``options``, without repeats."""

    def check(key: str, value: Any, ctx: LoadContext) -> tuple[str, ...]:
        items = text_list(key, value, ctx)
        bad = [v for v in items if v not in options]
        _want(key, not bad, "a list of " + ", ".join(map(repr, options)), value)
        _want(key, bool(items) and len(set(items)) == len(items), "a non-empty list, no repeats", value)
        return items

    return check


def url(*schemes: str) -> Check:
    """An absolute URL with one of ``schemes``."""

    def check(key: str, value: Any, ctx: LoadContext) -> str:
        _want(key, isinstance(value, str), "a URL", value)
        parts = urlsplit(value)
        wanted = "an absolute " + " or ".join(schemes) + " URL"
        _want(key, parts.scheme in schemes and bool(parts.netloc), wanted, value)
        return str(value)

    return check


def url_list(*schemes: str) -> Check:
    """A list of absolute URLs."""
    one = url(*schemes)

    def check(key: str, value: Any, ctx: LoadContext) -> tuple[str, ...]:
        _want(key, isinstance(value, list | tuple), "a list of URLs", value)
        return tuple(one(f"{key}[{i}]", v, ctx) for i, v in enumerate(value))

    return check


def path(key: str, value: Any, ctx: LoadContext) -> Path:
    """A file system path; a relative one starts at the config file's folder."""
    _want(key, isinstance(value, str) and value != "", "a path", value)
    p = Path(value).expanduser()
    return p if p.is_absolute() else ctx.root / p


def timezone(key: str, value: Any, ctx: LoadContext) -> str:
    """An IANA time zone name such as Europe/Istanbul."""
    _want(key, isinstance(value, str), "an IANA time zone name", value)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(key, f"unknown time zone {value!r} (wanted e.g. 'Europe/Istanbul')") from exc
    return str(value)


def language(key: str, value: Any, ctx: LoadContext) -> str:
    """A BCP 47 language tag such as en or tr-TR."""
    _want(key, isinstance(value, str) and bool(LANGUAGE_TAG.match(value)), "a language tag like 'en'", value)
    return str(value)


def env_name(key: str, value: Any, ctx: LoadContext) -> str:
    """The name of an environment variable (the variable holds the secret); "" = unset."""
    ok = value == "" or (isinstance(value, str) and bool(ENV_NAME.match(value)))
    _want(key, ok, "the name of an environment variable (not the secret itself)", value)
    return str(value)


def required_env_name(key: str, value: Any, ctx: LoadContext) -> str:
    """The name of an environment variable that must be given."""
    _want(key, value != "", "the name of an environment variable", value)
    return env_name(key, value, ctx)


def partner_name(key: str, value: Any, ctx: LoadContext) -> str:
    """A short name: letters, digits, '.', '_' or '-'."""
    ok = isinstance(value, str) and bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", value))
    _want(key, ok, "a name of letters, digits, '.', '_' or '-' (at most 100)", value)
    return str(value)


def webhook_url(key: str, value: Any, ctx: LoadContext) -> str:
    """An https URL; plain http only to a loopback address (tests, a local relay). Its password is never echoed."""
    _want(key, isinstance(value, str), "a URL", value)
    parts = urlsplit(value)
    shown = value.replace(f":{parts.password}@", ":***@") if parts.password else value
    _want(key, parts.scheme in ("http", "https") and bool(parts.netloc), "an absolute http or https URL", shown)
    host = parts.hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, not an address
        loopback = host == "localhost"
    _want(key, parts.scheme == "https" or loopback, "an https URL (http only on loopback)", shown)
    return str(value)


def database_url(key: str, value: Any, ctx: LoadContext) -> str:
    """A SQLAlchemy URL; a relative SQLite path starts at the config file's folder.

    A bad URL is reported without its password: it may have come from the environment.
    """
    if isinstance(value, str) and "@" in value:
        shown = re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", value)
        if not value.startswith(("sqlite", "postgresql")):
            raise ConfigError(key, f"wanted a sqlite:/// or postgresql:// URL, got {shown!r}")
    _want(key, isinstance(value, str) and "://" in value, "a database URL like sqlite:///syndicate.db", value)
    scheme = value.split("://", 1)[0]
    ok = scheme == "sqlite" or scheme.startswith("postgresql")
    _want(key, ok, "a sqlite:/// or postgresql:// URL", value)
    if scheme == "sqlite" and value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
        relative = value.removeprefix("sqlite:///")
        if relative and relative != ":memory:":
            return f"sqlite:///{ctx.root / relative}"
    return str(value)


def clock_time(key: str, value: Any, ctx: LoadContext) -> str:
    """A time of day, "HH:MM" (24-hour)."""
    ok = isinstance(value, str) and bool(re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value))
    _want(key, ok, 'a time of day like "08:00"', value)
    return str(value)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def weekly_time(key: str, value: Any, ctx: LoadContext) -> str:
    """A weekday and a time of day, "mon 08:00"."""
    ok = isinstance(value, str) and len(value.split()) == 2 and value.split()[0].lower() in WEEKDAYS
    _want(key, ok, 'a weekday and time like "mon 08:00"', value)
    day, time_of_day = value.split()
    return f"{day.lower()} {clock_time(key, time_of_day, ctx)}"


def email_address(key: str, value: Any, ctx: LoadContext) -> str:
    """An e-mail address (ASCII), or "" for the default."""
    ok = value == "" or (
        isinstance(value, str) and value.isascii() and bool(re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", value))
    )
    _want(key, ok, "an e-mail address like news@example.org", value)
    return str(value)


def email_list(key: str, value: Any, ctx: LoadContext) -> tuple[str, ...]:
    """A list of e-mail addresses."""
    return tuple(email_address(key, item, ctx) for item in text_list(key, value, ctx))


def host_port(key: str, value: Any, ctx: LoadContext) -> str:
    """A "host:port" to listen on; port 0 lets the system choose."""
    found = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})", value) if isinstance(value, str) else None
    _want(key, found is not None and int(found.group(2)) <= 65535, 'a "host:port" like "127.0.0.1:8080"', value)
    return str(value)


def optional_path(key: str, value: Any, ctx: LoadContext) -> Path | None:
    """A path, or "" for none."""
    return None if value == "" else path(key, value, ctx)


# -- the settings, section by section --


@dataclass(frozen=True)
class SiteConfig:
    """``[site]``: who publishes, and the terms every copy carries."""

    title: str = setting("Name of the organisation; feed title and mail sender name.", check=text)
    url: str = setting("Public home page; canonical links default to pages under it.", check=url("http", "https"))
    language: str = setting("Default language of statements (BCP 47 tag).", "en", language)
    timezone: str = setting("Time zone for front-matter times without one, and digests.", "UTC", timezone)
    author: str = setting("Default author of statements (defaults to the title).", "", any_text)
    rights: str = setting("Rights text carried by every feed entry and partner push.", "", any_text)
    pages: bool = setting(
        "Write and serve the statements' own pages (false: your CMS has them at each canonical_url).", True, boolean
    )
    dir: Path = setting("Folder the pages are written to (with pages = true).", "site", path)
    per_page: int = setting("Statements on each page of an index (keep it once archive pages exist).", 20,
                            integer(1, 500))  # fmt: skip

    @property
    def tz(self) -> ZoneInfo:
        """The site's time zone."""
        return ZoneInfo(self.timezone)

    @property
    def host(self) -> str:
        """Host name of the site URL, the authority of every ``tag:`` id."""
        return urlsplit(self.url).hostname or "localhost"

    @property
    def domain(self) -> str:
        """The site's mail domain: its host without a leading ``www.``."""
        return self.host.removeprefix("www.")


@dataclass(frozen=True)
class SourceConfig:
    """``[source]``: where statements come from."""

    type: str = setting(
        "'files' (a folder of Markdown/HTML) or 'feed' (an RSS/Atom URL).", "files", choice("files", "feed")
    )
    path: Path = setting("Folder of statement files (type = 'files').", "statements", path)
    url: str = setting("Feed to ingest (type = 'feed').", "", any_text)
    timeout_seconds: float = setting(
        "Longest wait for the feed's server at each step of a fetch (connecting, each read).", 10.0, number(0.1)
    )
    deadline_seconds: float = setting(
        "Longest a whole feed fetch may take, redirects included; a slower one is cut off there and fails.",
        60.0,
        number(0.1),
    )
    max_feed_bytes: int = setting(
        "Largest feed read, counted after decompression; reading stops there, the fetch fails and the last"
        " good state is kept.",
        20_000_000,
        integer(1),
    )
    redirect_origins: tuple[str, ...] = setting(
        "Other sites the feed may redirect to, as URLs whose scheme, host and port count; a redirect to any"
        " other origin than source.url's is refused.",
        (),
        url_list("http", "https"),
    )
    max_bytes: int = setting(
        "Largest statement file read; bigger files are reported and skipped.", 1_000_000, integer(1)
    )


@dataclass(frozen=True)
class DatabaseConfig:
    """``[database]``: the store."""

    url: str = setting(
        "SQLAlchemy URL: sqlite:///file.db (beside config.toml) or postgresql://...",
        "sqlite:///syndicate.db",
        database_url,
    )
    url_env: str = setting("Environment variable holding the URL instead (for passwords).", "", env_name)


@dataclass(frozen=True)
class FeedsConfig:
    """``[feeds]``: the feed files written."""

    dir: Path = setting("Folder the feeds are written to.", "feeds", path)
    base_url: str = setting("Public URL of that folder (default: site.url + /feeds/).", "", any_text)
    items: int = setting(
        "Entries per feed document and per archive page (keep it once archive pages exist).", 50, integer(1, 1000)
    )
    formats: tuple[str, ...] = setting(
        "Formats to write: 'atom', 'rss', 'json'.", ("atom", "rss", "json"), choice_list("atom", "rss", "json")
    )
    by_language: bool = setting("Also write one feed per language.", True, boolean)
    by_category: bool = setting("Also write one feed per category.", True, boolean)
    full_content: bool = setting("Entries carry the full text (false: the summary only).", True, boolean)
    hubs: tuple[str, ...] = setting(
        "WebSub hub URLs to announce and ping after a feed changes.", (), url_list("http", "https")
    )


@dataclass(frozen=True)
class SchedulerConfig:
    """``[scheduler]``: the daemon's rhythm."""

    poll_seconds: int = setting("Seconds between ticks of the daemon.", 60, integer(1))
    lease_seconds: int = setting(
        "How long a claimed delivery stays reserved for its node before others may take it.", 120, integer(1)
    )


@dataclass(frozen=True)
class OutboxConfig:
    """``[outbox]``: how long settled deliveries are kept."""

    keep_days: int = setting(
        "Days a sent or cancelled delivery is kept after it settled; older ones are folded into the hourly"
        " rollups (the console's figures stay the same) and removed. Failed and unknown ones, and those a"
        " report came back for, are kept until the operator settles them.",
        90,
        integer(30, 36500),
    )
    remove_per_tick: int = setting("At most this many old deliveries removed per tick (in batches).", 100_000,
                                   integer(1000))  # fmt: skip


@dataclass(frozen=True)
class _ServerFields:
    """What reaching one mail server takes: shared by ``[email.smtp]`` and each ``[[email.relays]]``."""

    host: str = setting("Mail server host.", "127.0.0.1", text)
    port: int = setting("Mail server port.", 25, integer(1, 65535))
    security: str = setting(
        "'none', 'starttls' or 'tls' (implicit TLS, usually port 465).", "none", choice("none", "starttls", "tls")
    )
    username_env: str = setting("Environment variable holding the SMTP user name (no login if unset).", "", env_name)
    password_env: str = setting("Environment variable holding the SMTP password.", "", env_name)
    connections: int = setting(
        "Connections kept open and used at once (reused, not one per message).", 4, integer(1, 64)
    )
    rate: float = setting(
        "Messages per second at most, over all connections of one node (0 = unlimited).", 0.0, number(0)
    )
    timeout_seconds: float = setting("Seconds to wait for the server at each step.", 30.0, number(0.1))
    helo: str = setting("Name given in EHLO (default: the host name of site.url).", "", helo_name)


@dataclass(frozen=True)
class SmtpConfig(_ServerFields):
    """``[email.smtp]``: the mail server (transport = "smtp"), when no ``[[email.relays]]`` are given."""

    sending_process: bool = setting(
        "Talk SMTP from a child process, so composing and sending use two cores (false: one process).", True, boolean
    )


@dataclass(frozen=True)
class RelayConfig(_ServerFields):
    """``[[email.relays]]``: one of several mail servers the newsletters are spread over."""

    name: str = setting(
        "The relay's name, unique; shown by status and chosen by send-test --relay.", check=partner_name
    )
    weight: float = setting("Share of the messages this relay takes while every relay is up.", 1.0, number(0.01))
    daily_limit: int = setting(
        "Messages this relay may take in any 24 hours (a provider's quota; 0 = none), counted in the database"
        " across restarts and nodes.",
        0,
        integer(0),
    )


@dataclass(frozen=True)
class DigestConfig:
    """``[email.digest]``: when digests go out, in the site's time zone."""

    daily: str = setting("Time of the daily digest.", "08:00", clock_time)
    weekly: str = setting("Day and time of the weekly digest.", "mon 08:00", weekly_time)


@dataclass(frozen=True)
class DkimConfig:
    """``[email.dkim]``: optional DKIM signing (all three set to sign, none to send unsigned)."""

    selector: str = setting("DKIM selector of the RSA key.", "", host_name)
    domain: str = setting("DKIM signing domain (d=).", "", host_name)
    key_file: Path | None = setting(
        "PEM file of the RSA private key, at least 1024 bits (keep it out of git).", "", optional_path
    )
    algorithms: tuple[str, ...] = setting(
        "Signatures on every message: 'rsa-sha256', optionally with 'ed25519-sha256' beside it (RFC 8463).",
        ("rsa-sha256",),
        choice_list("rsa-sha256", "ed25519-sha256"),
    )
    ed25519_selector: str = setting("DKIM selector of the Ed25519 key (its own DNS record).", "", host_name)
    ed25519_key_file: Path | None = setting(
        "PEM (or dknewkey base64) file of the Ed25519 private key.", "", optional_path
    )

    @property
    def enabled(self) -> bool:
        """Whether mail is signed."""
        return bool(self.selector and self.domain and self.key_file)


@dataclass(frozen=True)
class EmailConfig:
    """``[email]``: newsletters."""

    transport: str = setting("'file' (write .eml files to email.outbox) or 'smtp'.", "file", choice("file", "smtp"))
    outbox: Path = setting("Folder the file transport writes messages to.", "outbox", path)
    from_address: str = setting("Sender address (default: newsletter@ the host of site.url).", "", email_address)
    from_name: str = setting("Sender name (default: site.title).", "", one_line_text)
    reply_to: str = setting("Reply-To address, if any.", "", email_address)
    list_id: str = setting("List-Id (default: statements.<host of site.url>).", "", dot_atom)
    unsubscribe_mailto: str = setting(
        "Address in the mailto: List-Unsubscribe link (default: unsubscribe@ the host).", "", email_address
    )
    return_path: str = setting(
        "Envelope sender; each message's names its delivery, signed (bounces+ID.TAG@...), so reports"
        " map back to it (default: the From address, unsigned).",
        "",
        email_address,
    )
    resend_updates: bool = setting("Mail a statement again when it is updated.", False, boolean)
    max_age_days: int = setting(
        "Statements published longer ago than this are not mailed (a backfill does not flood the list).", 7, integer(0)
    )
    batch: int = setting(
        "Deliveries claimed and queued for a connection at once (a crash leaves at most 2 per connection unknown).",
        50,
        integer(1, 10000),
    )
    smtp: SmtpConfig = section(SmtpConfig, "The mail server.")
    relays: tuple[RelayConfig, ...] = table_list(
        RelayConfig, "Several mail servers, messages spread over them by weight (instead of [email.smtp])."
    )
    digest: DigestConfig = section(DigestConfig, "Digest times.")
    dkim: DkimConfig = section(DkimConfig, "DKIM signing.")


@dataclass(frozen=True)
class ImapConfig:
    """``[inbound.imap]``: a mailbox on an IMAP server read for reports on each tick."""

    host: str = setting('IMAP server host ("": none).', "", any_text)
    port: int = setting("IMAP server port (993 for implicit TLS, 143 for STARTTLS).", 993, integer(1, 65535))
    security: str = setting("'tls' (implicit TLS) or 'starttls': the mailbox is never read in the clear.", "tls",
                            choice("tls", "starttls"))  # fmt: skip
    username_env: str = setting("Environment variable holding the IMAP user name.", "", env_name)
    password_env: str = setting("Environment variable holding the IMAP password.", "", env_name)
    ca_file: Path | None = setting(
        'Certificates (PEM) to trust for the server, for a private CA ("": the system\'s).', "", optional_path
    )
    folder: str = setting("The folder reports arrive in.", "INBOX", one_line_text)
    done: str = setting("The folder processed mail is moved to (made if missing).", "Processed", one_line_text)
    timeout_seconds: float = setting("Seconds to wait for the server at each step.", 30.0, number(0.1))


@dataclass(frozen=True)
class InboundConfig:
    """``[inbound]``: hearing back: bounces, complaints and mailto unsubscribes."""

    bind: str = setting(
        'Address the inbound SMTP (or LMTP) listener serves in `syndicate run` ("": none; see `inbound serve`).',
        "",
        lambda key, value, ctx: "" if value == "" else host_port(key, value, ctx),
    )
    lmtp: bool = setting("Speak LMTP instead of SMTP (for an MTA that hands mail over by LMTP).", False, boolean)
    addresses: tuple[str, ...] = setting(
        "Further addresses the listener accepts mail for (a feedback-loop address, say).", (), email_list
    )
    max_message_bytes: int = setting("Largest report accepted.", 10_000_000, integer(10_000))
    maildir: Path | None = setting('A Maildir read for reports on each tick ("": none).', "", optional_path)
    maildir_done: str = setting("The Maildir's folder processed mail is moved to.", "Processed", one_line_text)
    ses_topics: tuple[str, ...] = setting(
        "Amazon SNS topic ARNs whose SES notifications are taken at POST /hooks/ses (their subscriptions are"
        " confirmed; none: not served).",
        (),
        text_list,
    )
    postmark_auth_env: str = setting(
        "Environment variable holding the user:password written in Postmark's webhook URL: events are taken at"
        ' POST /hooks/postmark ("": not served).',
        "",
        env_name,
    )
    sendgrid_key_env: str = setting(
        "Environment variable holding SendGrid's Event Webhook verification key (its public key): events are"
        ' taken at POST /hooks/sendgrid ("": not served).',
        "",
        env_name,
    )
    mailgun_key_env: str = setting(
        "Environment variable holding Mailgun's HTTP webhook signing key: events are taken at POST /hooks/mailgun"
        ' ("": not served).',
        "",
        env_name,
    )
    imap: ImapConfig = section(ImapConfig, "An IMAP mailbox read on each tick.")
    soft_limit: int = setting("Soft bounces within soft_window_days that suppress an address.", 3, integer(1))
    soft_window_days: int = setting("The window soft bounces are counted in.", 15, integer(1))


@dataclass(frozen=True)
class AdminConfig:
    """``[admin]``: the operator's console at /admin and its JSON API at /api/v1."""

    enabled: bool = setting("Serve the console and the API (accounts: `syndicate admin add-user`).", True, boolean)
    idle_minutes: int = setting("A console session ends after this long without a request.", 30, integer(1, 1440))
    session_hours: int = setting("A console session ends this long after its login, however busy.", 12, integer(1, 168))
    lockout_attempts: int = setting("Failed logins in a row that lock an account.", 5, integer(1, 100))
    lockout_minutes: int = setting("How long a locked account stays locked.", 15, integer(1, 10080))
    client_attempts: int = setting(
        "Failed logins from one client address, within lockout_minutes, after which it may not try again.",
        20,
        integer(1, 10000),
    )


def username(key: str, value: Any, ctx: LoadContext) -> str:
    """A fediverse user name: letters, digits and underscores, as Mastodon allows them."""
    _want(key, isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_]{1,30}", value) is not None,
          "a name of letters, digits and underscores (at most 30)", value)  # fmt: skip
    return str(value)


@dataclass(frozen=True)
class FediverseConfig:
    """``[fediverse]``: the organisation as an ActivityPub actor that Mastodon and its peers can follow."""

    enabled: bool = setting("Serve the actor, WebFinger and NodeInfo (followers get each statement).", False, boolean)
    username: str = setting("The actor's name: followed as @username@ the web server's host.", "news", username)
    display_name: str = setting("The name followers see (default: site.title).", "", any_text)
    summary: str = setting("A line about the organisation, on its profile.", "", any_text)
    icon: str = setting("URL of the profile picture (PNG or JPEG; none: no picture).", "", any_text)
    license: str = setting(
        "What followers get of each statement: 'excerpt' (as the organisation's terms allow) or 'full'.",
        "excerpt",
        choice("excerpt", "full"),
    )
    excerpt_words: int = setting("Words of a statement an excerpt carries.", 60, integer(10, 1000))
    allow_private_addresses: bool = setting(
        "Let URLs from other servers' requests reach loopback and private addresses: for tests on one machine "
        "only (it opens syndicate's own network to strangers).",
        False,
        boolean,
    )


@dataclass(frozen=True)
class WebConfig:
    """``[web]``: the subscriber pages and feed server (syndicate serve)."""

    bind: str = setting("Address the web server listens on.", "127.0.0.1:8080", host_port)
    base_url: str = setting(
        "Public URL of the web server; links in mail point here (default: http:// + bind).", "", any_text
    )
    secret_env: str = setting(
        "Environment variable holding the secret that signs links (unset: one is made and kept in the database).",
        "SYNDICATE_SECRET",
        env_name,
    )
    previous_secrets_env: str = setting(
        "Environment variable holding earlier secrets, comma-separated, still accepted.", "", env_name
    )
    serve_in_run: bool = setting(
        "Serve the web pages inside `syndicate run` of roles all and scheduler (a worker only with --web;"
        " false: run `syndicate serve` on its own).",
        True,
        boolean,
    )
    threads: int = setting("Threads answering web requests.", 8, integer(1, 256))
    proxy_hops: int = setting(
        "Reverse proxies in front whose X-Forwarded-For/-Proto/-Host/-Prefix are believed (0: none).",
        0,
        integer(0, 10),
    )
    subscribe_per_client: int = setting(
        "Subscribe requests one client address may make per rate_window_seconds (counted per process).",
        10,
        integer(1),
    )
    subscribe_per_address: int = setting(
        "Subscribe requests for one e-mail address per rate_window_seconds (counted per process).", 3, integer(1)
    )
    rate_window_seconds: int = setting("The window of the two subscribe limits.", 3600, integer(1))
    health_overdue_seconds: int = setting(
        "/healthz fails when a delivery has been due for longer than this (0: never).", 3600, integer(0)
    )


@dataclass(frozen=True)
class TemplatesConfig:
    """``[templates]``: where the Jinja2 templates live."""

    dir: Path = setting("Folder of templates (feeds/, email/, web/, site/).", "templates", path)


@dataclass(frozen=True)
class PartnerDefaultsConfig:
    """``[partner_defaults]``: what each ``[[partners]]`` table gets unless it says otherwise.

    A table of its own, because ``[[partners]]`` is an array of tables: TOML has no
    room for a ``partners.max_age_days`` beside it.
    """

    max_age_days: int = setting(
        "Statements published longer ago than this are not pushed when first seen (a backfill does not"
        " flood partners); updates and retractions still reach partners that got the statement.",
        7,
        integer(1),
    )


@dataclass(frozen=True)
class PartnerConfig:
    """``[[partners]]``: a partner site that gets each statement, update and retraction pushed, signed."""

    name: str = setting("The partner's name, unique; used by commands and in the outbox.", check=partner_name)
    url: str = setting("Webhook endpoint the pushes are POSTed to (https; http only on loopback).", check=webhook_url)
    secret_env: str = setting(
        "Environment variable holding the signing secret (Standard Webhooks whsec_... form).", check=required_env_name
    )
    previous_secret_env: str = setting(
        "Environment variable holding the previous secret while the partner rotates keys (both sign).", "", env_name
    )
    license: str = setting(
        "'excerpt' (the first words and a link) or 'full' (the whole text).", "excerpt", choice("excerpt", "full")
    )
    excerpt_words: int = setting("Most words of an excerpt.", 60, integer(1, 10000))
    languages: tuple[str, ...] = setting("Only statements in these languages (empty: all).", (), text_list)
    categories: tuple[str, ...] = setting("Only statements in one of these categories (empty: all).", (), text_list)
    format: str = setting("Payload: 'atom' (an Atom entry document) or 'json'.", "atom", choice("atom", "json"))
    timeout_seconds: float = setting("Connect and read timeout of each push.", 10.0, number(0.1))
    max_age_days: int | None = setting(
        "Days after publication a statement is still pushed to this partner when first seen (empty:"
        " partner_defaults.max_age_days).",
        "",
        optional_integer(1),
    )


@dataclass(frozen=True)
class Config:
    """The whole checked configuration; built once, passed down, never changed."""

    root: Path
    site: SiteConfig = section(SiteConfig, "Who publishes.")
    source: SourceConfig = section(SourceConfig, "Where statements come from.")
    database: DatabaseConfig = section(DatabaseConfig, "The store.")
    feeds: FeedsConfig = section(FeedsConfig, "The feed files.")
    scheduler: SchedulerConfig = section(SchedulerConfig, "The daemon's rhythm.")
    outbox: OutboxConfig = section(OutboxConfig, "How long settled deliveries are kept.")
    templates: TemplatesConfig = section(TemplatesConfig, "Template folder.")
    email: EmailConfig = section(EmailConfig, "Newsletters.")
    web: WebConfig = section(WebConfig, "Web pages.")
    inbound: InboundConfig = section(InboundConfig, "Bounces, complaints and mailto unsubscribes.")
    admin: AdminConfig = section(AdminConfig, "The operator's console and its API.")
    fediverse: FediverseConfig = section(FediverseConfig, "The organisation on Mastodon and its peers.")
    partner_defaults: PartnerDefaultsConfig = section(PartnerDefaultsConfig, "Defaults of every partner.")
    partners: tuple[PartnerConfig, ...] = table_list(PartnerConfig, "Partner sites statements are pushed to.")

    @property
    def site_at_root(self) -> bool:
        """Whether the site's pages are served with their front page at ``/`` (``site.url`` has no path)."""
        return self.site.pages and urlsplit(self.site.url).path.rstrip("/") == ""

    @property
    def feeds_base_url(self) -> str:
        """Public URL of the feeds folder, always ending in a slash."""
        base = self.feeds.base_url or self.site.url.rstrip("/") + "/feeds/"
        return base if base.endswith("/") else base + "/"

    @property
    def mail_relays(self) -> tuple[RelayConfig, ...]:
        """The mail servers to send through: ``[[email.relays]]``, or ``[email.smtp]`` as the one relay "smtp"."""
        if self.email.relays:
            return self.email.relays
        smtp = self.email.smtp
        fields = {f.name: getattr(smtp, f.name) for f in dataclasses.fields(_ServerFields)}
        return (RelayConfig(name="smtp", weight=1.0, daily_limit=0, **fields),)

    @property
    def heartbeat_seconds(self) -> float:
        """How often a node beats: often enough that its leases never run out while it lives."""
        return min(10.0, self.scheduler.lease_seconds / 3)

    @property
    def web_base_url(self) -> str:
        """Public URL of syndicate's web server, without a trailing slash."""
        return (self.web.base_url or f"http://{self.web.bind}").rstrip("/")

    @property
    def sender(self) -> tuple[str, str]:
        """(name, address) mail comes from."""
        return self.email.from_name or self.site.title, self.email.from_address or f"newsletter@{self.site.domain}"

    @property
    def unsubscribe_address(self) -> str:
        """Where the mailto: of List-Unsubscribe points."""
        return self.email.unsubscribe_mailto or f"unsubscribe@{self.site.domain}"

    def partner_max_age_days(self, partner: PartnerConfig) -> int:
        """How many days old a statement may be when first seen and still be pushed to ``partner``."""
        own = partner.max_age_days
        return self.partner_defaults.max_age_days if own is None else own

    def secret(self, env_key: str, variable: str) -> str:
        """Read the secret held by ``variable``; ``env_key`` names the setting."""
        value = os.environ.get(variable, "")
        if not value:
            raise ConfigError(env_key, f"environment variable {variable} is not set")
        return value

    def database_url(self) -> str:
        """The database URL, read from the environment when ``url_env`` is set."""
        if self.database.url_env:
            raw = self.secret("database.url_env", self.database.url_env)
            return database_url("database.url_env", raw, LoadContext(self.root))
        return self.database.url


# -- loading --


def load(path: Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read ``path`` (TOML), apply ``overrides`` ({"feeds.dir": ...}) and check it all."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(str(path), "file not found (use --config or SYNDICATE_CONFIG)") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    return from_mapping(raw, path.resolve().parent)


def from_mapping(raw: Mapping[str, Any], root: Path) -> Config:
    """Check a parsed TOML document and build the frozen :class:`Config`."""
    ctx = LoadContext(root)
    values = _load_section(Config, raw, "", ctx, skip=("root",))
    config = Config(root=root, **values)
    _check_across(config)
    return config


def _load_section(
    cls: type[Any], raw: Any, prefix: str, ctx: LoadContext, skip: tuple[str, ...] = ()
) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(prefix.rstrip(".") or "(top)", f"wanted a table, got {raw!r}")
    fields = [f for f in dataclasses.fields(cls) if f.name not in skip]
    _reject_unknown(raw, [f.name for f in fields], prefix)
    return {f.name: _load_field(f, raw, prefix, ctx) for f in fields}


def _load_field(f: dataclasses.Field[Any], raw: Mapping[str, Any], prefix: str, ctx: LoadContext) -> Any:
    key = prefix + f.name
    if "section" in f.metadata:
        sub = f.metadata["section"]
        return sub(**_load_section(sub, raw.get(f.name, {}), key + ".", ctx))
    if "table_list" in f.metadata:
        return _load_table_list(f.metadata["table_list"], raw.get(f.name, []), key, ctx)
    value = raw.get(f.name, f.metadata["default"])
    if value is REQUIRED:
        raise ConfigError(key, "is required")
    return f.metadata["check"](key, value, ctx)


def _load_table_list(cls: type[Any], raw: Any, key: str, ctx: LoadContext) -> tuple[Any, ...]:
    if not isinstance(raw, list):
        raise ConfigError(key, f"wanted an array of tables ([[{key}]]), got {raw!r}")
    return tuple(cls(**_load_section(cls, item, f"{key}[{i}].", ctx)) for i, item in enumerate(raw))


def _reject_unknown(raw: Mapping[str, Any], known: list[str], prefix: str) -> None:
    for name in raw:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {prefix}{close[0]}?" if close else f"; known keys: {', '.join(known)}"
            raise ConfigError(prefix + name, "unknown key" + hint)


def _check_across(config: Config) -> None:
    """Rules that involve more than one setting."""
    _check_dkim(config.email.dkim)
    names = [partner.name for partner in config.partners]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(f"partners[{index}].name", f"{name!r} is already the name of another partner")
    relays = [relay.name for relay in config.email.relays]
    for index, name in enumerate(relays):
        if name in relays[:index]:
            raise ConfigError(f"email.relays[{index}].name", f"{name!r} is already the name of another relay")
    if config.site.pages:
        _check_site_dir(config)
    if config.source.type == "feed":
        url("http", "https")("source.url", config.source.url, LoadContext(config.root))
    if config.feeds.base_url:
        url("http", "https")("feeds.base_url", config.feeds.base_url, LoadContext(config.root))
    if config.fediverse.icon:
        url("http", "https")("fediverse.icon", config.fediverse.icon, LoadContext(config.root))
    if config.web.base_url:
        url("http", "https")("web.base_url", config.web.base_url, LoadContext(config.root))


def _check_site_dir(config: Config) -> None:
    """The pages' folder shares nothing with the statements or the templates: a page written there would be read
    back as a statement (or overwrite one), and a source file there could pass for a page."""
    site = config.site.dir.resolve()
    others = {"templates.dir": config.templates.dir}
    if config.source.type == "files":
        others["source.path"] = config.source.path
    for key, folder in others.items():
        other = folder.resolve()
        if site == other or site.is_relative_to(other) or other.is_relative_to(site):
            raise ConfigError("site.dir", f"{config.site.dir} overlaps {key} ({folder}): give the pages a folder of "
                                          "their own, such as site")  # fmt: skip


def _check_dkim(dkim: DkimConfig) -> None:
    """Half a DKIM table would send unsigned mail while the operator thinks it is signed."""
    given = {"selector": dkim.selector, "domain": dkim.domain, "key_file": dkim.key_file}
    missing = [name for name, value in given.items() if not value]
    if 0 < len(missing) < len(given):
        wanted = "selector, domain and key_file all set to sign (or none, to send unsigned)"
        raise ConfigError(f"email.dkim.{missing[0]}", f"is missing: wanted {wanted}")
    if "rsa-sha256" not in dkim.algorithms:
        raise ConfigError("email.dkim.algorithms", "must hold 'rsa-sha256': most receivers verify no other")
    ed25519 = "ed25519-sha256" in dkim.algorithms
    if ed25519 and dkim.enabled and not (dkim.ed25519_selector and dkim.ed25519_key_file):
        raise ConfigError(
            "email.dkim.ed25519_selector", "ed25519_selector and ed25519_key_file are needed to sign with ed25519"
        )
    if ed25519 and dkim.ed25519_selector == dkim.selector:
        raise ConfigError("email.dkim.ed25519_selector", "must differ from selector: each key has its own record")


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for name in parents:
        raw = raw.setdefault(name, {})
    raw[last] = value


def documented_settings(cls: type[Any] = Config, prefix: str = "") -> Iterator[tuple[str, Any, str]]:
    """Every setting as (dotted key, default, help), for docs and their test."""
    for f in dataclasses.fields(cls):
        if "section" in f.metadata:
            yield from documented_settings(f.metadata["section"], f"{prefix}{f.name}.")
        elif "table_list" in f.metadata:
            yield from documented_settings(f.metadata["table_list"], f"{prefix}{f.name}[].")
        elif "help" in f.metadata:
            default = f.metadata["default"]
            yield prefix + f.name, None if default is REQUIRED else default, f.metadata["help"]


def reference() -> str:
    """The Markdown table of every setting, as docs/configuration.md carries it (a test keeps them equal)."""
    lines = ["| key | default | what it does |", "|---|---|---|"]
    for key, default, help_text in documented_settings():
        shown = "required" if default is None else f"`{_toml_literal(default)}`"
        lines.append(f"| `{key}` | {shown} | {help_text} |")
    return "\n".join(lines) + "\n"


def _toml_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_literal(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def update_reference(page: Path) -> None:
    """Rewrite the settings table between the ``settings-reference`` markers of ``page``."""
    text = page.read_text(encoding="utf-8")
    start = text.index("\n", text.index("<!-- settings-reference")) + 1
    end = text.index("<!-- /settings-reference -->")
    page.write_text(text[:start] + reference() + text[end:], encoding="utf-8")


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--update"]:
        update_reference(Path(sys.argv[2] if len(sys.argv) > 2 else "docs/configuration.md"))
    else:
        print(reference(), end="")
