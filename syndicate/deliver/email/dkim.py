"""DKIM signing of finished mail (optional): the signature covers both unsubscribe headers."""

from __future__ import annotations

import dkim

from syndicate.config import DkimConfig
from syndicate.errors import ConfigError

SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
)


class Signer:
    """DKIM-signs a finished message; the signature covers both unsubscribe headers."""

    def __init__(self, selector: str, domain: str, key: bytes) -> None:
        self.selector = selector.encode()
        self.domain = domain.encode()
        self.key = key

    @classmethod
    def from_settings(cls, settings: DkimConfig) -> Signer:
        """The signer ``[email.dkim]`` describes; a key that cannot sign is found now, not at the first message."""
        assert settings.key_file is not None
        try:
            signer = cls(settings.selector, settings.domain, settings.key_file.read_bytes())
            signer.sign(b"From: check@" + signer.domain + b"\r\n\r\n")
        except OSError as exc:
            raise ConfigError("email.dkim.key_file", f"cannot read {settings.key_file}: {exc.strerror}") from exc
        except dkim.DKIMException as exc:
            raise ConfigError("email.dkim.key_file", f"{settings.key_file} is not a usable private key: {exc}") from exc
        return signer

    @property
    def settings(self) -> tuple[str, str, bytes]:
        """Plain values that make this signer again (in the sending process)."""
        return self.selector.decode(), self.domain.decode(), self.key

    def sign(self, message: bytes) -> bytes:
        """``message`` with a DKIM-Signature header in front."""
        headers = [h.encode() for h in SIGNED_HEADERS]
        signature: bytes = dkim.sign(message, self.selector, self.domain, self.key, include_headers=headers)
        return signature + message
