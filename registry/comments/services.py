"""Posting and moderating comments, receipts, summaries, the CSV export, the email purge."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import ipaddress
import re
import secrets
import unicodedata
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import datetime, timedelta
from typing import Any, Protocol

from defusedcsv import csv as safe_csv
from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from registry.comments.idempotency import reused_key, stored_under, stored_values
from registry.comments.models import Comment, CommenterContact, CommentFlag, CommentStatus
from registry.db import read_only
from registry.errors import Conflict, NotFound
from registry.events.head import APPENDED
from registry.events.models import Event
from registry.events.services import (
    NewEvent,
    append_event,
    append_events,
    append_events_on,
    public_data,
)
from registry.ids import new_id
from registry.reviews.models import Review, ReviewStatus, takes_comments
from registry.statements import DriverStatement
from registry.urls import technology_page

ANONYMOUS = "Anonymous resident"
_TRACKING_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O or 1/I to misread
_WORDS = re.compile(r"[^\w]+", re.UNICODE)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def client_key(secret_key: str, address: str | None) -> str | None:
    """A keyed hash of the client an address names (``client_network``): comparable, but
    not reversible to the address."""
    if not address:
        return None
    key = hashlib.sha256(b"daylight-client-key:" + secret_key.encode()).digest()
    return hmac.new(key, client_network(address).encode(), hashlib.sha256).hexdigest()


def client_network(address: str) -> str:
    """The part of an address that stands for one client: an IPv4 address whole, an IPv6
    address's /64 network.

    One IPv6 subscriber is given a /64 at least and picks addresses in it at will (privacy
    extensions make a new one every day or so), so counting by whole address would let one
    client spend a fresh comment budget, and flag a comment again, from each of 2^64
    addresses, and fill the rate limiter's memory with their counters. An IPv4 address
    written as IPv6 (``::ffff:192.0.2.1``) is the IPv4 client. Anything that is not an
    address is kept as it is.
    """
    if ":" not in address:
        return address  # IPv4 (or not an address): the common case, without parsing
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))


def fingerprint(body: str) -> str:
    """The same for two texts that differ only in case, spacing, punctuation or accents."""
    text = unicodedata.normalize("NFKD", body.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    words = _WORDS.sub(" ", text).split()
    return hashlib.sha256(" ".join(words).encode()).hexdigest()


def _tracking_number() -> str:
    # One read of the system's randomness, not one per character; 32 letters divide 256,
    # so taking each byte's low five bits keeps every letter equally likely.
    chars = "".join(_TRACKING_ALPHABET[byte & 31] for byte in secrets.token_bytes(8))
    return f"DL-{chars[:4]}-{chars[4:]}"


class ReviewPeriod(Protocol):
    """What posting a comment needs of its review: a ``Review``, or the ``ReviewWindow``
    the comment writer reads without the ORM."""

    @property
    def id(self) -> str: ...
    @property
    def technology_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def comment_opens_at(self) -> datetime: ...
    @property
    def comment_closes_at(self) -> datetime: ...


@dataclass(frozen=True)
class ReviewWindow:
    """A review's comment period as read in a writing transaction (no ORM object)."""

    id: str
    technology_id: str
    status: str
    comment_opens_at: datetime
    comment_closes_at: datetime


# Built once and run on the driver's cursor (``registry.statements``): under a surge,
# SQLAlchemy's work for each statement cost more than the database's.
_WINDOW = DriverStatement(
    select(col(Review.id), col(Review.technology_id), col(Review.status),
           col(Review.comment_opens_at), col(Review.comment_closes_at)
           ).where(col(Review.id) == bindparam("id")))
_INSERT_COMMENTS = DriverStatement(insert(Comment))
_INSERT_CONTACTS = DriverStatement(insert(CommenterContact))


def review_windows(connection: Connection, review_ids: Collection[str]) -> dict[str, ReviewWindow]:
    """The comment periods of ``review_ids`` that exist, by id, read on ``connection``."""
    # One statement per review: a group of posts almost always shares one.
    return {row[0]: ReviewWindow(*row) for review_id in review_ids
            for row in _WINDOW.execute(connection, {"id": review_id})}


@dataclass(frozen=True)
class PostedComment:
    """A comment just stored, as its author's receipt and its event show it."""

    id: str
    review_id: str
    tracking_number: str
    status: str
    body: str
    display_name: str
    neighborhood: str | None
    position: str | None
    published_at: datetime | None
    created_at: datetime
    hidden_reason: str | None = None
    # True when this is the comment an earlier try of the same post stored (its author
    # sent it again with the same idempotency key): the receipt says so.
    replayed: bool = False


_POSTED_FIELDS = tuple(field.name for field in dataclass_fields(PostedComment)
                       if field.name != "replayed")


def replayed_comment(row: Mapping[str, Any]) -> PostedComment:
    """The comment in ``row`` (as stored now), as the receipt of a post sent again."""
    return PostedComment(**{name: row[name] for name in _POSTED_FIELDS}, replayed=True)


def replay(connection: Connection, review_id: str, key: str,
           fields: Mapping[str, Any]) -> PostedComment | None:
    """The comment stored on ``review_id`` under the idempotency ``key`` (a hash) if there
    is one; ``Invalid`` if it was posted with other fields."""
    earlier = stored_under(connection, review_id, [key]).get(key)
    if earlier is None:
        return None
    if earlier.values != stored_values(fields):
        raise reused_key()
    return replayed_comment(earlier.comment)


def comment_url(comment: Comment | PostedComment, review: ReviewPeriod) -> str:
    """The comment's lasting address: a page that redirects to the page of comments that
    holds it (``registry.pages.routes.comment_link``). The technology page lists comments
    20 at a time, oldest first, so an anchor on its first page would miss most of them;
    finding the right page takes a query, made when the link is followed, not here (this
    runs on every comment posted)."""
    return f"{technology_page(review.technology_id)}/comments/{comment.id}"


def public_comment(comment: Comment, review: Review) -> dict[str, Any]:
    """A comment as anyone may see it (a hidden one keeps only its reason)."""
    base: dict[str, Any] = {
        "id": comment.id,
        "review_id": comment.review_id,
        "url": comment_url(comment, review),
        "status": comment.status,
        "published_at": comment.published_at,
    }
    if comment.status == CommentStatus.HIDDEN.value:
        return {**base, "display_name": None, "neighborhood": None, "position": None,
                "body": None, "hidden_reason": comment.hidden_reason}
    return {**base, "display_name": comment.display_name, "neighborhood": comment.neighborhood,
            "position": comment.position, "body": comment.body, "hidden_reason": None}


def _event_comment(comment: Comment | PostedComment, review: ReviewPeriod) -> dict[str, Any]:
    return {"id": comment.id, "review_id": comment.review_id,
            "url": comment_url(comment, review), "display_name": comment.display_name,
            "neighborhood": comment.neighborhood, "position": comment.position,
            "body": comment.body, "published_at": _iso(comment.published_at)}


def _review_ref(review: ReviewPeriod) -> dict[str, Any]:
    return {"id": review.id, "url": f"{technology_page(review.technology_id)}#review-{review.id}"}


def require_open(review: ReviewPeriod, now: datetime) -> None:
    """Comments are accepted only while the period is open; otherwise say when it was or is."""
    if takes_comments(review.status, review.comment_closes_at, now):
        return
    if review.status == ReviewStatus.SCHEDULED.value:
        detail = (f"The comment period has not opened yet; it opens at "
                  f"{_iso(review.comment_opens_at)}.")
    elif review.status == ReviewStatus.CANCELLED.value:
        detail = "This review was cancelled; it takes no comments."
    else:
        detail = f"The comment period closed at {_iso(review.comment_closes_at)}."
    raise Conflict(detail, review_status=review.status,
                   comment_opens_at=_iso(review.comment_opens_at),
                   comment_closes_at=_iso(review.comment_closes_at))


@dataclass(frozen=True)
class NewComment:
    """A resident's validated comment, on its way to being stored."""

    review: ReviewPeriod
    fields: Mapping[str, Any]
    client: str | None  # the keyed hash of the client's address
    now: datetime
    idempotency_key: str | None = None  # its hash (registry.comments.idempotency)


def post_comment(
    session: Session, review: Review, fields: Mapping[str, Any], *, moderation: str,
    client: str | None, now: datetime, idempotency_key: str | None = None,
) -> PostedComment:
    """Take a resident's comment. Published at once under post-moderation, else held.

    With an ``idempotency_key`` (a hash, ``registry.comments.idempotency``), the comment
    already stored under it is returned (``replayed``) instead of a second one.
    To change the comment later in the same transaction, load it with ``get_comment``.
    """
    new = [NewComment(review, fields, client, now, idempotency_key)]
    if idempotency_key is None:
        require_open(review, now)
        return post_comments(session, new, moderation=moderation)[0]
    # Before the period's check: a post stored just before it closed, sent again just
    # after, gets its receipt.
    earlier = replay(session.connection(), review.id, idempotency_key, fields)
    if earlier is not None:
        return earlier
    require_open(review, now)
    try:
        # A savepoint: another process may store the same post at this moment (on
        # PostgreSQL; SQLite's write lock rules that out), and then its comment is the answer.
        with session.begin_nested():
            return post_comments(session, new, moderation=moderation)[0]
    except IntegrityError:
        earlier = replay(session.connection(), review.id, idempotency_key, fields)
        if earlier is None:
            raise
        return earlier


@dataclass(frozen=True)
class PreparedComment:
    """A comment's rows: the comment (returned to its author), its private contact row,
    and its event when published at once."""

    comment: PostedComment
    row: dict[str, Any]
    contact: dict[str, Any]
    event: NewEvent | None


def post_comments(session: Session, posts: Sequence[NewComment], *,
                  moderation: str) -> list[PostedComment]:
    """Store comments whose periods the caller found open (``require_open``), with their
    private contact rows and, when published at once, their events; all or none."""
    prepared = prepare_comments(posts, moderation=moderation)
    if prepared:
        session.flush()  # anything the caller changed before goes first
        if store_comments(session.connection(), prepared):
            session.info[APPENDED] = True
    return [item.comment for item in prepared]


def prepare_comments(posts: Sequence[NewComment], *,
                     moderation: str) -> list[PreparedComment]:
    """Build the rows of comments to store (no database). Published at once under
    post-moderation, else held."""
    published = moderation == "post"
    prepared = []
    for post in posts:
        body = post.fields["body"]
        # 32^8 tracking numbers: a collision is about as likely as a meteor strike, and
        # would surface as a unique-key conflict (nothing saved), so no savepoint per post.
        row: dict[str, Any] = {
            "id": new_id("cmt"), "review_id": post.review.id,
            "tracking_number": _tracking_number(),
            "status": (CommentStatus.PUBLISHED if published else CommentStatus.HELD).value,
            "body": body,
            "display_name": (post.fields.get("display_name") or "").strip() or ANONYMOUS,
            "neighborhood": (post.fields.get("neighborhood") or "").strip() or None,
            "position": post.fields.get("position"), "fingerprint": fingerprint(body),
            "flag_count": 0, "hidden_reason": None, "hidden_at": None,
            "published_at": post.now if published else None, "created_at": post.now,
            "idempotency_key": post.idempotency_key,
        }
        comment = PostedComment(**{name: row[name] for name in _POSTED_FIELDS})
        contact = {"comment_id": comment.id, "client_key": post.client,
                   "email": (post.fields.get("email") or "").strip() or None,
                   "created_at": post.now}
        event = _published_event(comment, post.review, post.now) if published else None
        prepared.append(PreparedComment(comment, row, contact, event))
    return prepared


def store_comments(connection: Connection, prepared: Sequence[PreparedComment]) -> bool:
    """Insert prepared comments, their contact rows and events in ``connection``'s
    transaction; True if events were appended (the commit then moves the log's head).

    Core inserts, several rows a statement: a comment surge is the heaviest write Daylight
    takes, and the ORM's unit of work costs more than the rows themselves.
    """
    if not prepared:
        return False
    _INSERT_COMMENTS.executemany(connection, [item.row for item in prepared])
    _INSERT_CONTACTS.executemany(connection, [item.contact for item in prepared])
    return bool(append_events_on(
        connection, [item.event for item in prepared if item.event is not None]))


def _published_event(comment: Comment | PostedComment, review: ReviewPeriod,
                     now: datetime) -> NewEvent:
    return NewEvent(type="comment.published", subject_type="comment", subject_id=comment.id,
                    technology_id=review.technology_id, timestamp=now,
                    data={"comment": _event_comment(comment, review),
                          "review": _review_ref(review)})


def get_comment(session: Session, comment_id: str, *, for_update: bool = False) -> Comment:
    """A comment by id, or 404."""
    query = select(Comment).where(col(Comment.id) == comment_id)
    if for_update:
        query = query.with_for_update()
    comment: Comment | None = session.execute(query).scalar_one_or_none()
    if comment is None:
        raise NotFound(f"There is no comment {comment_id!r}.")
    return comment


def get_by_tracking_number(session: Session, tracking_number: str) -> Comment:
    """A comment by its receipt's tracking number, or 404."""
    comment: Comment | None = session.execute(
        select(Comment).where(col(Comment.tracking_number) == tracking_number.strip().upper())
    ).scalar_one_or_none()
    if comment is None:
        raise NotFound(f"No comment has the tracking number {tracking_number!r}.")
    return comment


def comment_before(session: Session, comment: Comment) -> str | None:
    """The id of the public comment just before ``comment`` on its review (None when it is
    the first): a page of ``list_comments`` after it starts with ``comment``."""
    found: str | None = session.execute(
        select(func.max(col(Comment.id))).where(
            col(Comment.review_id) == comment.review_id, col(Comment.id) < comment.id,
            col(Comment.status).in_([CommentStatus.PUBLISHED.value,
                                     CommentStatus.HIDDEN.value]),
            col(Comment.published_at).is_not(None))
    ).scalar_one_or_none()
    return found


def list_comments(session: Session, review: Review, *, after: str | None, limit: int,
                  include_held: bool = False) -> list[Comment]:
    """Comments in the order they arrived: published and hidden (as stubs), plus held ones
    for reviewers."""
    statuses = [CommentStatus.PUBLISHED.value, CommentStatus.HIDDEN.value]
    if include_held:
        statuses.append(CommentStatus.HELD.value)
    query = select(Comment).where(col(Comment.review_id) == review.id,
                                  col(Comment.status).in_(statuses))
    if not include_held:
        # A held comment that was hidden before publication was never public.
        query = query.where(col(Comment.published_at).is_not(None))
    if after:
        query = query.where(col(Comment.id) > after)
    return list(session.execute(query.order_by(col(Comment.id)).limit(limit)).scalars())


def emails_for(session: Session, comments: list[Comment]) -> dict[str, str | None]:
    """Commenters' emails, for reviewers only."""
    if not comments:
        return {}
    rows = session.execute(
        select(col(CommenterContact.comment_id), col(CommenterContact.email))
        .where(col(CommenterContact.comment_id).in_([c.id for c in comments]))
    ).all()
    return {comment_id: email for comment_id, email in rows}


def hide_comment(session: Session, comment: Comment, *, reason: str, now: datetime) -> Comment:
    """Take a comment out of public view; the reason stays public."""
    if comment.status == CommentStatus.HIDDEN.value:
        raise Conflict("This comment is already hidden.", current_status=comment.status,
                       allowed_statuses=["published", "held"])
    was_public = comment.status == CommentStatus.PUBLISHED.value
    comment.status = CommentStatus.HIDDEN.value
    comment.hidden_reason = reason
    comment.hidden_at = now
    session.add(comment)
    session.flush()
    if was_public:
        review = session.get(Review, comment.review_id)
        assert review is not None
        append_event(session, type="comment.hidden", subject_type="comment",
                     subject_id=comment.id, technology_id=review.technology_id, now=now,
                     data={"comment": {"id": comment.id, "review_id": review.id,
                                       "url": comment_url(comment, review)},
                           "reason": reason, "review": _review_ref(review)})
        _withhold_from_webhooks(session, comment)
    return comment


def _withhold_from_webhooks(session: Session, comment: Comment) -> None:
    """Rewrite the webhook messages of ``comment``'s ``comment.published`` events as the log
    now shows them (``registry.events.services.public_data``): a delivery still waiting for
    its retry, or sent again by hand, carries the comment as hidden. Those already received
    cannot be called back; ``comment.hidden`` asks partners to do the same."""
    from webhooks import WebhookMessage, message_body

    published = list(session.execute(
        select(Event).where(col(Event.subject_type) == "comment",
                            col(Event.subject_id) == comment.id,
                            col(Event.type) == "comment.published")).scalars())
    withheld = frozenset({comment.id})
    for event in published:
        message = session.get(WebhookMessage, event.id)
        if message is not None:  # none when nobody subscribed
            message.body = message_body(event.type, event.timestamp,
                                        public_data(event, withheld))
            session.add(message)
    session.flush()


def publish_comment(session: Session, comment: Comment, *, now: datetime) -> Comment:
    """Publish a held comment (or restore a hidden one)."""
    if comment.status == CommentStatus.PUBLISHED.value:
        raise Conflict("This comment is already published.", current_status=comment.status,
                       allowed_statuses=["held", "hidden"])
    comment.status = CommentStatus.PUBLISHED.value
    comment.hidden_reason = None
    comment.hidden_at = None
    comment.published_at = comment.published_at or now
    session.add(comment)
    session.flush()
    review = session.get(Review, comment.review_id)
    assert review is not None
    append_events(session, [_published_event(comment, review, now)])
    return comment


def flag_comment(session: Session, comment: Comment, *, reason: str | None,
                 client: str | None, now: datetime) -> Comment:
    """Report a comment for moderation (one flag per client counts). Only a comment that
    was published can be flagged: one held, or hidden before it was ever published, was
    never public, and is as absent as one that never was."""
    if comment.published_at is None:
        raise NotFound(f"There is no comment {comment.id!r}.")
    if client is not None:
        seen = session.execute(
            select(col(CommentFlag.id)).where(col(CommentFlag.comment_id) == comment.id,
                                              col(CommentFlag.client_key) == client)
        ).first()
        if seen is not None:
            return comment
    session.add(CommentFlag(id=new_id("flg"), comment_id=comment.id, reason=reason,
                            client_key=client, created_at=now))
    comment.flag_count += 1
    session.add(comment)
    session.flush()
    return comment


@dataclass(frozen=True)
class Tally:
    """What a review's summary is made from, kept so that a later count adds only what was
    published since (``tally_since``) instead of reading every comment again."""

    #: Published comments by (position, neighbourhood).
    cells: Mapping[tuple[str | None, str | None], int]
    #: Texts sent more than once: fingerprint → (comments, the first comment's id).
    groups: Mapping[str, tuple[int, str]]
    #: The first comment's body, by id, for each group.
    samples: Mapping[str, str]


def tally(session: Session, review_id: str) -> Tally:
    """Count every published comment of ``review_id``."""
    # One pass over the comments for both breakdowns (and so the total): at a million
    # comments each pass costs about half a second (docs/performance.md).
    cells = {(position, name): count for position, name, count in session.execute(
        select(col(Comment.position), col(Comment.neighborhood), func.count())
        .where(col(Comment.review_id) == review_id,
               col(Comment.status) == CommentStatus.PUBLISHED.value)
        .group_by(col(Comment.position), col(Comment.neighborhood)))}
    groups = {print_: (count, first_id) for print_, count, first_id in session.execute(
        _letters(review_id).having(func.count() > 1))}
    return Tally(cells, groups, _samples(session, groups, {}))


def _letters(review_id: str, *where: Any) -> Any:
    """Published comments of the review by text (fingerprint): how many, and the first id;
    read from the index on (review_id, fingerprint, status, id)."""
    return (select(col(Comment.fingerprint), func.count(), func.min(col(Comment.id)))
            .where(col(Comment.review_id) == review_id,
                   col(Comment.status) == CommentStatus.PUBLISHED.value, *where)
            .group_by(col(Comment.fingerprint)))


#: Fingerprints asked about in one statement by ``tally_since``.
_FINGERPRINTS_A_QUERY = 500


def tally_since(session: Session, review: ReviewPeriod, earlier: Tally, seq: int,
                head: int) -> Tally | None:
    """``earlier`` (a count that included the log up to ``seq``) with the comments of
    ``review`` published after ``seq`` up to ``head`` added; None when a comment of the
    review was hidden meanwhile, so that only a new count (``tally``) is right.

    Every comment that becomes public does so with a ``comment.published`` event, and every
    one taken down with ``comment.hidden``: the events after ``seq`` are exactly what
    changed. The session must read ``head`` and these events in one snapshot.
    """
    changed = session.execute(
        select(col(Event.type), col(Comment.id), col(Comment.position),
               col(Comment.neighborhood), col(Comment.fingerprint))
        .join(Comment, col(Comment.id) == col(Event.subject_id))
        .where(col(Event.technology_id) == review.technology_id,
               col(Event.seq) > seq, col(Event.seq) <= head,
               col(Event.type).in_(("comment.published", "comment.hidden")),
               col(Comment.review_id) == review.id)).all()
    if any(row[0] == "comment.hidden" for row in changed):
        return None
    cells = dict(earlier.cells)
    news: dict[str, tuple[int, str]] = {}  # fingerprint → (comments, first id) since seq
    for _type, comment_id, position, name, print_ in changed:
        cells[position, name] = cells.get((position, name), 0) + 1
        count, first_id = news.get(print_, (0, comment_id))
        news[print_] = (count + 1, min(first_id, comment_id))
    groups = dict(earlier.groups)
    unknown = []
    for print_, (count, first_id) in news.items():
        if print_ in groups:  # a form letter again: its count so far, plus the news
            counted, first = groups[print_]
            groups[print_] = (counted + count, min(first, first_id))
        else:
            unknown.append(print_)
    # A text not in a group before may have been sent once already: its whole count.
    for at in range(0, len(unknown), _FINGERPRINTS_A_QUERY):
        for print_, count, first_id in session.execute(_letters(
                review.id, col(Comment.fingerprint).in_(unknown[at:at + _FINGERPRINTS_A_QUERY]))):
            if count > 1:
                groups[print_] = (count, first_id)
    return Tally(cells, groups, _samples(session, groups, earlier.samples))


def _samples(session: Session, groups: Mapping[str, tuple[int, str]],
             known: Mapping[str, str]) -> dict[str, str]:
    """Each group's first body: those in ``known``, the others read in one query."""
    wanted = {first_id for _count, first_id in groups.values()}
    missing = wanted.difference(known)
    read = dict(session.execute(
        select(col(Comment.id), col(Comment.body)).where(col(Comment.id).in_(missing))
    ).all()) if missing else {}
    return {first_id: known[first_id] if first_id in known else read[first_id]
            for first_id in wanted}


def _place_key(name: str) -> str | None:
    """A neighbourhood's name folded for counting: "St. John's" and "st johns" are one;
    None when none was given. A name of punctuation alone is kept as it is."""
    folded = name.casefold()
    return _NOT_IN_A_KEY.sub("", folded) or folded or None


_NOT_IN_A_KEY = re.compile(r"[\W_]+")


def summary_of(review_id: str, counted: Tally) -> dict[str, Any]:
    """The summary that ``counted`` makes: counts by position and neighbourhood, and the
    form letters, the most sent first."""
    by_position = {"support": 0, "oppose": 0, "neutral": 0, "unspecified": 0}
    # Residents type their neighbourhood: "Eastside", "East side", "east-side" and
    # " EASTSIDE " are one place to a reader. Counted by a folded key (case, spaces and
    # punctuation aside), shown as most residents spelled it.
    spellings: dict[str | None, dict[str, int]] = {}
    for (position, name), count in counted.cells.items():
        key = position or "unspecified"
        by_position[key] = by_position.get(key, 0) + count
        shown = " ".join((name or "").split())
        place = spellings.setdefault(_place_key(shown), {})
        place[shown] = place.get(shown, 0) + count
    total = sum(by_position.values())
    by_name = {(min(place, key=lambda spelling: (-place[spelling], spelling))
                if folded is not None else None): sum(place.values())
               for folded, place in spellings.items()}
    neighborhoods = [{"neighborhood": name or "Not given", "count": count}
                     for name, count in sorted(by_name.items(),
                                               key=lambda item: (-item[1], item[0] or ""))]
    ordered = sorted(counted.groups.items(), key=lambda item: (-item[1][0], item[1][1]))
    groups = [{"fingerprint": print_, "count": count, "sample_comment_id": first_id,
               "sample_body": counted.samples[first_id]}
              for print_, (count, first_id) in ordered]
    in_groups = sum(count for _print, (count, _first) in ordered)
    return {
        "review_id": review_id,
        "total": total,
        "unique_texts": total - in_groups + len(groups),
        "by_position": by_position,
        "by_neighborhood": neighborhoods,
        "form_letters": groups,
    }


def summary(session: Session, review: Review) -> dict[str, Any]:
    """Counts of published comments by position and neighbourhood, and form-letter groups."""
    return summary_of(review.id, tally(session, review.id))


CSV_COLUMNS = ("id", "published_at", "display_name", "neighborhood", "position", "body",
               "form_letter_fingerprint")


#: Comments read per query by the CSV export: a page at a time, never the whole review (at a
#: million comments, reading them all at once took 32 s and 2.5 GB; docs/performance.md).
EXPORT_PAGE = 2000


def comments_csv_chunks(sessions: Callable[[], Session], review_id: str) -> Iterator[str]:
    """Published comments of ``review_id`` as CSV, safe to open in a spreadsheet and without
    emails, in chunks of ``EXPORT_PAGE`` comments (the header first), oldest first.

    Each page is read by id (``ix_comment_review_status``) as plain rows, in a short read
    transaction of its own on a session from ``sessions``, closed before the page is
    handed on: the memory taken does not grow with the review, and a slow download holds
    no transaction open (on SQLite it would keep the write-ahead log from being copied
    back; on PostgreSQL, a snapshot from vacuum). A comment published during the export
    joins its end if it comes after the page being read; one hidden meanwhile may be in it.
    """
    buffer = io.StringIO()
    writer = safe_csv.writer(buffer, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_COLUMNS)
    page = (select(col(Comment.id), col(Comment.published_at), col(Comment.display_name),
                   col(Comment.neighborhood), col(Comment.position), col(Comment.body),
                   col(Comment.fingerprint))
            .where(col(Comment.review_id) == review_id,
                   col(Comment.status) == CommentStatus.PUBLISHED.value)
            .order_by(col(Comment.id)).limit(EXPORT_PAGE))
    after: str | None = None
    while True:
        with read_only(), sessions() as session:
            rows = session.execute(
                page if after is None else page.where(col(Comment.id) > after)).all()
        for id_, published_at, name, neighborhood, position, body, print_ in rows:
            writer.writerow([id_, _iso(published_at), name, neighborhood or "",
                             position or "", body, print_])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < EXPORT_PAGE:
            return
        after = rows[-1][0]


def purge_commenter_contacts(session: Session, *, now: datetime, retention_days: int,
                             undecided_days: int) -> int:
    """Delete commenters' personal data (their contact rows, and flaggers' keys) once a
    review was decided (or cancelled) ``retention_days`` ago, or closed ``undecided_days``
    ago with no decision yet; returns how many records were purged."""
    cutoff = now - timedelta(days=retention_days)
    finished = select(col(Review.id)).where(
        ((col(Review.status) == ReviewStatus.DECIDED.value) & (col(Review.decided_at) <= cutoff))
        | ((col(Review.status) == ReviewStatus.CANCELLED.value)
           & (col(Review.cancelled_at) <= cutoff))
        | ((col(Review.status) == ReviewStatus.CLOSED.value)
           & (col(Review.closed_at) <= now - timedelta(days=undecided_days)))
    )
    doomed = select(col(Comment.id)).where(col(Comment.review_id).in_(finished))
    result = session.execute(
        delete(CommenterContact).where(col(CommenterContact.comment_id).in_(doomed))
    )
    # A flagger's key (a keyed hash of its network) goes too; the flag and its reason stay.
    flags = session.execute(
        update(CommentFlag).where(col(CommentFlag.comment_id).in_(doomed),
                                  col(CommentFlag.client_key).is_not(None))
        .values(client_key=None)
    )
    session.flush()
    return (int(result.rowcount or 0)  # type: ignore[attr-defined]
            + int(flags.rowcount or 0))  # type: ignore[attr-defined]
