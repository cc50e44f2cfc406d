"""Stored policies and assessments: publish versions, assess records, flag stale results."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from policies import (
    PolicyDocument,
    PolicyDocumentError,
    default_documents,
    dump_policy_document,
    evaluate,
    load_policy_document,
)
from registry.assessments.models import Assessment, Policy, PolicyVersion
from registry.departments.models import Department
from registry.errors import Conflict, Invalid, NotFound
from registry.events.services import append_event
from registry.ids import new_id
from registry.technologies.models import Status, Technology
from registry.urls import api_url

#: Records still open to review, whose assessments go stale when a policy changes.
OPEN_STATUSES = (Status.SUBMITTED.value, Status.IN_REVIEW.value)


def _document(data: Mapping[str, Any]) -> PolicyDocument:
    try:
        return load_policy_document(data)
    except PolicyDocumentError as exc:
        raise Invalid("The policy document is not valid; see errors.", errors=exc.errors) from None


def get_policy(session: Session, slug: str) -> Policy:
    """A policy by slug, or 404."""
    policy: Policy | None = session.execute(
        select(Policy).where(col(Policy.slug) == slug)).scalar_one_or_none()
    if policy is None:
        raise NotFound(f"There is no policy {slug!r}.")
    return policy


def versions_of(session: Session, policy: Policy) -> list[PolicyVersion]:
    """Every version of a policy, newest first."""
    return list(session.execute(
        select(PolicyVersion).where(col(PolicyVersion.policy_id) == policy.id)
        .order_by(col(PolicyVersion.version).desc())).scalars())


def list_policies(session: Session) -> list[Policy]:
    """Every policy, in order of creation."""
    return list(session.execute(select(Policy).order_by(col(Policy.id))).scalars())


def active_versions(session: Session) -> list[PolicyVersion]:
    """The newest version of every policy: what assessments use."""
    newest = (select(col(PolicyVersion.policy_id), func.max(col(PolicyVersion.version))
                     .label("version")).group_by(col(PolicyVersion.policy_id)).subquery())
    return list(session.execute(
        select(PolicyVersion).join(newest, (col(PolicyVersion.policy_id) == newest.c.policy_id)
                                   & (col(PolicyVersion.version) == newest.c.version))
        .order_by(col(PolicyVersion.policy_id))).scalars())


def publish_policy(session: Session, data: Mapping[str, Any], *, published_by: str | None,
                   now: datetime, slug: str | None = None) -> PolicyVersion:
    """Publish a new policy (``slug`` None) or a new version of the policy ``slug``.

    Versions are immutable: publishing writes a new row, and the assessments of records
    still under review that used an older version (or predate the policy) are marked out
    of date, unchanged.
    """
    if slug is not None and data.get("slug", slug) != slug:
        raise Invalid("The document's slug does not match the policy.",
                      errors={"slug": [f"This is a version of {slug!r}; the slug must match."]})
    document = _document({**data, "slug": slug} if slug is not None else data)
    existing = session.execute(
        select(Policy).where(col(Policy.slug) == document.slug).with_for_update()
    ).scalar_one_or_none()
    if slug is None and existing is not None:
        raise Conflict(f"A policy {document.slug!r} already exists; publish a new version with "
                       f"POST /api/v1/policies/{document.slug}/versions.")
    if slug is not None and existing is None:
        raise NotFound(f"There is no policy {slug!r}.")
    policy = existing or Policy(id=new_id("pol"), slug=document.slug, title=document.title,
                                created_at=now)
    policy.title = document.title
    session.add(policy)
    session.flush()
    number = (session.execute(select(func.max(col(PolicyVersion.version)))
                              .where(col(PolicyVersion.policy_id) == policy.id)).scalar() or 0) + 1
    version = PolicyVersion(id=new_id("pv"), policy_id=policy.id, version=number,
                            title=document.title, summary=document.summary,
                            document=dump_policy_document(document), published_by=published_by,
                            created_at=now)
    session.add(version)
    session.flush()
    outdated = _mark_outdated_for_policy(session, policy.slug, number, now=now)
    append_event(session, type="policy.published", subject_type="policy", subject_id=policy.id,
                 now=now, data={"policy": {"slug": policy.slug, "title": version.title,
                                           "version": number,
                                           "url": api_url(f"/policies/{policy.slug}"),
                                           "criteria_count": len(document.criteria)},
                                "outdated_assessments": outdated})
    return version


def ensure_default_policies(session: Session, *, now: datetime) -> int:
    """Publish the bundled privacy and equity policies if no policy exists yet (first run)."""
    if session.execute(select(col(Policy.id)).limit(1)).first() is not None:
        return 0
    for document in default_documents():
        publish_policy(session, document, published_by=None, now=now)
    return len(default_documents())


def _current_assessments_of_open_records(session: Session) -> list[Assessment]:
    return list(session.execute(
        select(Assessment).join(Technology, col(Technology.id) == col(Assessment.technology_id))
        .where(col(Technology.status).in_(OPEN_STATUSES), col(Assessment.outdated_at).is_(None))
    ).scalars())


def _mark_outdated_for_policy(session: Session, slug: str, version: int, *,
                              now: datetime) -> int:
    count = 0
    for assessment in _current_assessments_of_open_records(session):
        used = {v["slug"]: v["version"] for v in assessment.policy_versions}
        if used.get(slug, 0) < version:
            assessment.outdated_at = now
            assessment.outdated_reason = f"Policy {slug!r} version {version} was published."
            session.add(assessment)
            count += 1
    session.flush()
    return count


def mark_outdated_for_record_change(session: Session, technology: Technology,
                                    changed: list[str]) -> None:
    """After a record edit, its current assessment no longer describes it."""
    for assessment in session.execute(
        select(Assessment).where(col(Assessment.technology_id) == technology.id,
                                 col(Assessment.outdated_at).is_(None))
    ).scalars():
        assessment.outdated_at = technology.updated_at
        assessment.outdated_reason = f"The record changed: {', '.join(changed)}."
        session.add(assessment)
    session.flush()


def assess_technology(session: Session, technology: Technology, *, trigger: str,
                      now: datetime, assessed_by: str | None = None) -> Assessment:
    """Assess the record against the active policy versions, in the caller's transaction."""
    versions = active_versions(session)
    documents = [load_policy_document(v.document) for v in versions]
    department = session.get(Department, technology.department_id)
    result = evaluate({**technology.record(),
                       "department": department.slug if department else None}, documents)
    slugs = {v.policy_id: d.slug for v, d in zip(versions, documents, strict=True)}
    assessment = Assessment(
        id=new_id("asm"), technology_id=technology.id, trigger=trigger,
        policy_versions=[{"slug": slugs[v.policy_id], "version": v.version, "id": v.id}
                         for v in versions],
        findings=[finding.as_dict() for finding in result.findings],
        risk_tier=result.risk_tier, risk_tier_reasons=list(result.risk_tier_reasons),
        min_comment_days=result.min_comment_days, meeting_required=result.meeting_required,
        created_by=assessed_by, created_at=now,
    )
    # The newest assessment is the current one: earlier ones are out of date from now on.
    for previous in session.execute(
        select(Assessment).where(col(Assessment.technology_id) == technology.id,
                                 col(Assessment.outdated_at).is_(None))
    ).scalars():
        previous.outdated_at = now
        previous.outdated_reason = previous.outdated_reason or "A newer assessment was made."
        session.add(previous)
    technology.risk_tier = result.risk_tier
    session.add_all([assessment, technology])
    session.flush()
    from registry.technologies.services import snapshot

    append_event(session, type="assessment.completed", subject_type="assessment",
                 subject_id=assessment.id, technology_id=technology.id, now=now,
                 data={"technology": snapshot(session, technology),
                       "assessment": _event_summary(assessment)})
    return assessment


def _event_summary(assessment: Assessment) -> dict[str, Any]:
    counts = {"pass": 0, "concern": 0, "fail": 0, "needs_information": 0}
    for finding in assessment.findings:
        counts[finding["outcome"]] = counts.get(finding["outcome"], 0) + 1
    return {"id": assessment.id, "risk_tier": assessment.risk_tier,
            "min_comment_days": assessment.min_comment_days,
            "meeting_required": assessment.meeting_required,
            "policy_versions": [{"slug": v["slug"], "version": v["version"]}
                                for v in assessment.policy_versions],
            "outcome_counts": counts, "trigger": assessment.trigger}


def assessment_dict(assessment: Assessment) -> dict[str, Any]:
    """An assessment as the API shows it."""
    return {
        "id": assessment.id,
        "technology_id": assessment.technology_id,
        "trigger": assessment.trigger,
        "created_at": assessment.created_at,
        "policy_versions": assessment.policy_versions,
        "findings": assessment.findings,
        "risk_tier": assessment.risk_tier,
        "risk_tier_reasons": assessment.risk_tier_reasons,
        "min_comment_days": assessment.min_comment_days,
        "meeting_required": assessment.meeting_required,
        "outdated": assessment.outdated_at is not None,
        "outdated_at": assessment.outdated_at,
        "outdated_reason": assessment.outdated_reason,
    }


def assessments_of(session: Session, technology: Technology) -> list[Assessment]:
    """Every assessment of a technology, newest first."""
    return list(session.execute(
        select(Assessment).where(col(Assessment.technology_id) == technology.id)
        .order_by(col(Assessment.id).desc())).scalars())


def latest_assessment_dict(session: Session, technology: Technology) -> dict[str, Any] | None:
    """The latest assessment as the API shows it, or None."""
    latest = session.execute(
        select(Assessment).where(col(Assessment.technology_id) == technology.id)
        .order_by(col(Assessment.id).desc()).limit(1)).scalar_one_or_none()
    return assessment_dict(latest) if latest is not None else None


def policy_dict(session: Session, policy: Policy) -> dict[str, Any]:
    """A policy with its versions (newest first), each with its criteria."""
    versions = versions_of(session, policy)
    return {
        "slug": policy.slug,
        "title": policy.title,
        "url": api_url(f"/policies/{policy.slug}"),
        "active_version": versions[0].version if versions else None,
        "created_at": policy.created_at,
        "versions": [{"version": v.version, "id": v.id, "title": v.title, "summary": v.summary,
                      "published_at": v.created_at, "document": v.document}
                     for v in versions],
    }
