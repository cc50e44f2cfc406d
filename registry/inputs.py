"""Text no database can store, or no feed can carry, is refused at the door, with a 4xx that
names where it was.

Two kinds of character pass every schema's checks and then fail in the database, as a 500:

- the NUL character (U+0000): PostgreSQL's text cannot hold it (psycopg raises
  ``DataError``), while SQLite would store it, so the same request would fail on one
  database and not the other; it reaches us as ``%00`` in an address or a form, or as
  ``\\u0000`` in JSON;
- a lone surrogate (U+D800 to U+DFFF), which only JSON's ``\\ud800`` escapes can make (an
  address or a form is decoded from UTF-8, which has none): it is not a character at all,
  and no UTF-8 encoder, so neither database driver, takes it.

And the other control characters but tab, line feed and carriage return (U+0001 to
U+001F), with the noncharacters U+FFFE and U+FFFF: both databases store them, but XML
cannot hold them, so one in a comment's name made the Atom feed a 500 for everyone until
a hundred newer events pushed it out. Nobody types them; they come from bad copies and
from people testing what breaks. They are refused in JSON and in queries; a page's form
keeps them (a resident pasting a document should not lose a comment to an invisible
character), and the feed leaves them out (``xml_safe``), as it does anything stored
before.

And two shapes of JSON fail in Python's parsers rather than in the database: arrays and
objects nested about a thousand deep exhaust the recursion limit (``RecursionError``, a
500), and an integer of more than 4,300 digits passes Python's limit on converting them (a
``ValueError`` Flask's parsers do not catch). A body nested more than ``MAX_JSON_DEPTH``
levels, or holding such a number, is refused with a 400.

No resident, official or partner means to send any of these. A request carrying one, in its
address, its query, its form fields or anywhere in its JSON body (names included), is
refused before anything runs: 404 when it is in the path (no record or page is named so),
422 with the field named for the API, 400 for a page. The comment post's fast path
(``registry.comments.fast_post``) hands such a post to Flask, which refuses it here.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import BadRequest, NotFound

from registry.errors import Invalid, wants_html

_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_BROKEN = re.compile("[\x00\ud800-\udfff]")  # what no database can store
# The same characters percent-encoded in a query (which is decoded from UTF-8, so it holds no
# surrogate): looked for in the raw query before it is parsed.
_ENCODED = re.compile(r"%(?:0[0-8bcef]|1[0-9a-f]|ef%bf%b[ef])", re.IGNORECASE)
#: How deep a JSON body may nest. Daylight's deepest document nests a few levels; Python's
#: parsers fail near a thousand, depending on the stack they start from.
MAX_JSON_DEPTH = 100

NUL_MESSAGE = "Must not contain the NUL character (U+0000)."
SURROGATE_MESSAGE = ("Must be valid Unicode text: a lone surrogate (U+D800 to U+DFFF, such "
                     "as the JSON escape \\ud800) is not a character.")
CONTROL_MESSAGE = ("Must not contain control characters (U+0001 to U+001F, but tab, line "
                   "feed and carriage return) or the noncharacters U+FFFE and U+FFFF.")


def unstorable(text: str, *, controls: bool = True) -> str | None:
    """Why ``text`` cannot be stored, or None when it can; with ``controls=False``, control
    characters and noncharacters pass (only NUL and lone surrogates are refused)."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if not controls:
        found = _BROKEN.search(text, found.start())
        if found is None:
            return None
    character = found.group()
    if character == "\x00":
        return NUL_MESSAGE
    return SURROGATE_MESSAGE if "\ud800" <= character <= "\udfff" else CONTROL_MESSAGE


def storable(text: str) -> str:
    """``text`` without what no database can store (NUL, lone surrogates), to show a
    refused text back so it can be sent again."""
    return _BROKEN.sub("", text)


def xml_safe(text: str) -> str:
    """``text`` without the characters XML cannot hold, for the feed: a page's form keeps
    them, and text stored before JSON refused them may hold them."""
    return _UNSTORABLE.sub("", text)


def _problems(value: Any) -> Iterator[tuple[str, str]]:
    """(dotted path, message) for each string in a parsed JSON value (object keys
    included) that cannot be stored. Iterative: nesting as deep as a parser allows cannot
    exhaust the stack here."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        prefix, item = stack.pop()
        if isinstance(item, str):
            message = unstorable(item)
            if message is not None:
                yield prefix or "_body", message
        elif isinstance(item, dict):
            for key, child in item.items():
                path = f"{prefix}.{key}" if prefix else str(key)
                message = unstorable(str(key))
                if message is not None:
                    # The name itself is the problem: show it without the character.
                    yield _UNSTORABLE.sub("\ufffd", path), message
                else:
                    stack.append((path, child))
        elif isinstance(item, list):
            stack.extend((f"{prefix}.{index}" if prefix else str(index), child)
                         for index, child in enumerate(item))


def unstorable_fields(value: Any) -> dict[str, list[str]]:
    """Every string in a parsed JSON value (object keys included) that cannot be stored,
    by its dotted path (``meetings.0.place``; ``_body`` for the whole document)."""
    found: dict[str, list[str]] = {}
    for path, message in _problems(value):
        found[path] = [message]
    return found


def has_unstorable(value: Any) -> bool:
    """Whether a parsed JSON value holds any string that cannot be stored."""
    return next(_problems(value), None) is not None


def _deeper_than(value: Any, levels: int) -> bool:
    """Whether arrays and objects nest more than ``levels`` deep in ``value``."""
    stack: list[tuple[int, Any]] = [(0, value)]
    while stack:
        depth, item = stack.pop()
        if isinstance(item, dict | list):
            if depth >= levels:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((depth + 1, child) for child in children)
    return False


def _from_pairs(pairs: Any, *, controls: bool = True) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, item in pairs:
        message = unstorable(key) or unstorable(item, controls=controls)
        if message is not None:
            found[_UNSTORABLE.sub("\ufffd", key)] = [message]
    return found


def _json_errors() -> dict[str, list[str]]:
    if not request.is_json:
        return {}
    data = request.get_data(cache=True)
    # Cheap first: in UTF-8 JSON, either character shows as an escape (``\\u``) or a raw
    # zero byte (UTF-16 and UTF-32 JSON are full of zero bytes, so they are parsed too);
    # nesting too deep needs more brackets than that, and a number too long more bytes.
    digits = sys.get_int_max_str_digits()  # 0: no limit
    if (b"\\u" not in data and b"\x00" not in data
            and data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH
            and (digits == 0 or len(data) <= digits)):
        return {}
    try:
        parsed = json.loads(data)  # as Flask and webargs will (bytes: UTF-8, -16 or -32)
        too_deep = _deeper_than(parsed, MAX_JSON_DEPTH)
    except RecursionError:  # Python's parser gave up first
        too_deep = True
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}  # not JSON: the route's own parser says so
    except ValueError:
        # The one other way: an integer past Python's limit on the digits it converts
        # (CVE-2020-10735), which Flask's parsers would let through as a 500.
        raise BadRequest(f"The JSON body holds a number of more than {digits} digits; "
                         "nothing was read.") from None
    if too_deep:
        # Past Python's recursion limit the parsers further on would fail with a 500.
        raise BadRequest(f"The JSON body nests arrays and objects more than {MAX_JSON_DEPTH} "
                         "levels deep; nothing was read.")
    return unstorable_fields(parsed)


def check_request() -> None:
    """Refuse the request if its address, query, form or JSON holds unstorable text."""
    # Every request passes here, reads most of all: look at the raw environ first. The
    # server has decoded the path already; a query can hold a NUL or a control character
    # only percent-encoded (its other characters are decoded from UTF-8, which has no
    # surrogates).
    environ = request.environ
    if "\x00" in environ.get("PATH_INFO", ""):
        raise NotFound()
    errors: dict[str, list[str]] = {}
    if _ENCODED.search(environ.get("QUERY_STRING", "")):
        errors.update(_from_pairs(request.args.items(multi=True)))
    if environ.get("CONTENT_TYPE"):
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            # A resident's pasted text may carry an invisible control character: it is
            # kept (the feeds leave it out, ``xml_safe``) rather than refused, which would
            # cost the resident the comment. Only what no database can store is refused.
            errors.update(_from_pairs(request.form.items(multi=True), controls=False))
        errors.update(_json_errors())
    if not errors:
        return
    if wants_html():
        raise BadRequest("The address or the form held a character that cannot be stored "
                         "(the NUL character or another control character, or a broken "
                         "one). Nothing was saved.")
    raise Invalid("Some fields hold a character that cannot be stored; see errors.",
                  errors=errors)


def init_app(app: Flask) -> None:
    """Check every request before anything else runs (register before other hooks)."""
    app.before_request(check_request)
