"""Claims with evidence: a citizen submits, a city admin or a trusted scanner (a school) decides."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa

from contracts import incentives as events
from eventbus import UnitOfWorkFactory
from incentives import domain, engine, models, rules, store
from servicekit.auth import Principal


async def submit_claim(
    uow_factory: UnitOfWorkFactory, principal: Principal, body: models.ClaimIn
) -> models.ClaimOut:
    async with uow_factory() as uow:
        campaign = await store.load_row(uow.session, store.campaigns, body.campaign_id, "campaign")
        if campaign.status != "active" or not await engine.active_rules(
            uow.session, domain.CLAIM_TRIGGER, campaign.id
        ):
            raise domain.NotFound("no such campaign taking claims")
        claim_id, now = uuid4(), datetime.now(UTC)
        row = {
            "id": claim_id,
            "campaign_id": campaign.id,
            "tenant": campaign.tenant,
            "citizen_id": principal.subject,
            "evidence": body.evidence,
            "status": "submitted",
            "submitted_at": now,
        }
        await uow.session.execute(sa.insert(store.claims).values(**row))
        submitted = events.ClaimSubmitted(
            claim_id=claim_id,
            campaign_id=campaign.id,
            citizen_id=principal.subject,
            evidence=body.evidence,
            submitted_at=now,
        )
        uow.emit(submitted, tenant=campaign.tenant)
        return claim_out(row)


def claim_out(row: Any) -> models.ClaimOut:
    m = dict(row) if isinstance(row, dict) else dict(row._mapping)
    return models.ClaimOut(
        id=m["id"],
        campaign_id=m["campaign_id"],
        citizen_id=m["citizen_id"],
        evidence=m["evidence"],
        status=m["status"],
        reason=m.get("reason"),
        submitted_at=m["submitted_at"],
    )


async def decide_claim(
    uow_factory: UnitOfWorkFactory, principal: Principal, claim_id: UUID, body: models.ClaimDecision
) -> models.ClaimOut:
    """Approve (coins follow, once) or reject a claim of the caller's municipality."""
    async with uow_factory() as uow:
        claim = await store.load_row(uow.session, store.claims, claim_id, "claim", lock=True)
        if claim.tenant != principal.tenant:
            raise domain.NotFound("no such claim")
        if claim.status != "submitted":
            raise domain.Conflict(f"the claim was {claim.status} already")
        now = datetime.now(UTC)
        status = "approved" if body.approve else "rejected"
        await uow.session.execute(
            sa.update(store.claims)
            .where(store.claims.c.id == claim_id)
            .values(status=status, decided_by=principal.subject, reason=body.reason or None, decided_at=now)
        )
        if body.approve:
            approved = events.ClaimApproved(
                claim_id=claim_id,
                campaign_id=claim.campaign_id,
                citizen_id=claim.citizen_id,
                approved_by=principal.subject,
                approved_at=now,
            )
            envelope = uow.emit(approved, tenant=claim.tenant)
            await _reward_claim(uow, approved, envelope.type, now)
        else:
            rejected = events.ClaimRejected(
                claim_id=claim_id,
                campaign_id=claim.campaign_id,
                citizen_id=claim.citizen_id,
                reason=body.reason or "not approved",
                rejected_by=principal.subject,
                rejected_at=now,
            )
            uow.emit(rejected, tenant=claim.tenant)
        updated = {**dict(claim._mapping), "status": status, "reason": body.reason or None}
        return claim_out(updated)


async def _reward_claim(uow: Any, approved: events.ClaimApproved, event_type: str, now: datetime) -> None:
    data = approved.model_dump(mode="json")
    for rule in await engine.active_rules(uow.session, domain.CLAIM_TRIGGER, approved.campaign_id):
        if rule.valid_from <= now and rules.evaluate(rule.condition, data):
            amount = rule.reward.amount(rule.coin, None)
            await engine.issue(
                uow, rule, approved.citizen_id, amount, f"claim:{approved.claim_id}", event_type, now
            )


async def list_claims(
    uow_factory: UnitOfWorkFactory, principal: Principal, *, mine: bool, status: str | None
) -> list[models.ClaimOut]:
    c = store.claims
    query = sa.select(c).order_by(c.c.submitted_at.desc()).limit(500)
    query = (
        query.where(c.c.citizen_id == principal.subject)
        if mine
        else query.where(c.c.tenant == principal.tenant)
    )
    if status:
        query = query.where(c.c.status == status)
    async with uow_factory() as uow:
        return [claim_out(row) for row in (await uow.session.execute(query)).all()]
