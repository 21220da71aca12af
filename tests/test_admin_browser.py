"""An operator ends one stolen session from the admin, in a real browser (Chromium)."""

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import jwt
import pytest
from django.utils import timezone

from accounts.models import RevokeReason, Session
from tests.chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "admin-sessions.png"
OPERATOR_PASSWORD = "operator-password-for-the-browser-test"
PHONE = "TodoApp/2.3 (Android 14; Pixel 8) okhttp/4.12.0"
LAPTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"


def api(base: str, method: str, path: str, body=None, access=None, user_agent=PHONE):
    """One JSON request to the live server: (status, parsed body)."""
    request = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": user_agent},
    )
    if access:
        request.add_header("Authorization", f"Bearer {access}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def sign_in(base: str, user_agent: str) -> dict:
    status, body = api(
        base,
        "POST",
        "/auth/login",
        {"username": "alice", "password": "alice-password-1234"},
        user_agent=user_agent,
    )
    assert status == 200, body
    return body


def session_id(tokens: dict) -> str:
    return jwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"]


def admin_page(browser, base: str, *, width: int, height: int):
    """A page of `browser`, signed in to the admin as the operator."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(15_000)
    page.goto(base + "/admin/login/?next=/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", OPERATOR_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


def revoke_in_browser(base: str, sid: str, screenshot: bool) -> str:
    """Sign in to the admin, find alice's sessions, revoke one; returns the message shown."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = admin_page(browser, base, width=1280, height=640)

            page.goto(base + "/admin/accounts/session/")
            page.fill("#searchbar", "alice")
            page.press("#searchbar", "Enter")
            page.wait_for_url("**/admin/accounts/session/?q=alice")
            assert page.locator("#result_list tbody tr").count() == 2

            page.check(f'input[name="_selected_action"][value="{sid}"]')
            page.select_option('select[name="action"]', "revoke_selected")
            page.click('button[name="index"]')
            message = page.locator(".messagelist .success").inner_text()
            if screenshot:
                # Room for every column: fold the app sidebar, widen the window.
                page.click("#toggle-nav-sidebar")
                page.set_viewport_size({"width": 1440, "height": 560})
                page.screenshot(path=str(SCREENSHOT), full_page=True)
            return message
        finally:
            browser.close()


def test_operator_revokes_one_of_two_sessions_in_the_browser(live_server, django_user_model):
    require_chromium()
    django_user_model.objects.create_superuser("operator", password=OPERATOR_PASSWORD)
    django_user_model.objects.create_user("alice", password="alice-password-1234")
    base = live_server.url
    stolen, kept = sign_in(base, PHONE), sign_in(base, LAPTOP)

    message = revoke_in_browser(
        base, session_id(stolen), screenshot=os.environ.get("UPDATE_SCREENSHOTS") == "1"
    )

    assert message.startswith("Revoked 1 session")
    status, body = api(base, "GET", "/todos", access=stolen["access_token"])
    assert (status, body["error"]) == (401, "You have been logged out. Please log in again.")
    status, body = api(base, "POST", "/auth/refresh", {"refresh_token": stolen["refresh_token"]})
    assert (status, body["error"]) == (401, "Invalid refresh token")
    assert api(base, "GET", "/todos", access=kept["access_token"])[0] == 200
    status, _ = api(base, "POST", "/auth/refresh", {"refresh_token": kept["refresh_token"]})
    assert status == 200
    assert Session.objects.get(pk=session_id(stolen)).revoked_reason == RevokeReason.ADMIN


EVENTS_SCREENSHOT = SCREENSHOT.with_name("admin-events.png")
FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


def overflow(page) -> int:
    """Pixels by which the changelist's table passes the right edge of its container."""
    return page.evaluate(
        """() => {
            const table = document.querySelector('#result_list');
            const box = document.querySelector('#changelist-form') || table.parentElement;
            return Math.ceil(table.getBoundingClientRect().right
                             - Math.min(box.getBoundingClientRect().right, window.innerWidth));
        }"""
    )


def test_operator_reads_the_security_record_in_the_browser(live_server, django_user_model):
    require_chromium()
    from playwright.sync_api import sync_playwright

    operator = django_user_model.objects.create_superuser("operator", password=OPERATOR_PASSWORD)
    alice = django_user_model.objects.create_user("alice", password="alice-password-1234")
    base = live_server.url
    sign_in(base, PHONE)
    sign_in(base, FIREFOX)
    status, _ = api(
        base, "POST", "/auth/login", {"username": "alice", "password": "wrong"}, user_agent=FIREFOX
    )
    assert status == 401
    # The widest a row gets: a long IPv6 address and the longest end of a session.
    Session.objects.filter(user_agent=PHONE).update(
        ip_address="2001:db8:85a3:1234:5678:8a2e:370:7334",
        revoked_at=timezone.now(),
        revoked_reason=RevokeReason.REUSE_DETECTED,
    )
    # An operator's act: the record's "by" column.
    Session.objects.filter(user_agent=FIREFOX).revoke(RevokeReason.ADMIN, by=operator)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # A 1366 px laptop screen with the admin's app sidebar open.
            page = admin_page(browser, base, width=1366, height=700)

            page.goto(base + "/admin/accounts/session/")
            assert page.locator("#nav-sidebar").is_visible()
            # alice's two, and the operator's own admin sign-in
            assert page.locator("#result_list tbody tr").count() == 3
            assert overflow(page) <= 0, "the sessions list is wider than the screen"
            assert page.locator("#result_list").get_by_text("Firefox on Ubuntu").count() == 1

            # From alice's page to her events, then only her failures.
            page.goto(base + f"/admin/auth/user/{alice.pk}/change/")
            page.click("text=Security events of this user")
            page.wait_for_url(f"**/admin/accounts/securityevent/?user__id__exact={alice.pk}")
            assert page.locator("#result_list tbody tr").count() == 4
            page.click("#changelist-filter >> text=Wrong password")
            page.wait_for_url("**kind__exact=login_failed**")
            rows = page.locator("#result_list tbody tr")
            assert rows.count() == 1
            assert "api login" in rows.first.inner_text()
            assert overflow(page) <= 0, "the events list is wider than the screen"

            # The whole record, with its widest row: an operator who acted (the "by" column).
            page.goto(base + "/admin/accounts/securityevent/")
            rows = page.locator("#result_list tbody tr").all_inner_texts()
            acted = [row for row in rows if "Session ended (admin)" in row]
            assert len(acted) == 1 and acted[0].rstrip().endswith("operator")
            assert overflow(page) <= 0, "the whole record is wider than the screen"
            if os.environ.get("UPDATE_SCREENSHOTS") == "1":
                page.goto(base + "/admin/accounts/securityevent/")
                page.screenshot(path=str(EVENTS_SCREENSHOT), full_page=True)
        finally:
            browser.close()
