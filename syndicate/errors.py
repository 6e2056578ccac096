"""The exceptions syndicate raises, and what each one means.

    SyndicateError                 anything syndicate reports to the operator
     ├── ConfigError               config.toml is wrong: names the key and what is wanted
     ├── SourceError               a statement source could not be read (feed down, malformed)
     ├── StoreError                the database is unusable (unknown schema, failed upgrade)
     └── TemplateError             a Jinja2 template does not parse or render

Third-party errors are translated where they enter (``raise ... from exc``) so
the CLI can print one clear line without a traceback.
"""

from __future__ import annotations


class SyndicateError(Exception):
    """Base of every error syndicate reports to the operator."""


class ConfigError(SyndicateError):
    """A configuration value is missing, unknown or of the wrong form."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config: {key}: {message}")
        self.key = key
        self.reason = message


class SourceError(SyndicateError):
    """A statement source could not be read; the last good state is kept."""


class StoreError(SyndicateError):
    """The database cannot be used as it is."""


class TemplateError(SyndicateError):
    """A template does not parse or does not render."""
