"""Resident pages: server-rendered HTML that works without JavaScript."""

from __future__ import annotations

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from sqlmodel import Session
from werkzeug.wrappers import Response

from policies.vocabulary import DATA_COLLECTED
from registry.api import decode_cursor, encode_cursor
from registry.clock import now
from registry.comments.models import Comment
from registry.comments.routes import comment_limit, request_client_key
from registry.comments.services import (
    comment_before,
    get_by_tracking_number,
    get_comment,
    post_comment,
)
from registry.database import TRACKING_NUMBER, db
from registry.errors import Conflict, Invalid, NotFound
from registry.events.catalog import EVENT_TYPES
from registry.pages import present, queries
from registry.pages.comment_form import HONEYPOT, CommentForm
from registry.pages.partners import VERIFY_EXAMPLE
from registry.pages.technology_view import technology_context
from registry.reviews.models import Review, ReviewStatus, takes_comments
from registry.reviews.services import get_review
from registry.technologies.models import Status, Technology
from registry.technologies.services import (
    TechnologyFilters,
    count_technologies,
    get_technology,
    list_technologies,
)

blp = Blueprint("pages", __name__)

PAGE_SIZE = 20
#: The home page names this many technologies in use without an approved policy (and
#: counts them all).
UNAPPROVED_SHOWN = 50
#: No page runs a script, so none may: an escaping slip still could not execute anything.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'none'; object-src 'none'; "
                           "style-src 'self'; img-src 'self' data:; form-action 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'")


def security_headers(app: Flask) -> None:
    """Every answer of the app carries the headers, not only the pages': error pages for
    unknown paths, the feeds, the static files and the API too. The API's docs page
    alone runs scripts (Swagger UI, pinned and checked by hash), so it has no CSP."""
    docs = f"{app.config['OPENAPI_URL_PREFIX']}/{app.config['OPENAPI_SWAGGER_UI_PATH']}"

    @app.after_request
    def _security_headers(response: Response) -> Response:
        if request.path != docs:
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response


@blp.record_once
def _template_globals(state: BlueprintSetupState) -> None:
    # Globals, not a context processor, so that imported macros see them too.
    state.app.jinja_env.globals.update(present=present, honeypot_name=HONEYPOT)
    # Block tags leave no blank lines behind: pages stay small on slow connections.
    state.app.jinja_env.trim_blocks = True
    state.app.jinja_env.lstrip_blocks = True


@blp.route("/")
def home() -> str:
    """Open comment periods, upcoming reviews, recent decisions, and what runs unapproved."""
    session = db()
    unapproved = queries.in_use_without_policy(session, limit=UNAPPROVED_SHOWN)
    return render_template(
        "home.html",
        open_reviews=queries.open_reviews(session),
        upcoming=queries.upcoming_reviews(session),
        decisions=queries.recent_decisions(session),
        unapproved=unapproved,
        # A list shorter than its limit has counted them all already.
        unapproved_total=(len(unapproved) if len(unapproved) < UNAPPROVED_SHOWN
                          else queries.count_in_use_without_policy(session)),
        now=now(),
    )


#: The list's orders as the page offers them (``sort``); the first is the default.
SORTS = {"": "registered", "name": "name"}
_FILTER_NAMES = ("q", "status", "department", "risk_tier", "data_collected", "in_use")


def _filters() -> tuple[TechnologyFilters, dict[str, str]]:
    """The list filters (and its order) from the query string; unknown values are ignored,
    not errors."""
    args = {name: (request.args.get(name) or "").strip() for name in (*_FILTER_NAMES, "sort")}
    public_statuses = [s.value for s in Status if s is not Status.DRAFT]
    status = [args["status"]] if args["status"] in public_statuses else []
    risk = [args["risk_tier"]] if args["risk_tier"] in present.RISK_LABELS else []
    data = [args["data_collected"]] if args["data_collected"] in DATA_COLLECTED else []
    in_use = {"yes": True, "no": False}.get(args["in_use"])
    if args["sort"] not in SORTS:
        args["sort"] = ""
    filters = TechnologyFilters(status=status, department=args["department"] or None,
                                risk_tier=risk, data_collected=data, in_use=in_use,
                                q=args["q"][:200] or None)
    return filters, args


@blp.route("/technologies")
def technologies() -> str:
    """Search, filter and order the registry (a GET form, so results can be bookmarked and
    shared)."""
    filters, args = _filters()
    try:
        after = decode_cursor(request.args.get("after") or None, str)
    except Invalid:
        abort(400, "That page link is not one this site made; start from the first page.")
    session = db()
    found = list_technologies(session, None, filters, after=after, limit=PAGE_SIZE + 1,
                              order=SORTS[args["sort"]])
    shown = found[:PAGE_SIZE]
    first_args = {name: value for name, value in args.items() if value}
    next_args = None
    if len(found) > PAGE_SIZE:
        next_args = {**first_args, "after": encode_cursor(shown[-1].id)}
    return render_template(
        "technologies.html", technologies=shown, args=args, next_args=next_args,
        first_args=first_args, first_page=after is None,
        # A first page that holds every match has counted them already.
        total=(len(shown) if after is None and next_args is None
               else count_technologies(session, None, filters)),
        departments=queries.departments(session),
        by_id=queries.departments_by_id(session, {t.department_id for t in shown}),
        statuses=[s for s in Status if s is not Status.DRAFT], data_collected=DATA_COLLECTED,
        filtered=any(args[name] for name in _FILTER_NAMES),
    )


def _public_technology(technology_id: str) -> Technology:
    try:
        return get_technology(db(), technology_id, None)
    except NotFound:
        abort(404, "There is no public technology at this address. Drafts stay private until "
                   "their department submits them.")


@blp.route("/technologies/<technology_id>")
def technology(technology_id: str) -> str:
    """A technology in plain language, its findings, timeline, reviews and comments."""
    record = _public_technology(technology_id)
    return render_template("technology.html", **technology_context(
        db(), record, now=now(), review_id=request.args.get("review"),
        comments_cursor=request.args.get("comments_after") or None))


@blp.route("/technologies/<technology_id>/reviews/<review_id>/comments", methods=["POST"])
@comment_limit
def comment(technology_id: str, review_id: str) -> Response | tuple[str, int]:
    """Take a resident's comment, then redirect to its receipt (POST-redirect-GET).

    A refusal shows the page again with what the resident typed: here for the fields and a
    period that takes no comments, in ``registry.pages.refusals`` for what is refused
    before or around this view (an expired form, the rate limit, unstorable text).
    """
    record = _public_technology(technology_id)
    session = db()
    try:
        review = get_review(session, review_id)
    except NotFound:
        abort(404)
    if review.technology_id != record.id:
        abort(404)
    form = CommentForm.from_request(request.form)
    fields = form.validate()
    # The period first: when it takes no comments, that is why nothing was sent, whatever
    # the fields say. A form sent again after it closed still gets its receipt, though.
    open_now = takes_comments(review.status, review.comment_closes_at, now())
    if fields is not None and (open_now or form.key_sent):
        try:
            posted = post_comment(session, review, fields,
                                  moderation=current_app.config["COMMENT_MODERATION"],
                                  client=request_client_key(), now=now(),
                                  idempotency_key=form.idempotency_key(fields))
        except Conflict:
            open_now = False  # it closed (or was cancelled) since we looked
        except Invalid:
            # Sent again after the period closed and its emails were purged, the form's
            # key no longer matches what is stored: the closed period is the answer.
            if open_now:
                raise
        else:
            g.setdefault(TRACKING_NUMBER, posted.tracking_number)  # if the commit is lost
            return redirect(url_for("pages.receipt", tracking_number=posted.tracking_number,
                                    received=1), code=303)
    if not open_now:
        form.errors = {"_form": [_not_open_message(review)]}
    status = 409 if not open_now else 400 if form.honeypot_filled else 422
    html = render_template("technology.html", **technology_context(
        session, record, now=now(), review_id=review.id, form=form))
    return html, status


def _not_open_message(review: Review) -> str:
    """Why the period takes no comments, with its times in the city's zone."""
    if review.status == ReviewStatus.SCHEDULED.value:
        return ("The comment period has not opened yet. It opens "
                f"{present.format_datetime(review.comment_opens_at)}.")
    if review.status == ReviewStatus.CANCELLED.value:
        return "This review was cancelled, so it takes no comments."
    return f"The comment period closed {present.format_datetime(review.comment_closes_at)}."


def _comment_place(session: Session, posted: Comment, review: Review) -> str:
    """The technology page's page of comments that starts with ``posted`` (a published or
    hidden comment): with more than a page of comments, the first would not hold it."""
    before = comment_before(session, posted)
    return url_for("pages.technology", technology_id=review.technology_id, review=review.id,
                   comments_after=encode_cursor(before) if before else None,
                   _anchor=f"comment-{posted.id}")


@blp.route("/technologies/<technology_id>/comments/<comment_id>")
def comment_link(technology_id: str, comment_id: str) -> Response:
    """A comment's lasting address (its ``url`` in the API, the events and the feed):
    redirects to the page of comments that holds it, wherever later comments pushed it."""
    session = db()
    try:
        found = get_comment(session, comment_id)
    except NotFound:
        found = None
    review = session.get(Review, found.review_id) if found is not None else None
    # Held (or hidden before it was published), a comment was never public: no page lists it.
    if (found is None or review is None or review.technology_id != technology_id
            or found.published_at is None):
        abort(404, "There is no published comment at this address. A comment waiting for a "
                   "reviewer appears once it is published.")
    return redirect(_comment_place(session, found, review), code=302)


@blp.route("/comments/<tracking_number>")
def receipt(tracking_number: str) -> str:
    """A comment's receipt: its tracking number and where it stands (never the email)."""
    session = db()
    try:
        posted = get_by_tracking_number(session, tracking_number)
    except NotFound:
        abort(404, "No comment has this tracking number. Check it against your receipt.")
    review = get_review(session, posted.review_id)
    record = session.get(Technology, review.technology_id)
    return render_template("receipt.html", comment=posted, review=review, technology=record,
                           received=request.args.get("received") == "1",
                           place=(_comment_place(session, posted, review)
                                  if posted.status == "published" else None))


@blp.route("/partners")
def partners() -> str:
    """How partner organisations subscribe to webhooks and verify their signatures."""
    event_types = [(name, kind) for name, kind in EVENT_TYPES.items()]
    return render_template("partners.html", event_types=event_types, example=VERIFY_EXAMPLE)
