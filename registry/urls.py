"""Absolute links to the site and the API, from ``DAYLIGHT_PUBLIC_URL``."""

from __future__ import annotations

from flask import current_app


def base_url() -> str:
    """The public base URL, without a trailing slash."""
    return str(current_app.config["PUBLIC_URL"]).rstrip("/")


def page_url(path: str) -> str:
    """An absolute link to a page, e.g. ``page_url('/technologies/tech_…')``."""
    return base_url() + path


def api_url(path: str) -> str:
    """An absolute link to an API resource, e.g. ``api_url('/technologies/tech_…')``."""
    return base_url() + "/api/v1" + path


def technology_page(technology_id: str) -> str:
    """The resident page of a technology."""
    return page_url(f"/technologies/{technology_id}")
