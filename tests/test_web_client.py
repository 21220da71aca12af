"""The web client at / in a real browser (Chromium): the page, two tabs, cookie mode's guards."""

import os
import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from accounts import refresh as refresh_module
from accounts.browser import refresh_cookie
from accounts.clients import Client
from accounts.models import RevokeReason, SecurityEvent, Session
from accounts.services import open_session
from tests.chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium
from tests.conftest import PASSWORD
from todos.models import Todo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "web-client.png"
LOGGED_OUT = "You have been logged out. Please log in again."
PHONE = "TodoApp/2.3 (Android 14; Pixel 8) okhttp/4.12.0"
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def chromium():
    """One Chromium for the module; each test opens its own context (its own cookie jar)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread, so Django would refuse
    # the tests' own queries as "async"; nothing here runs concurrently with them.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "1"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def context(chromium):
    """One browser profile: its tabs share the cookie jar, as a person's tabs do."""
    context = chromium.new_context(viewport={"width": 1100, "height": 760})
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password=PASSWORD)


def open_tab(context, base: str, *, broadcast: bool = True, errors: list | None = None):
    """A tab on the web client, once it has decided whether it is signed in.

    Script errors and refusals by the Content-Security-Policy go to `errors`; the
    console's notes on API answers such as a 401 do not.
    """
    page = context.new_page()
    if errors is not None:
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                message.type == "error"
                and "Failed to load resource" not in message.text
                and errors.append(message.text)
            ),
        )
    if not broadcast:
        # This tab hears nothing from the others: it finds out from the server.
        page.add_init_script("delete window.BroadcastChannel")
    page.goto(base + "/")
    settled(page)
    return page


def settled(page) -> None:
    """Wait until the page has decided whether it is signed in, and loaded what it shows."""
    page.wait_for_function(
        "() => document.getElementById('loading').hidden"
        " && !document.querySelector('[aria-busy=true]')"
    )


def sign_in(page, username: str = "alice", password: str = PASSWORD) -> None:
    page.fill("#sign-in-username", username)
    page.fill("#sign-in-password", password)
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#signed-in", state="visible")
    settled(page)


def add_todo(page, title: str) -> None:
    page.fill("#new-title", title)
    page.click("#add-todo button[type=submit]")
    page.locator("#todos li", has_text=title).wait_for()


def expect_signed_out(page, message: str) -> None:
    page.wait_for_selector("#signed-out", state="visible")
    assert page.locator("#signed-in").is_hidden()
    assert page.inner_text("#notice") == message


def refreshed_cookie(context) -> dict:
    [cookie] = [c for c in context.cookies() if c["name"] == refresh_cookie().name]
    return cookie


def test_a_first_visit_asks_nothing_and_logs_nothing(context, live_server):
    """No cookie: the sign-in form at once, no refused refresh in the console."""
    page = context.new_page()
    logged, refreshes = [], []
    page.on("console", lambda message: message.type == "error" and logged.append(message.text))
    page.on(
        "request", lambda request: "/auth/browser/refresh" in request.url and refreshes.append(1)
    )
    page.goto(live_server.url + "/")
    settled(page)
    assert page.is_visible("#signed-out") and page.is_hidden("#signed-in")
    assert refreshes == [] and logged == []


def test_page_flow_from_sign_up_to_sign_out(context, live_server, django_user_model):
    errors = []
    page = open_tab(context, live_server.url, errors=errors)
    assert page.is_visible("#sign-in") and page.is_hidden("#notice")

    page.fill("#sign-up-username", "carol")
    page.fill("#sign-up-password", PASSWORD)
    page.click("#sign-up button[type=submit]")
    page.wait_for_selector("#notice:has-text('Signup successful. Please log in to continue.')")
    assert page.input_value("#sign-in-username") == "carol"

    page.fill("#sign-in-password", "not the password")
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#error:has-text('Invalid username or password')")
    sign_in(page, "carol")

    for title in ("Buy milk", "Write the report", "Water the plants"):
        add_todo(page, title)
    page.click("#todos li:has-text('Write the report') input[type=checkbox]")
    page.wait_for_selector("#todos li.done:has-text('Write the report')")
    page.click("#todos li:has-text('Buy milk') button")
    page.locator("#todos li", has_text="Buy milk").wait_for(state="detached")
    carol = django_user_model.objects.get(username="carol")
    assert sorted(Todo.objects.filter(owner=carol).values_list("title", "done")) == [
        ("Water the plants", False),
        ("Write the report", True),
    ]

    # A second session, on a phone: listed, and revocable from here.
    phone, _ = open_session(user=carol, client=Client("203.0.113.9", PHONE))
    page.click("#reload-sessions")
    page.wait_for_selector("#sessions li >> nth=1")
    assert page.locator("#sessions li.current").count() == 1
    assert "This browser" in page.inner_text("#sessions li.current")
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        page.set_viewport_size({"width": 1000, "height": 400})
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.click("#sessions li:not(.current) button")
    page.wait_for_selector("#notice:has-text('Session revoked.')")
    assert page.locator("#sessions li").count() == 1
    phone.refresh_from_db()
    assert phone.revoked_reason == RevokeReason.USER

    page.click("#sign-out")
    expect_signed_out(page, "Signed out.")
    assert not [c for c in context.cookies() if c["name"] == refresh_cookie().name]
    assert Session.objects.active().filter(user=carol).count() == 0
    page.reload()
    page.wait_for_selector("#signed-out", state="visible")
    assert errors == []


def test_page_is_served_under_a_strict_content_security_policy(context, live_server):
    page = context.new_page()
    response = page.goto(live_server.url + "/")
    policy = response.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    # Its own policy (project/views.py), stricter than the admin's: no form posts at all.
    assert directives == {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
    html = page.content()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script"
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", html), "nothing from elsewhere"


def test_refresh_token_out_of_reach_of_page_scripts(context, live_server, alice):
    page = open_tab(context, live_server.url)
    sign_in(page)
    cookie = refreshed_cookie(context)

    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/" and cookie["name"].startswith("__Host-")
    stored = page.evaluate(
        """() => [document.cookie,
                  JSON.stringify(Object.entries(localStorage)),
                  JSON.stringify(Object.entries(sessionStorage))]"""
    )
    assert stored == ["", "[]", "[]"]
    assert all(cookie["value"] not in text for text in stored)

    # A new tab (or a reload) signs in from the cookie alone.
    other = open_tab(context, live_server.url)
    assert other.is_visible("#signed-in")
    assert page.evaluate("document.cookie") == ""


def test_two_tabs_refreshing_at_the_same_moment_both_keep_the_session(
    context, live_server, alice, monkeypatch
):
    first = open_tab(context, live_server.url)
    sign_in(first)
    second = open_tab(context, live_server.url)
    assert second.is_visible("#signed-in")
    session = Session.objects.get(user=alice)
    tokens_before = session.token_links.count()

    # Hold each refresh until the other has arrived too, so both carry the same cookie
    # however the two tabs' timers are scheduled on a busy machine.
    both_arrived = threading.Barrier(2, timeout=10)
    refresh = refresh_module.refresh_session

    def together(**kwargs):
        both_arrived.wait()
        return refresh(**kwargs)

    monkeypatch.setattr(refresh_module, "refresh_session", together)

    # Both tabs refresh at one instant, each with the cookie as it is now.
    at = first.evaluate("Date.now() + 300")
    for tab in (first, second):
        tab.evaluate(
            """at => {
                window.raced = new Promise(done => setTimeout(
                    () => window.todoClient.refresh().then(() => done("ok"), e => done(String(e))),
                    at - Date.now()));
            }""",
            at,
        )
    assert [tab.evaluate("window.raced") for tab in (first, second)] == ["ok", "ok"]
    monkeypatch.undo()

    session.refresh_from_db()
    assert session.revoked_at is None
    assert session.token_links.count() == tokens_before + 1  # one rotation, one new token
    assert SecurityEvent.objects.filter(kind="refresh_replayed", session_id=session.pk).exists()
    add_todo(first, "From the first tab")
    add_todo(second, "From the second tab")
    assert Todo.objects.filter(owner=alice).count() == 2


def test_sign_out_in_one_tab_reaches_the_others(context, live_server, alice):
    tab = open_tab(context, live_server.url)
    sign_in(tab)
    listening = open_tab(context, live_server.url)
    deaf = open_tab(context, live_server.url, broadcast=False)
    assert listening.is_visible("#signed-in") and deaf.is_visible("#signed-in")

    tab.click("#sign-out")
    expect_signed_out(tab, "Signed out.")

    # At once in a tab that hears the others; on its next request in one that doesn't.
    expect_signed_out(listening, LOGGED_OUT)
    assert deaf.is_visible("#signed-in")
    deaf.fill("#new-title", "Too late")
    deaf.click("#add-todo button[type=submit]")
    expect_signed_out(deaf, LOGGED_OUT)
    assert not Todo.objects.exists()

    # Signing in again in one tab signs in the tabs that hear it, from the new cookie.
    sign_in(tab)
    listening.wait_for_selector("#signed-in", state="visible")


def test_sign_out_everywhere_ends_every_session(context, live_server, alice):
    open_session(user=alice, client=Client("203.0.113.9", PHONE))
    tab = open_tab(context, live_server.url)
    sign_in(tab)

    tab.click("#sign-out-all")

    expect_signed_out(tab, "Signed out everywhere (2 sessions ended).")
    assert not Session.objects.active().exists()
    assert not [c for c in context.cookies() if c["name"] == refresh_cookie().name]


def test_admin_revoke_sends_the_page_to_the_sign_in_form(
    context, live_server, alice, django_user_model
):
    operator = django_user_model.objects.create_superuser("operator", password=PASSWORD)
    tab = open_tab(context, live_server.url)
    sign_in(tab)

    Session.objects.filter(user=alice).revoke(RevokeReason.ADMIN, by=operator)
    tab.click("#reload-sessions")

    expect_signed_out(tab, LOGGED_OUT)
    # The cookie of the revoked session cannot bring the page back either.
    tab.reload()
    tab.wait_for_selector("#signed-out", state="visible")


def test_expired_access_token_is_refreshed_and_the_request_retried(context, live_server, alice):
    tab = open_tab(context, live_server.url)
    sign_in(tab)
    statuses = []
    tab.on(
        "response",
        lambda r: (
            r.request.method == "POST" and statuses.append((r.url.split("/", 3)[3], r.status))
        ),
    )

    # Past the access token's 15 minutes on the server, before the page's timer fires.
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        add_todo(tab, "After a coffee break")

    assert statuses == [("todos", 401), ("auth/browser/refresh", 200), ("todos", 201)]
    assert Todo.objects.get().title == "After a coffee break"


def test_page_refreshes_shortly_before_the_access_token_expires(context, live_server, alice):
    context.clock.install()
    tab = open_tab(context, live_server.url)
    sign_in(tab)
    session = Session.objects.get()
    assert session.previous_jti == ""

    with tab.expect_response("**/auth/browser/refresh") as refreshed:
        tab.clock.fast_forward("14:40")  # 20 s before the 15 minutes are up

    assert refreshed.value.status == 200
    session.refresh_from_db()
    assert session.previous_jti != "" and session.revoked_at is None


def test_cross_site_requests_to_refresh_are_refused(context, live_server, alice):
    tab = open_tab(context, live_server.url)
    sign_in(tab)
    before = Session.objects.values("current_jti", "revoked_at").get()
    # The same server under another name: another origin, and another site.
    foreign_base = live_server.url.replace("localhost", "127.0.0.1")
    assert foreign_base != live_server.url
    foreign = context.new_page()
    # The attacker's page: a file of that origin, which no policy of ours covers (every
    # page of this server may fetch its own origin only, connect-src 'self').
    foreign.goto(foreign_base + "/static/web/icon.svg")
    target = live_server.url + "/auth/browser/refresh"

    # With the custom header, the browser must ask first (CORS preflight): refused.
    outcome = foreign.evaluate(
        """url => fetch(url, {method: "POST", credentials: "include",
                              headers: {"X-Requested-With": "fetch"}})
                 .then(r => "answered " + r.status, e => e.name)""",
        target,
    )
    assert outcome == "TypeError"
    # Without it, the request goes out (a "simple" request): 403, and nothing changes.
    with foreign.expect_response(target) as answered:
        foreign.evaluate(
            "url => fetch(url, {method: 'POST', mode: 'no-cors', credentials: 'include'})",
            target,
        )
    assert answered.value.status == 403

    assert Session.objects.values("current_jti", "revoked_at").get() == before
    add_todo(tab, "Still signed in")
