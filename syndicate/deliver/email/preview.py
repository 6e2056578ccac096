"""``syndicate preview``: the exact message a subscriber would get, through the same code that sends it."""

from __future__ import annotations

from syndicate.app import App
from syndicate.deliver.email.compose import Composer
from syndicate.deliver.email.dkim import Signer
from syndicate.errors import SyndicateError
from syndicate.plan.editions import edition_key
from syndicate.render.email import MessageTemplate
from syndicate.store import statements
from syndicate.store import subscribers as subscriber_store
from syndicate.subscribers import InvalidSubscriber, normalise_email

SAMPLE_ADDRESS = "reader@example.org"


def preview(app: App, statement_id: str, digest: str | None = None, to: str | None = None) -> bytes:
    """Render the statement's mail (or a digest holding it) and personalise it for ``to``."""
    now = app.clock()
    address = _address(to) if to else SAMPLE_ADDRESS
    with app.db.read() as conn:
        revision = statements.latest_revision(conn, statement_id) or statements.as_revision(conn, statement_id)
        subscriber = subscriber_store.by_email(conn, address)
    if revision is None:
        raise SyndicateError(f"no statement with id {statement_id!r} (run `syndicate build` after adding it)")
    if digest:
        rendered = app.email.digest(digest, revision.lang, [revision], f"preview:{statement_id}:{digest}", now)
    else:
        # The edition's own key: the message is the one its subscribers get, boundary and all.
        rendered = app.email.statement(revision, edition_key(revision, app.config.email.resend_updates), now)
    signer = Signer.from_settings(app.config.email.dkim) if app.config.email.dkim.enabled else None
    composer = Composer(app.db, app.secrets, app.config.sender[1], signer)
    subscriber_id = subscriber.id if subscriber else 0
    return composer.personalise(
        MessageTemplate.from_bytes(rendered.message), "syndicate.preview", subscriber_id, address, now
    )


def _address(raw: str) -> str:
    try:
        return normalise_email(raw)
    except InvalidSubscriber as exc:
        raise SyndicateError(f"--to: {exc}") from exc
