"""A real IMAP server on loopback: Dovecot (Debian's dovecot-imapd), a private instance per test.

Its configuration, mail and sockets live in a temporary directory; it listens
on 127.0.0.1 with implicit TLS and STARTTLS (the throwaway certificate of
tls.py), refuses logins in the clear, and knows one user. Mail is put into
its INBOX with imaplib's APPEND, as another client would.
"""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from servers.tls import self_signed_certificate

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
ssl_cipher_list = ECDHE+AESGCM:ECDHE+CHACHA20
disable_plaintext_auth = yes
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {starttls}
  }}
  inet_listener imaps {{
    port = {tls}
    ssl = yes
  }}
}}
"""


def available() -> bool:
    """Whether Dovecot is installed here."""
    return os.access(DOVECOT, os.X_OK)


def _nobody() -> tuple[int, int]:
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DovecotServer:
    """Dovecot on two loopback ports (``tls_port``: implicit TLS; ``starttls_port``), with one user."""

    def __init__(self, user: str = "bounces", password: str = "s3cret-imap-pass") -> None:
        self.user, self.password = user, password
        self._dir = tempfile.TemporaryDirectory(prefix="dovecot-")
        self.root = Path(self._dir.name)
        self.tls_port, self.starttls_port = _free_port(), _free_port()
        self.certificate = self_signed_certificate()
        self.ca_file = self.root / "cert.pem"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        root = self.root
        (root / "cert.pem").write_bytes(self.certificate.cert_pem)
        (root / "key.pem").write_bytes(self.certificate.key_pem)
        (root / "key.pem").chmod(0o600)
        (root / "users").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        root.chmod(0o711)  # Dovecot's auth process runs as its own user and reads the users file
        # Dovecot keeps mail as a user other than root: as root, that is nobody; else this user.
        uid, gid = (os.getuid(), os.getgid()) if os.getuid() != 0 else _nobody()
        for folder in ("run", "state", "mail", "home"):
            (root / folder).mkdir()
        for folder in ("mail", "home"):
            os.chown(root / folder, uid, gid)
        config = CONFIG.format(root=root, uid=uid, gid=gid, tls=self.tls_port, starttls=self.starttls_port)
        if os.getuid() != 0:  # not root: Dovecot cannot change users, every process runs as this one
            name, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
            config += f"default_internal_user = {name}\ndefault_login_user = {name}\ndefault_internal_group = {group}\n"
        (root / "dovecot.conf").write_text(config)
        self._process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(root / "dovecot.conf")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.tls_port), timeout=1):
                    break
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"dovecot did not start: {self.log()}") from None
                time.sleep(0.05)
        return self

    def log(self) -> str:
        path = self.root / "dovecot.log"
        output = b""
        if self._process is not None and self._process.poll() is not None and self._process.stdout:
            output = self._process.stdout.read()
        return (path.read_text() if path.exists() else "") + output.decode(errors="replace")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process is not None and process.stdout:
            process.stdout.close()
        self._dir.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- a client of its own (imaplib), to put mail in and look

    def client(self) -> imaplib.IMAP4_SSL:
        client = imaplib.IMAP4_SSL(
            "127.0.0.1", self.tls_port, ssl_context=self.certificate.client_context(), timeout=10
        )
        client.login(self.user, self.password)
        return client

    def deliver(self, *messages: bytes, folder: str = "INBOX") -> None:
        """APPEND each message to ``folder``."""
        client = self.client()
        try:
            for raw in messages:
                status, reply = client.append(folder, "", imaplib.Time2Internaldate(time.time()), raw)
                assert status == "OK", reply
        finally:
            client.logout()

    def messages(self, folder: str) -> list[bytes]:
        """The bytes of every message in ``folder`` (none if it does not exist)."""
        client = self.client()
        try:
            status, _ = client.select(f'"{folder}"', readonly=True)
            if status != "OK":
                return []
            _, found = client.uid("SEARCH", "ALL")
            uids = found[0].split() if found and found[0] else []
            raws = []
            for uid in uids:
                _, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
                raws.extend(part[1] for part in data if isinstance(part, tuple))
            return raws
        finally:
            client.logout()
