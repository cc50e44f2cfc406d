"""A comment form refused outside its view's own checks is shown again, with what was typed.

The comment form's view answers the fields and a closed period itself. Other refusals come
before it or from deeper down: an expired or foreign form (Flask-WTF's CSRF check, 400), the
rate limit (flask-limiter, 429), a character no database can store (``registry.inputs``,
400), a ``Problem`` a service raised. A generic error page would lose a comment a resident
may have spent an hour on, so each of these shows the technology page again, with the form
as it was sent, a fresh CSRF token and a summary saying what happened and what to do, under
the same status. When the form cannot be shown (no such technology or review, or the
period takes no comments), the caller falls back to the generic error page.
"""

from __future__ import annotations

import math
import time

from flask import Response, current_app, render_template, request
from flask_wtf.csrf import CSRFError, validate_csrf
from werkzeug.exceptions import HTTPException
from wtforms import ValidationError

from registry.clock import now
from registry.database import db
from registry.errors import NotFound
from registry.extensions import limiter
from registry.inputs import storable, unstorable
from registry.pages.comment_form import FIELDS, CommentForm
from registry.pages.technology_view import technology_context
from registry.reviews.models import takes_comments
from registry.reviews.services import get_review
from registry.technologies.services import get_technology

#: The refusals a resident can answer by sending the form again (others, such as a busy
#: database, get the error page: showing the form needs that database).
FORM_STATUSES = frozenset({400, 409, 422, 429})
#: The form's inputs by the words of their labels, to say which one held such a character.
_LABELS = {"body": "Your comment", "display_name": "Name to show with your comment",
           "email": "Email", "neighborhood": "Your neighbourhood", "position": "Your position"}


def refused_comment_page(exc: HTTPException) -> Response | None:
    """The technology page showing the refused comment form again with what was typed and
    why it was not sent, when ``exc`` refuses a post of that form; None when it does not,
    or when the form cannot be shown. Never raises: it is part of an error page."""
    if (request.endpoint != "pages.comment" or request.method != "POST"
            or exc.code not in FORM_STATUSES):
        return None
    try:
        return _form_page(exc)
    except Exception:  # the generic error page is the answer then
        current_app.logger.exception("The refused comment form could not be shown again")
        return None


def _form_page(exc: HTTPException) -> Response | None:
    args = request.view_args or {}
    session = db()
    try:
        technology = get_technology(session, str(args.get("technology_id")), None)
        review = get_review(session, str(args.get("review_id")))
    except NotFound:
        return None
    moment = now()
    if (review.technology_id != technology.id
            or not takes_comments(review.status, review.comment_closes_at, moment)):
        return None
    if _from_this_site():
        form = CommentForm.from_request(request.form)
        form.errors = _errors(exc, form)
        unsent = None
    else:
        # Not shown to have come from this site's page: another site may have posted it to
        # put words in the resident's mouth. A filled form with a fresh token would make
        # that a one-click comment in their name; the text is only shown, to copy.
        form = CommentForm()
        form.errors = {"_form": [FOREIGN]}
        unsent = storable((request.form.get("body") or "").replace("\r\n", "\n"))
    html = render_template("technology.html", unsent_body=unsent, **technology_context(
        session, technology, now=moment, review_id=review.id, form=form))
    response = Response(html, status=exc.code, mimetype="text/html")
    if exc.response is not None and "Retry-After" in exc.response.headers:
        response.headers["Retry-After"] = exc.response.headers["Retry-After"]
    return response


FOREIGN = ("This form did not come from this site's page, or it had expired, so nothing "
           "was sent. If you wrote the comment shown below, copy it into the form and send "
           "it from here.")


def _from_this_site() -> bool:
    """Whether the refused post provably came from this site's own page: its CSRF token
    is good (it was refused for something else), or the browser says the post was
    same-origin (``Sec-Fetch-Site``, which a page cannot set for another site)."""
    if request.headers.get("Sec-Fetch-Site") == "same-origin":
        return True
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError:
        return False
    return True


def _errors(exc: HTTPException, form: CommentForm) -> dict[str, list[str]]:
    """What to tell the resident, above the form (``_form``) and beside a field."""
    if isinstance(exc, CSRFError):
        return {"_form": ["This form had expired or did not come from this site, so your "
                          "comment was not sent. Check your comment below and send it again."]}
    if exc.code == 429:
        return {"_form": [f"You have sent many comments in a short time, so this one was not "
                          f"sent. Wait {_wait()}, then send it again: your comment is kept "
                          "below."]}
    errors = _unstorable_fields(form)
    if errors:
        names = ", ".join(f"“{_LABELS[name]}”" for name in errors)
        return {"_form": [f"Your comment was not sent: {names} held a character that cannot "
                          "be stored (the NUL character or a broken one, usually from a bad "
                          "copy). It has been taken out below: check your comment and send it "
                          "again."], **errors}
    # A character no database can store in a field the resident does not see, or a problem
    # a service raised: its own words say what happened.
    return {"_form": [f"{exc.description or 'Nothing was saved.'} Check your comment below "
                      "and send it again."]}


def _unstorable_fields(form: CommentForm) -> dict[str, list[str]]:
    """The inputs that held a character no database can store, taken out of ``form``."""
    errors: dict[str, list[str]] = {}
    for name in FIELDS:
        if unstorable(request.form.get(name) or "", controls=False) is not None:
            form.values[name] = storable(form.values[name])
            errors[name] = ["This held a character that cannot be stored; it has been taken "
                            "out. Check the text and send it again."]
    return errors


def _wait() -> str:
    """How long until the rate limit lets this client comment again, in minutes."""
    limit = limiter.current_limit
    # In whole seconds, as flask-limiter's Retry-After header says it.
    seconds = int(limit.reset_at - time.time()) if limit is not None else 0
    if seconds <= 0:
        return "a few minutes"
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
