"""Settings come from the environment and are checked at start."""

from __future__ import annotations

import pytest

from registry import create_app
from registry.config import ConfigError


def test_defaults_and_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("DAYLIGHT_PUBLIC_URL", "https://daylight.example.gov/")
    monkeypatch.setenv("DAYLIGHT_TIMEZONE", "America/Los_Angeles")
    monkeypatch.setenv("DAYLIGHT_WEBHOOK_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("DAYLIGHT_COMMENT_MODERATION", "pre")
    monkeypatch.setenv("DAYLIGHT_FLAG_RATE_LIMIT", "5/minute")
    app = create_app()
    assert app.config["FLAG_RATE_LIMIT"] == "5/minute"
    assert app.config["DATABASE_URL"].endswith("x.db")
    assert app.config["PUBLIC_URL"] == "https://daylight.example.gov"
    assert app.config["TIMEZONE"] == "America/Los_Angeles"
    assert app.config["WEBHOOK_ALLOW_PRIVATE"] is True
    assert app.config["COMMENT_MODERATION"] == "pre"
    assert app.config["SECRET_KEY"]  # random for this process


def test_the_default_database_is_sqlite_in_the_instance_folder(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app()
    assert app.config["DATABASE_URL"] == f"sqlite:///{app.instance_path}/daylight.db"


@pytest.mark.parametrize("name, value, message", [
    ("DAYLIGHT_TIMEZONE", "Mars/Olympus", "time zone"),
    ("DAYLIGHT_COMMENT_MODERATION", "sometimes", "'post' or 'pre'"),
    ("DAYLIGHT_PUBLIC_URL", "daylight.example.gov", "http"),
    # flask-limiter would log these and then limit nothing.
    ("DAYLIGHT_COMMENT_RATE_LIMIT", "ten per minute",
     "DAYLIGHT_COMMENT_RATE_LIMIT 'ten per minute' is not a rate limit"),
    ("DAYLIGHT_COMMENT_RATE_LIMIT", "10 per fortnight", "not a rate limit"),
    ("DAYLIGHT_FLAG_RATE_LIMIT", "10 per minute;", "DAYLIGHT_FLAG_RATE_LIMIT"),
    # A negative retention would purge emails before the decision they wait for.
    ("DAYLIGHT_COMMENT_EMAIL_RETENTION_DAYS", "-1", "0 or more days"),
    ("DAYLIGHT_COMMENT_EMAIL_UNDECIDED_DAYS", "a year", "must be a whole number"),
    ("DAYLIGHT_WEBHOOK_LOG_RETENTION_DAYS", "0", "1 or more days"),
    ("DATABASE_URL", "foo", "not a database URL"),
    # The form some platforms hand out: the driver must be named.
    ("DATABASE_URL", "postgres://u:secret@db.example/x", "write postgresql\\+psycopg://"),
    ("DATABASE_URL", "mysql://u@db.example/x", "SQLite"),
])
def test_bad_settings_are_refused_with_a_clear_message(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        create_app()


def test_gunicorn_refuses_to_start_without_a_secret(monkeypatch):
    monkeypatch.delenv("DAYLIGHT_SECRET_KEY", raising=False)
    monkeypatch.setenv("SERVER_SOFTWARE", "gunicorn/23.0.0")
    with pytest.raises(ConfigError, match="DAYLIGHT_SECRET_KEY is required"):
        create_app()
    monkeypatch.setenv("DAYLIGHT_SECRET_KEY", "a-long-random-string")
    assert create_app().config["SECRET_KEY"] == "a-long-random-string"


def test_create_app_has_no_side_effects(tmp_path):
    database = tmp_path / "nothing-here" / "daylight.db"
    create_app({"DATABASE_URL": f"sqlite:///{database}"})
    assert not database.parent.exists()
