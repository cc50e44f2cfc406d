"""Creating, revoking and checking API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from registry.auth.models import ApiToken, Role
from registry.departments.models import Department
from registry.ids import new_id

TOKEN_PREFIX = "dlt_"
#: The longest name a token may have (its column's length).
NAME_LIMIT = 200


@dataclass(frozen=True)
class Principal:
    """Who is making a request."""

    token_id: str
    name: str
    role: Role
    department_id: str | None

    def has(self, *roles: Role) -> bool:
        """Whether this principal holds one of ``roles``."""
        return self.role in roles


class TokenError(ValueError):
    """A token could not be created as asked."""


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256 (tokens carry 256 random bits, so no salt)."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    session: Session, *, role: str, name: str, now: datetime, department_slug: str | None = None
) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is never stored or shown again."""
    try:
        parsed_role = Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise TokenError(f"unknown role {role!r}; one of {roles}") from None
    department_id = None
    if parsed_role is Role.STAFF:
        if not department_slug:
            raise TokenError("a staff token needs --department")
    if department_slug:
        department = session.execute(
            select(Department).where(Department.slug == department_slug)  # type: ignore[arg-type]
        ).scalar_one_or_none()
        if department is None:
            raise TokenError(f"no department {department_slug!r}")
        department_id = department.id
    if not name.strip():
        raise TokenError("a token needs a name")
    if len(name.strip()) > NAME_LIMIT:
        raise TokenError(f"a token's name is at most {NAME_LIMIT} characters")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        id=new_id("tok"),
        name=name.strip(),
        role=parsed_role.value,
        department_id=department_id,
        token_hash=hash_token(secret),
        prefix=secret[:10],
        created_at=now,
    )
    session.add(token)
    session.flush()
    return token, secret


def authenticate(session: Session, secret: str) -> Principal | None:
    """The principal for a presented token, or None when it is unknown or revoked."""
    digest = hash_token(secret)
    token = session.execute(
        select(ApiToken).where(ApiToken.token_hash == digest)  # type: ignore[arg-type]
    ).scalar_one_or_none()
    # The lookup is by hash, so timing reveals nothing of the secret; compare anyway.
    if token is None or token.revoked_at is not None or not hmac.compare_digest(
        token.token_hash, digest
    ):
        return None
    return Principal(token.id, token.name, Role(token.role), token.department_id)


#: Why an endpoint stopped when its owner's token was revoked (in the endpoint's record).
REVOKED_OWNER = "disabled: the token that owns it was revoked"


def revoke_token(session: Session, token_id: str, *, now: datetime) -> ApiToken | None:
    """Revoke a token, and disable the webhook endpoints it owns (a partner cut off must
    stop receiving too; an admin may enable them again); returns the token, or None when
    there is no such token."""
    from webhooks import WebhookEndpoint, update_endpoint

    token = session.get(ApiToken, token_id)
    if token is None:
        return None
    if token.revoked_at is None:
        token.revoked_at = now
        session.add(token)
        session.flush()
    for endpoint in session.execute(
            select(WebhookEndpoint).where(col(WebhookEndpoint.owner_id) == token.id,
                                          col(WebhookEndpoint.disabled_at).is_(None))
    ).scalars():
        update_endpoint(session, endpoint, now=now, enabled=False,
                        disabled_reason=REVOKED_OWNER)
    return token


def owned_endpoints(session: Session, token_id: str) -> list[str]:
    """The ids of the webhook endpoints a token owns."""
    from webhooks import WebhookEndpoint

    return list(session.execute(
        select(col(WebhookEndpoint.id)).where(col(WebhookEndpoint.owner_id) == token_id)
        .order_by(col(WebhookEndpoint.id))
    ).scalars())


def list_tokens(session: Session) -> list[ApiToken]:
    """Every token, oldest first."""
    return list(session.execute(select(ApiToken).order_by(ApiToken.id)).scalars())  # type: ignore[arg-type]
