"""Daylight: the public registry a city uses to oversee its surveillance technology."""

from __future__ import annotations

from typing import Any

from flask import Flask

__all__ = ["create_app"]


#: The Swagger UI release /api/v1/docs loads (its files' hashes are in swagger_ui.html).
SWAGGER_UI = "5.36.0"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the web app. No side effects: nothing is connected, created or started here.

    Settings come from the defaults, then the environment (CONTRACT §2), then ``test_config``.
    A ``CLOCK`` entry in ``test_config`` replaces the system clock (tests). With
    ``SERVE_HTTP: False`` no routes are registered: the app a ``daylight worker`` needs
    (settings, database, clock), built in a fraction of the time.
    """
    from registry import database
    from registry.clock import SystemClock
    from registry.config import load_settings

    app = Flask(__name__, instance_relative_config=True)
    overrides = dict(test_config or {})
    clock = overrides.pop("CLOCK", None) or SystemClock()
    app.config.update(load_settings(app.instance_path, overrides))
    app.config.update(
        API_TITLE="Daylight",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # One release, not "@5": registry/templates/swagger_ui.html checks these files'
        # hashes, so a new release (or a tampered one) does not run on this origin.
        OPENAPI_SWAGGER_UI_URL=f"https://cdn.jsdelivr.net/npm/swagger-ui-dist@{SWAGGER_UI}/",
        API_SPEC_OPTIONS={
            "info": {"description": "The public registry of the city's surveillance technology."},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        },
    )
    app.extensions["daylight.clock"] = clock

    database.init_app(app)
    if overrides.get("SERVE_HTTP", True):
        _init_http(app)
    return app


def _init_http(app: Flask) -> None:
    from registry import cache, cli, errors, health, inputs
    from registry.api import DaylightApi
    from registry.auth import context as auth_context
    from registry.comments import fast_post, summaries
    from registry.config import check_rate_limits
    from registry.extensions import csrf, limiter

    check_rate_limits(app.config)
    inputs.init_app(app)  # first: no other hook sees text the database cannot store
    auth_context.init_app(app)  # then a token sent, before any route or limit counts it
    cache.init_app(app)
    summaries.init_app(app)
    fast_post.init_app(app)
    limiter.init_app(app)
    # The limiter is one object for every app in the process, and init_app gives it a new
    # store: that store starts as reachable, whatever an earlier app's store became.
    limiter._storage_dead = False
    csrf.init_app(app)
    api = DaylightApi(app)
    errors.register_error_handlers(app)
    _register_blueprints(app, api)
    app.register_blueprint(health.blp)
    _register_pages(app)
    cli.register_commands(app)
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Outermost, so that every middleware (the comment fast path's rate-limit key
        # among them) and every route sees the client's address, not the proxy's.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies)


def _register_blueprints(app: Flask, api: Any) -> None:
    from registry.assessments.routes import blp as policies
    from registry.comments.routes import blp as comments
    from registry.departments.routes import blp as departments
    from registry.events.routes import blp as events
    from registry.extensions import csrf
    from registry.reviews.routes import blp as reviews
    from registry.technologies.routes import blp as technologies
    from registry.vocabularies import blp as vocabularies
    from registry.webhook_endpoints.routes import blp as webhooks

    for blueprint in (departments, technologies, policies, reviews, comments, events,
                      vocabularies, webhooks):
        # API clients authenticate with bearer tokens, not cookies: CSRF does not apply.
        csrf.exempt(blueprint)
        api.register_blueprint(blueprint)


def _register_pages(app: Flask) -> None:
    from registry.feeds.routes import blp as feeds
    from registry.pages.routes import blp as pages
    from registry.pages.routes import security_headers

    app.register_blueprint(pages)
    app.register_blueprint(feeds)
    security_headers(app)
