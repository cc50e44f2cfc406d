"""Settings, read from the environment once at start and checked there."""

from __future__ import annotations

import os
import secrets
import sys
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


DEFAULTS: dict[str, Any] = {
    "PUBLIC_URL": "http://127.0.0.1:5000",
    "TIMEZONE": "UTC",
    "WEBHOOK_ALLOW_PRIVATE": False,
    "COMMENT_MODERATION": "post",
    # Commenters' emails are kept only to answer them during the review.
    "COMMENT_EMAIL_RETENTION_DAYS": 30,
    # ...and no longer than this after the period closed, when no decision ever comes: a
    # review left undecided must not keep residents' emails for ever.
    "COMMENT_EMAIL_UNDECIDED_DAYS": 365,
    "COMMENT_RATE_LIMIT": "10 per minute;100 per hour",
    # Flags per client: anyone may report a comment, and each report is a stored row.
    "FLAG_RATE_LIMIT": "30 per minute;300 per hour",
    "RATELIMIT_ENABLED": True,
    # Where the comment budget is counted. memory:// counts in each web process, so with
    # several processes each allows the whole budget; a redis:// URL shares one count.
    "RATELIMIT_STORAGE_URI": "memory://",
    # Proxies in front of the web processes whose X-Forwarded-For and -Proto are believed.
    # Behind one (a load balancer, a platform's router) every request comes from its
    # address, so without this every resident would share one comment budget; without a
    # proxy a client could write the header itself, so it is believed only when set.
    "TRUSTED_PROXIES": 0,
    "WEBHOOK_CONCURRENCY": 8,
    # Finished webhook deliveries (and their attempts) are kept this long for partners to
    # look at; the event log, kept for ever, is how a partner catches up on older events.
    "WEBHOOK_LOG_RETENTION_DAYS": 90,
    # Anonymous API reads served from memory while the event log has not moved.
    "READ_CACHE": True,
    # Anonymous JSON comment posts answered in front of Flask (registry.comments.fast_post).
    "COMMENT_FAST_PATH": True,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "JSON_SORT_KEYS": False,
    "WTF_CSRF_TIME_LIMIT": None,
}

#: Settings that are rate limits, in flask-limiter's syntax (``check_rate_limits``).
RATE_LIMIT_KEYS = ("COMMENT_RATE_LIMIT", "FLAG_RATE_LIMIT")
#: Rate-limit stores with their driver installed (``limits`` knows more, e.g. memcached).
RATE_LIMIT_STORES = ("memory", "redis", "rediss", "redis+unix")
#: More proxies than this in a chain is a mistake in the setting, not a deployment.
MAX_TRUSTED_PROXIES = 5
#: Seconds a rate-limit store may take to connect or answer before it counts as down.
RATE_LIMIT_STORE_TIMEOUT = 0.5

_BOOLEAN_KEYS = ("WEBHOOK_ALLOW_PRIVATE", "RATELIMIT_ENABLED", "READ_CACHE",
                 "COMMENT_FAST_PATH")


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def check_rate_limits(settings: dict[str, Any]) -> None:
    """Refuse rate limits that cannot be read (``ConfigError``).

    flask-limiter logs a limit it cannot read and then enforces none: a typo in the setting
    would quietly take every resident's budget away. Checked by the web app only, which
    counts them: ``limits`` costs a restarting worker a tenth of a second to import.
    """
    from limits import parse_many

    for key in RATE_LIMIT_KEYS:
        try:
            parse_many(str(settings[key]))
        except ValueError:
            raise ConfigError(
                f"DAYLIGHT_{key} {str(settings[key])!r} is not a rate limit: use limits such "
                "as '10 per minute;100 per hour' (an amount, 'per', a unit of time; ';' "
                "between limits)") from None


def _check_database_url(value: str) -> None:
    """Refuse a DATABASE_URL Daylight cannot use, saying what to write instead (never
    echoing the URL: it may hold a password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value)
    except ArgumentError:
        raise ConfigError(
            "DATABASE_URL is not a database URL: use sqlite:///path/to/daylight.db or "
            "postgresql+psycopg://user:password@host:5432/name") from None
    if url.drivername in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        return
    if url.get_backend_name() in ("postgres", "postgresql"):
        raise ConfigError(
            f"DATABASE_URL starts with {url.drivername}://, a driver Daylight does not "
            "install: write postgresql+psycopg:// instead (the same URL otherwise)")
    raise ConfigError(
        f"DATABASE_URL names {url.drivername}://; Daylight runs on SQLite (sqlite:///…) or "
        "PostgreSQL (postgresql+psycopg://…)")


def under_gunicorn() -> bool:
    """Whether this process is a gunicorn server (where a random secret would differ per worker)."""
    return "gunicorn" in os.environ.get("SERVER_SOFTWARE", "") or "gunicorn.app" in sys.modules


def load_settings(instance_path: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then ``DAYLIGHT_*`` and ``DATABASE_URL`` from the environment, then overrides."""
    settings: dict[str, Any] = dict(DEFAULTS)
    settings["DATABASE_URL"] = f"sqlite:///{os.path.join(instance_path, 'daylight.db')}"
    env = os.environ
    if env.get("DATABASE_URL"):
        settings["DATABASE_URL"] = env["DATABASE_URL"]
    for key in (
        "SECRET_KEY", "PUBLIC_URL", "TIMEZONE", "WEBHOOK_ALLOW_PRIVATE", "COMMENT_MODERATION",
        "COMMENT_EMAIL_RETENTION_DAYS", "COMMENT_EMAIL_UNDECIDED_DAYS", "COMMENT_RATE_LIMIT",
        "FLAG_RATE_LIMIT", "WEBHOOK_CONCURRENCY", "WEBHOOK_LOG_RETENTION_DAYS",
        "READ_CACHE", "COMMENT_FAST_PATH", "RATELIMIT_STORAGE_URI", "TRUSTED_PROXIES",
    ):
        value = env.get(f"DAYLIGHT_{key}")
        if value is not None and value != "":
            settings[key] = value
    settings.update(overrides or {})
    return _checked(settings)


def _checked(settings: dict[str, Any]) -> dict[str, Any]:
    for key in _BOOLEAN_KEYS:
        settings[key] = _truthy(settings[key])
    for key in ("COMMENT_EMAIL_RETENTION_DAYS", "COMMENT_EMAIL_UNDECIDED_DAYS",
                "WEBHOOK_LOG_RETENTION_DAYS", "WEBHOOK_CONCURRENCY", "TRUSTED_PROXIES"):
        try:
            settings[key] = int(settings[key])
        except (TypeError, ValueError):
            raise ConfigError(f"DAYLIGHT_{key} must be a whole number") from None
    for key in ("COMMENT_EMAIL_RETENTION_DAYS", "COMMENT_EMAIL_UNDECIDED_DAYS"):
        if settings[key] < 0:
            raise ConfigError(f"DAYLIGHT_{key} must be 0 or more days")
    if settings["WEBHOOK_LOG_RETENTION_DAYS"] < 1:
        raise ConfigError("DAYLIGHT_WEBHOOK_LOG_RETENTION_DAYS must be 1 or more days: "
                          "partners need the delivery log to see what reached them")
    if not 0 <= settings["TRUSTED_PROXIES"] <= MAX_TRUSTED_PROXIES:
        raise ConfigError(
            f"DAYLIGHT_TRUSTED_PROXIES must be between 0 and {MAX_TRUSTED_PROXIES}: how many "
            "proxies stand in front of Daylight (0 when clients connect to it directly)")
    if settings["COMMENT_MODERATION"] not in ("post", "pre"):
        raise ConfigError("DAYLIGHT_COMMENT_MODERATION must be 'post' or 'pre'")
    try:
        ZoneInfo(str(settings["TIMEZONE"]))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"DAYLIGHT_TIMEZONE {settings['TIMEZONE']!r} is not a known time zone "
            "(use a name such as 'America/Los_Angeles')"
        ) from None
    scheme = urlsplit(str(settings["RATELIMIT_STORAGE_URI"])).scheme
    if scheme not in RATE_LIMIT_STORES:
        # The scheme only: the URL may hold a password.
        raise ConfigError(
            f"DAYLIGHT_RATELIMIT_STORAGE_URI ({scheme or 'no scheme'}://…) is not a store "
            "Daylight can count in: use memory:// (each web process counts alone) or a Redis "
            "URL such as "
            "redis://127.0.0.1:6379/0 (every process shares one count)"
        )
    if scheme.startswith("redis"):
        # A Redis that stops answering must not hold residents' posts: after this long the
        # limiter counts in memory instead (registry.extensions), and tries Redis again later.
        settings.setdefault("RATELIMIT_STORAGE_OPTIONS", {
            "socket_timeout": RATE_LIMIT_STORE_TIMEOUT,
            "socket_connect_timeout": RATE_LIMIT_STORE_TIMEOUT})
    _check_database_url(str(settings["DATABASE_URL"]))
    url = str(settings["PUBLIC_URL"])
    if not url.startswith(("http://", "https://")):
        raise ConfigError("DAYLIGHT_PUBLIC_URL must start with http:// or https://")
    settings["PUBLIC_URL"] = url.rstrip("/")
    # The session cookie carries the forms' CSRF token: a site served over HTTPS sends it
    # over HTTPS only, and no site sends it along with another site's cross-site POST.
    settings.setdefault("SESSION_COOKIE_SECURE", url.startswith("https://"))
    settings.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    # The form's token and that same-site cookie stop forged posts. Flask-WTF's further
    # check over HTTPS, that the Referer names this site, refuses every resident whose
    # browser or privacy setting sends none: they could never comment.
    settings.setdefault("WTF_CSRF_SSL_STRICT", False)
    if not settings.get("SECRET_KEY"):
        if under_gunicorn():
            raise ConfigError(
                "DAYLIGHT_SECRET_KEY is required under gunicorn: every web process must sign "
                "sessions and CSRF tokens with the same key. Set it to a long random string."
            )
        # Development and tests: a key that lives as long as this process.
        settings["SECRET_KEY"] = secrets.token_urlsafe(32)
    return settings
