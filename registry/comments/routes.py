"""Comment endpoints: post, receipt, list, summary, CSV, moderation."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from flask_smorest import Blueprint

from registry.api import decode_cursor, paged
from registry.auth.context import current_principal, require
from registry.auth.models import Role
from registry.clock import now
from registry.comments.idempotency import REPLAYED_HEADER, key_hash, parse_key
from registry.comments.models import Comment
from registry.comments.schemas import (
    CommentHeaders,
    CommentIn,
    CommentListArgs,
    CommentOut,
    CommentPage,
    CommentReceipt,
    FlagIn,
    HideIn,
    SummaryOut,
)
from registry.comments.services import (
    PostedComment,
    ReviewPeriod,
    client_key,
    comment_url,
    comments_csv_chunks,
    emails_for,
    flag_comment,
    get_by_tracking_number,
    get_comment,
    hide_comment,
    list_comments,
    public_comment,
    publish_comment,
)
from registry.comments.summaries import review_summary
from registry.comments.writer import comment_writer
from registry.database import db, session_factory
from registry.errors import Problem
from registry.extensions import limiter
from registry.reviews.services import get_review

blp = Blueprint("comments", __name__, url_prefix="/api/v1",
                description="Residents' comments and their moderation.")

REVIEWERS = (Role.REVIEWER, Role.ADMIN)


def request_client_key() -> str:
    """The rate-limit and abuse key of this request: a keyed hash, never the address."""
    return client_key(current_app.config["SECRET_KEY"], request.remote_addr) or "unknown"


def comment_rate_limit() -> str:
    """The configured limit on comment posts per client."""
    return str(current_app.config["COMMENT_RATE_LIMIT"])


#: The limiter's name for the comment budget (``registry.comments.fast_post`` spends it too).
COMMENT_LIMIT_SCOPE = "comments"

#: One budget per client for every way of commenting (the API and the page's form).
comment_limit = limiter.shared_limit(comment_rate_limit, scope=COMMENT_LIMIT_SCOPE,
                                     key_func=request_client_key, methods=["POST"])


def flag_rate_limit() -> str:
    """The configured limit on flags per client."""
    return str(current_app.config["FLAG_RATE_LIMIT"])


#: Anyone may flag a comment and each flag is a stored row, so flags have a budget too.
flag_limit = limiter.shared_limit(flag_rate_limit, scope="flags",
                                  key_func=request_client_key, methods=["POST"])


def receipt(comment: Comment | PostedComment, review: ReviewPeriod) -> dict[str, Any]:
    """The author's receipt."""
    return {"id": comment.id, "tracking_number": comment.tracking_number,
            "status": comment.status, "review_id": review.id,
            "url": comment_url(comment, review), "created_at": comment.created_at,
            "published_at": comment.published_at, "hidden_reason": comment.hidden_reason}


@blp.route("/reviews/<review_id>/comments", methods=["POST"])
@comment_limit
# An instance, not the class: webargs would build a schema for every post of a surge.
@blp.arguments(CommentIn())
@blp.arguments(CommentHeaders(), location="headers")
@blp.response(201, CommentReceipt, headers={REPLAYED_HEADER: {
    "description": "`true` when the post was sent before with the same Idempotency-Key: "
                   "this is the receipt of the comment it stored.",
    "schema": {"type": "string", "enum": ["true"]}}})
def post(fields: dict[str, Any], headers: dict[str, Any], review_id: str
         ) -> dict[str, Any] | tuple[dict[str, Any], int, dict[str, str]]:
    """Comment while the period is open (no account needed). Keep the tracking number.

    Send an `Idempotency-Key` to post again safely when an answer was lost."""
    key = headers["idempotency_key"]
    # Written by the process's comment writer with the other posts of the moment, in one
    # transaction (registry.comments.writer); this request opens no session of its own.
    comment, review = comment_writer().post(
        review_id, fields, client=request_client_key(), now=now(),
        idempotency_key=key_hash(parse_key(key)) if key is not None else None)
    if comment.replayed:
        return receipt(comment, review), 201, {REPLAYED_HEADER: "true"}
    return receipt(comment, review)


@blp.route("/reviews/<review_id>/comments", methods=["GET"])
@blp.arguments(CommentListArgs, location="query")
@blp.response(200, CommentPage)
def list_(args: dict[str, Any], review_id: str) -> dict[str, Any]:
    """Published comments, oldest first. Reviewers also see held comments and emails."""
    principal = current_principal()
    is_reviewer = principal is not None and principal.has(*REVIEWERS)
    review = get_review(db(), review_id)
    items = list_comments(db(), review, after=decode_cursor(args["cursor"], str),
                          limit=args["limit"] + 1, include_held=is_reviewer)
    page = paged(items, args["limit"], key=lambda c: c.id)
    shown: list[Comment] = page["items"]
    emails = emails_for(db(), shown) if is_reviewer else {}
    dumped = []
    for comment in shown:
        body = public_comment(comment, review)
        if is_reviewer:
            body = {**body, "body": comment.body, "display_name": comment.display_name,
                    "email": emails.get(comment.id), "flag_count": comment.flag_count}
        dumped.append(body)
    page["items"] = dumped
    return page


@blp.route("/reviews/<review_id>/comments/summary")
@blp.response(200, SummaryOut)
def comment_summary(review_id: str) -> dict[str, Any]:
    """Counts by position and neighbourhood, and form-letter groups (counted, never dropped).

    On a review with very many comments the counts may be a few seconds old (at most a minute);
    ``counted_at`` says when they were made (``registry.comments.summaries``)."""
    return review_summary(db(), get_review(db(), review_id))


@blp.route("/reviews/<review_id>/comments.csv")
@blp.response(200, content_type="text/csv")
def comment_export(review_id: str) -> Response:
    """Published comments as CSV (no emails, ever; safe from spreadsheet formulas)."""
    review = get_review(db(), review_id)
    # Streamed a page of comments at a time, each read in a transaction of its own (the
    # request's session is closed before the body is sent): a review with a million
    # comments is exported in memory that does not grow with it
    # (registry.comments.services.comments_csv_chunks).
    return Response(comments_csv_chunks(session_factory(), review.id),
                    mimetype="text/csv", headers={
                        "Content-Disposition": f'attachment; filename="comments-{review.id}.csv"'})


@blp.route("/comments/<tracking_number>")
@blp.response(200, CommentReceipt)
def by_tracking_number(tracking_number: str) -> dict[str, Any]:
    """A comment's status, for its author's receipt."""
    comment = get_by_tracking_number(db(), tracking_number)
    review = get_review(db(), comment.review_id)
    return receipt(comment, review)


@blp.route("/comments/<comment_id>/hide", methods=["POST"])
@blp.arguments(HideIn)
@blp.response(200, CommentOut)
def hide(fields: dict[str, Any], comment_id: str) -> dict[str, Any]:
    """Take a comment out of public view; the reason stays public (reviewer)."""
    require(*REVIEWERS)
    comment = hide_comment(db(), get_comment(db(), comment_id, for_update=True),
                           reason=fields["reason"].strip(), now=now())
    return public_comment(comment, get_review(db(), comment.review_id))


@blp.route("/comments/<comment_id>/publish", methods=["POST"])
@blp.response(200, CommentOut)
def publish(comment_id: str) -> dict[str, Any]:
    """Publish a held comment, or restore a hidden one (reviewer)."""
    require(*REVIEWERS)
    comment = publish_comment(db(), get_comment(db(), comment_id, for_update=True), now=now())
    return public_comment(comment, get_review(db(), comment.review_id))


@blp.route("/comments/<comment_id>/flag", methods=["POST"])
@flag_limit
@blp.arguments(FlagIn)
@blp.response(202, CommentOut)
def flag(fields: dict[str, Any], comment_id: str) -> dict[str, Any]:
    """Report a comment for moderation (anyone). The body is JSON, even ``{}``."""
    if not request.is_json:
        # Anyone may flag, and each address counts once: a form on another site could
        # otherwise make every visitor's browser flag a comment (a JSON post from another
        # site needs the browser's CORS permission, which is never given).
        raise Problem("Send the flag as JSON (Content-Type: application/json), even an "
                      "empty object {}; nothing was stored.")
    comment = flag_comment(db(), get_comment(db(), comment_id, for_update=True),
                           reason=fields.get("reason"), client=request_client_key(), now=now())
    return public_comment(comment, get_review(db(), comment.review_id))
