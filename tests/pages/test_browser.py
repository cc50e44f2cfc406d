"""A resident in a real browser: search, read, comment by keyboard alone, and accessibility.

Chromium is Debian's (``/usr/bin/chromium``). Without it these tests skip, saying why, unless
``DAYLIGHT_REQUIRE_BROWSER=1`` (CI), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TRACKING = re.compile(r"DL-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}")
MAX_TABS = 120


def _unavailable(reason: str) -> None:
    if os.environ.get("DAYLIGHT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (DAYLIGHT_REQUIRE_BROWSER=1 requires the browser tests)")
    pytest.skip(reason)


@pytest.fixture
def backend() -> str:
    """Browser tests run on SQLite only: the pages do not depend on the database engine."""
    return "sqlite"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"Chromium is not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def live_server(app: Any) -> Iterator[str]:
    """The app served over real HTTP from a background thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page the size of a small, old phone."""
    context = browser.new_context(viewport={"width": 360, "height": 640})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


def tab_to(page: Any, condition: str) -> None:
    """Press Tab until ``condition`` (JavaScript on ``el``, the focused element) holds."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => {{ const el = document.activeElement; return !!({condition}); }}"):
            return
    raise AssertionError(f"{condition} was not reached in {MAX_TABS} presses of Tab")


def test_a_resident_finds_reads_and_comments_with_the_keyboard_alone(live_server, page,
                                                                       open_review,
                                                                       make_technology):
    from playwright.sync_api import expect

    technology, _ = open_review()
    make_technology(submit=True, name="Emergency drones", description="Four drones.",
                    purpose="Search for missing people.")
    page.goto(f"{live_server}/technologies")

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    tab_to(page, "el.id === 'q'")
    page.keyboard.type("plate readers")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/technologies\?q=plate\+readers"))
    expect(page.get_by_role("link", name="Emergency drones")).to_have_count(0)

    tab_to(page, "el.textContent === 'Automated licence-plate readers'")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/technologies/{technology['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Automated licence-plate readers")
    expect(page.get_by_role("heading", name="How it measures up to the city's policies")
           ).to_be_visible()
    expect(page.get_by_text("Does the record say what the technology is for?")).to_be_visible()

    tab_to(page, "el.id === 'body'")
    page.keyboard.type("Ninety days is too long.\nPlease keep reads for a week at most.")
    tab_to(page, "el.id === 'display_name'")
    page.keyboard.type("Keyboard Kim")
    tab_to(page, "el.id === 'neighborhood'")
    page.keyboard.type("Eastside")
    tab_to(page, "el.name === 'position'")
    page.keyboard.press("ArrowUp")  # from "Prefer not to say" to "Neutral"
    tab_to(page, "el.type === 'submit'")
    page.keyboard.press("Enter")

    page.wait_for_url(re.compile(r"/comments/DL-"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your comment’s receipt")
    number = page.locator(".tracking").inner_text()
    assert TRACKING.fullmatch(number)
    expect(page.get_by_text("Published", exact=True)).to_be_visible()

    page.goto(f"{live_server}/technologies/{technology['id']}")
    comment = page.locator("article.comment").filter(has_text="Keyboard Kim")
    expect(comment).to_contain_text("Neutral")
    expect(comment).to_contain_text("Please keep reads for a week at most.")


def test_a_hostile_comment_is_shown_as_text_and_runs_nothing(browser, live_server,
                                                             open_review):
    from playwright.sync_api import expect

    technology, _ = open_review()
    # Without the page's Content-Security-Policy, so escaping alone must stop the payload.
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    payload = ('<script>window.__pwned = 1</script>'
               '<img src=x onerror="window.__pwned = 2">')
    name = '<img src=x onerror="window.__pwned = 3">'
    page.goto(f"{live_server}/technologies/{technology['id']}")
    page.locator("#body").fill(payload)
    page.locator("#display_name").fill(name)
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/comments/DL-"))

    page.goto(f"{live_server}/technologies/{technology['id']}")
    comment = page.locator("article.comment").last
    expect(comment.locator(".prose")).to_have_text(payload)
    expect(comment.get_by_role("heading")).to_have_text(name)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("article.comment img").count() == 0
    context.close()


def test_every_page_has_no_serious_or_critical_accessibility_violations(live_server, page,
                                                                        open_review,
                                                                        add_comments):
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import expect

    technology, review = open_review()
    number = add_comments(review["id"], ["Keep it to a week.", "Keep it to a week.",
                                         "I support it."], neighborhood="Eastside")[0]
    axe = Axe()
    problems: dict[str, list[str]] = {}

    def check(label: str) -> None:
        violations = axe.run(page).response["violations"]
        serious = [f"{v['id']} ({v['impact']}): {v['help']} — {len(v['nodes'])} node(s)"
                   for v in violations if v["impact"] in ("serious", "critical")]
        if serious:
            problems[label] = serious

    for path in ("/", "/technologies", "/technologies?q=plate", f"/technologies/{technology['id']}",
                 "/partners", f"/comments/{number}", "/technologies/tech_missing"):
        page.goto(f"{live_server}{path}")
        check(path)
    # The form after a failed attempt, with its errors beside the fields.
    page.goto(f"{live_server}/technologies/{technology['id']}")
    page.locator("#body").fill("   ")
    page.locator("#email").fill("not-an-email")
    page.locator("button[type=submit]").click()
    expect(page.locator("#body-error")).to_be_visible()
    expect(page.locator("#email")).to_have_value("not-an-email")
    check("comment form with errors")
    assert problems == {}
