"""The actor's RSA key pair: made once, kept in the database, rotated on the operator's word.

Every server that receives an activity checks its HTTP signature against the
public key in the actor document, so the key must outlive any one process:
it is made at the first need (under a lock, so two nodes make one) and
replaced only by :func:`rotate`. After a rotation, receivers that cached the
old key fetch the actor again when a signature no longer verifies.
"""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from syndicate.store import fediverse as fediverse_store
from syndicate.store.db import Database
from syndicate.store.fediverse import StoredKey

KEY_BITS = 2048  # what Mastodon makes and expects; larger keys cost every receiver on every delivery


def new_key_pair() -> tuple[str, str]:
    """A fresh RSA key pair as (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())  # fmt: skip
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private.decode(), public.decode()


def current(db: Database, now: datetime) -> StoredKey:
    """The key pair in use, made (once, whichever node asks first) if there is none yet."""
    with db.read() as conn:
        found = fediverse_store.current_key(conn)
    if found is not None:
        return found
    with db.lock("syndicate-actor-key"), db.write() as conn:
        return fediverse_store.current_key(conn) or fediverse_store.add_key(conn, *new_key_pair(), now)


def rotate(db: Database, now: datetime) -> StoredKey:
    """Replace the key pair in use with a new one; the new one."""
    private, public = new_key_pair()
    with db.lock("syndicate-actor-key"), db.write() as conn:
        return fediverse_store.add_key(conn, private, public, now)
