"""Turn claimed deliveries into signed pushes, or into an outcome when there is nothing to send.

Nothing goes out to a partner that is disabled (it waits for ``partners
enable``), no longer configured, or without a usable secret; and a statement
retracted after its event was planned is not pushed at all.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from syndicate.config import Config, PartnerConfig
from syndicate.deliver.webhooks import SecretError
from syndicate.deliver.webhooks.signing import Signer, signer_for, webhook_id
from syndicate.model import Revision
from syndicate.outbox import Claim, Outcome, Result
from syndicate.plan.events import RETRACTED_BEFORE_SENT
from syndicate.render.partner import PartnerRenderer, Payload, probe_revision
from syndicate.store import events as event_store
from syndicate.store import partners as partner_store
from syndicate.store.db import Database
from syndicate.store.events import Event

log = logging.getLogger(__name__)

# A disabled partner's deliveries stay pending; they are looked at again this much later, or when enabled.
DISABLED_WAIT = timedelta(days=1)


@dataclass(frozen=True)
class Push:
    """One request to a partner, ready but for its timestamp (taken as it leaves)."""

    partner: PartnerConfig
    webhook_id: str
    payload: Payload
    signer: Signer

    def headers(self, timestamp: int) -> dict[str, str]:
        """Content type and the Standard Webhooks headers, signed at ``timestamp``."""
        signed = self.signer.headers(self.webhook_id, timestamp, self.payload.body)
        return {"Content-Type": self.payload.content_type, **signed}


@dataclass(frozen=True)
class Outgoing:
    """A claimed delivery and its push."""

    claim: Claim
    push: Push


@dataclass
class Batch:
    """What composing one batch of claims needs to know, read once."""

    found: dict[int, tuple[Event, Revision]]
    superseded: set[int]
    disabled: set[str]
    now: datetime
    signers: dict[str, Signer | SecretError] = field(default_factory=dict)
    bodies: dict[tuple[int, str, int, str], Payload] = field(default_factory=dict)


class Composer:
    """Renders and signs the push of each claimed delivery."""

    def __init__(self, config: Config, db: Database, renderer: PartnerRenderer) -> None:
        self.config = config
        self.db = db
        self.renderer = renderer
        self.partners = {partner.name: partner for partner in config.partners}

    def compose(self, claims: Sequence[Claim], now: datetime) -> tuple[list[Outgoing], list[Result]]:
        """Pushes for the claims that are to be sent, and results for the rest."""
        batch = self._read(claims, now)
        outgoing: list[Outgoing] = []
        results: list[Result] = []
        for claim in claims:
            made = self._one(claim, batch)
            if isinstance(made, Outgoing):
                outgoing.append(made)
            else:
                results.append(made)
        return outgoing, results

    def signer(self, partner: PartnerConfig) -> Signer:
        """The partner's signer (its secrets read from the environment now)."""
        return signer_for(self.config, partner)

    def test_push(self, partner: PartnerConfig, now: datetime) -> Push:
        """A signed push of a test event (not a statement) for ``syndicate partners test``."""
        revision = probe_revision(self.config.site, now)
        payload = self.renderer.render(revision, partner, kind="syndicate.test")
        return Push(partner, f"msg_test_{uuid.uuid4().hex}", payload, self.signer(partner))

    def _read(self, claims: Sequence[Claim], now: datetime) -> Batch:
        with self.db.read() as conn:
            found = event_store.load(conn, {c.source_id for c in claims})
            superseded = event_store.retracted_later(conn, (event for event, _ in found.values()))
            disabled = {name for name, state in partner_store.states(conn).items() if state.disabled}
        return Batch(found, superseded, disabled, now)

    def _one(self, claim: Claim, batch: Batch) -> Outgoing | Result:
        partner = self.partners.get(claim.target)
        if partner is None:
            return Result(claim, Outcome.FAILED, f"partner {claim.target} is no longer in the configuration")
        if claim.source_id not in batch.found:
            return Result(claim, Outcome.FAILED, f"event {claim.source_id} of delivery {claim.id} is not in the store")
        if claim.source_id in batch.superseded:
            return Result(claim, Outcome.CANCELLED, RETRACTED_BEFORE_SENT)
        if partner.name in batch.disabled:
            message = f"partner {partner.name} is disabled; syndicate partners enable {partner.name} sends its backlog"
            return Result(claim, Outcome.REQUEUE, message, batch.now + DISABLED_WAIT)
        signer = self._signer(partner, batch)
        if isinstance(signer, SecretError):
            return Result(claim, Outcome.RETRY, str(signer))
        revision = batch.found[claim.source_id][1]
        try:
            payload = self._payload(revision, partner, batch)
        except Exception as exc:
            # Failed, not retried: the same revision renders the same way, and a push held for a retry
            # would hold every later push to this partner behind it. `deliveries retry` once it is fixed.
            log.exception("the push of statement %s to %s cannot be rendered", revision.statement_id, partner.name)
            reason = f"statement {revision.statement_id} cannot be rendered ({type(exc).__name__}: {exc})"
            return Result(claim, Outcome.FAILED, reason)
        return Outgoing(claim, Push(partner, webhook_id(claim), payload, signer))

    def _signer(self, partner: PartnerConfig, batch: Batch) -> Signer | SecretError:
        if partner.name not in batch.signers:
            try:
                batch.signers[partner.name] = self.signer(partner)
            except SecretError as exc:
                log.error("%s", exc)
                batch.signers[partner.name] = exc
        return batch.signers[partner.name]

    def _payload(self, revision: Revision, partner: PartnerConfig, batch: Batch) -> Payload:
        # Partners with the same licence and format get the same bytes: render once per batch.
        key = (revision.seq, partner.license, partner.excerpt_words, partner.format)
        if key not in batch.bodies:
            batch.bodies[key] = self.renderer.render(revision, partner)
        return batch.bodies[key]
