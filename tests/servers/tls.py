"""A throwaway TLS certificate for loopback servers (STARTTLS, SMTPS, HTTPS).

The `cryptography` package is not installed in the project's venv, so the certificate
is made with the openssl command line tool, once per process.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class SelfSignedCertificate:
    """A throwaway certificate for localhost, 127.0.0.1 and ::1."""

    cert_pem: bytes
    key_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting this certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # load_cert_chain only reads files, so the PEMs visit a private directory
        with tempfile.TemporaryDirectory(prefix="smtp-cert-") as tmp:
            cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
            cert.write_bytes(self.cert_pem)
            key.write_bytes(self.key_pem)
            context.load_cert_chain(cert, key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this certificate."""
        return ssl.create_default_context(cadata=self.cert_pem.decode("ascii"))


@cache
def self_signed_certificate() -> SelfSignedCertificate:
    """Make (once per process) a certificate with the openssl command line tool."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("a test certificate needs the openssl command line tool, which is not on PATH")
    with tempfile.TemporaryDirectory(prefix="smtp-cert-") as tmp:
        cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return SelfSignedCertificate(cert.read_bytes(), key.read_bytes())
