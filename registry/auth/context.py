"""Who is calling: the bearer token of the current request, and role checks."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, g, request
from sqlmodel import Session

from registry.auth.models import Role
from registry.auth.services import Principal, authenticate
from registry.database import db, session_factory
from registry.db import read_only
from registry.errors import Forbidden, Unauthorized

_BEARER = "bearer "
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="daylight"'}


def current_principal() -> Principal | None:
    """The caller, or None for an anonymous request. A bad token is a 401, never anonymous."""
    if "_daylight_principal" not in g:
        g._daylight_principal = _principal(db)
    return g._daylight_principal  # type: ignore[no-any-return]


def _principal(session: Callable[[], Session]) -> Principal | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    if not header.lower().startswith(_BEARER) or not header[len(_BEARER):].strip():
        raise Unauthorized("Send the token as 'Authorization: Bearer TOKEN'.",
                           headers=_CHALLENGE)
    principal = authenticate(session(), header[len(_BEARER):].strip())
    if principal is None:
        raise Unauthorized("The token is unknown or has been revoked.", headers=_CHALLENGE)
    return principal


def require(*roles: Role) -> Principal:
    """The caller, who must hold one of ``roles``: 401 without a token, 403 with the wrong one."""
    principal = current_principal()
    if principal is None:
        raise Unauthorized(
            f"This needs an API token with the role {' or '.join(r.value for r in roles)}.",
            headers=_CHALLENGE,
        )
    if not principal.has(*roles):
        raise Forbidden(
            f"A {principal.role.value} token may not do this; it needs "
            f"{' or '.join(r.value for r in roles)}."
        )
    return principal


#: The API's changes anyone may make without a token (CONTRACT §3): posting a comment and
#: flagging one. Every other POST, PATCH or DELETE needs a token.
ANONYMOUS_WRITES = frozenset({"comments.post", "comments.flag"})
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def check_token() -> None:
    """A token sent to the API is checked on every route, not only on those that ask who is
    calling: a bad or revoked one is a 401 wherever it goes (CONTRACT §3), never read as
    anonymous (a revoked partner still posting, or reading as if it were allowed to).

    A change sent without a token to a route that needs one is a 401 here, before its body
    is read: otherwise an empty body got a 422 listing the fields, as if it could go on."""
    if not request.path.startswith("/api/v1/") or "_daylight_principal" in g:
        return
    if "Authorization" not in request.headers:
        if (request.method in _WRITES and request.endpoint is not None
                and request.endpoint not in ANONYMOUS_WRITES):
            raise Unauthorized("This needs an API token: send it as "
                               "'Authorization: Bearer TOKEN'.", headers=_CHALLENGE)
        return
    # Read in a short session of its own, not the request's: a comment post opens none (its
    # writer writes), and on SQLite a request's session begun here would hold the write
    # lock the writer then waits for.
    with read_only(), session_factory()() as session:
        g._daylight_principal = _principal(lambda: session)


def init_app(app: Flask) -> None:
    """Check the API's tokens before the routes run (after ``registry.inputs``)."""
    app.before_request(check_token)
