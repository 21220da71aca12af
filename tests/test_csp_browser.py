"""The admin and the API docs work in Chromium under their Content-Security-Policy, unbroken."""

import os

import pytest

from accounts.clients import Client
from accounts.services import open_session
from tests.chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OPERATOR_PASSWORD = "operator-password-for-the-csp-test"
TIMEOUT_MS = 15_000
# Runs before any script of the page: every refusal by the policy lands in a list.
COLLECT_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
    window.cspViolations.push(
        `${event.effectiveDirective} refused ${event.blockedURI || 'inline'} `
        + `(${event.sourceFile}:${event.lineNumber})`
    );
});
"""


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


class Watched:
    """A page whose policy violations and script errors are collected as it goes."""

    def __init__(self, context):
        self.errors: list[str] = []
        self.page = context.new_page()
        self.page.add_init_script(COLLECT_VIOLATIONS)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self.console)

    def console(self, message) -> None:
        """Errors only; the browser's own request for /favicon.ico, which we don't serve, aside."""
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            self.errors.append(message.text)

    def goto(self, url: str):
        """Open `url`; its response, once the page has loaded."""
        response = self.page.goto(url)
        self.page.wait_for_load_state("load")
        return response

    def violations(self) -> list[str]:
        """The policy's refusals on the current page, and any script error so far."""
        return self.page.evaluate("window.cspViolations") + self.errors


@pytest.fixture
def watched(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    yield Watched(context)
    context.close()


@pytest.fixture
def operator(django_user_model):
    operator = django_user_model.objects.create_superuser("operator", password=OPERATOR_PASSWORD)
    alice = django_user_model.objects.create_user("alice", password="alice-password-1234")
    open_session(user=alice, client=Client("192.0.2.10", "TodoApp/2.3 okhttp/4.12.0"))
    return operator, alice


def test_admin_works_under_its_policy_with_no_violation(watched, live_server, operator):
    _, alice = operator
    base = live_server.url

    login = watched.goto(base + "/admin/login/?next=/admin/")
    policy = login.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert watched.violations() == []
    watched.page.fill("#id_username", "operator")
    watched.page.fill("#id_password", OPERATOR_PASSWORD)
    watched.page.click("input[type=submit]")
    watched.page.wait_for_selector("#site-name")
    assert watched.violations() == []

    # A changelist: its actions, filters and sidebar are scripts of the admin's own.
    watched.goto(base + "/admin/accounts/session/")
    assert watched.page.locator("#result_list tbody tr").count() == 2
    watched.page.check("#action-toggle")
    assert watched.page.inner_text(".action-counter") == "2 of 2 selected"
    watched.page.fill("#nav-filter", "sess")
    assert watched.page.locator("#nav-sidebar a", has_text="Users").is_hidden()
    assert watched.violations() == []

    # A change form with the admin's two-box permission and group pickers (SelectFilter).
    watched.goto(base + f"/admin/auth/user/{alice.pk}/change/")
    watched.page.wait_for_selector("#id_user_permissions_from")
    watched.page.fill("#id_user_permissions_input", "view session")
    assert watched.page.locator("#id_user_permissions_from option").count() >= 1
    assert watched.violations() == []


def test_the_violation_collector_sees_a_refusal(watched, live_server, operator):
    """The check above can fail: an inline style added to an admin page is refused, and seen."""
    watched.goto(live_server.url + "/admin/login/")

    watched.page.evaluate(
        "() => { const s = document.createElement('style');"
        " s.textContent = 'body { color: red }'; document.head.append(s); }"
    )
    watched.page.wait_for_function("window.cspViolations.length > 0")

    assert watched.violations()[0].startswith("style-src-elem refused inline")


def test_api_docs_list_the_operations_under_their_policy_with_no_violation(
    watched, live_server, db
):
    response = watched.goto(live_server.url + "/api/docs/")
    watched.page.wait_for_selector(".opblock", timeout=TIMEOUT_MS)

    policy = response.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    paths = watched.page.locator(".opblock-summary-path").all_inner_texts()
    assert {"/auth/login", "/auth/sessions", "/todos"} <= set(paths)
    # Open one operation: Swagger UI renders its parameters and responses.
    watched.page.click("#operations-auth-login .opblock-summary")
    watched.page.wait_for_selector("#operations-auth-login .responses-wrapper")
    # And call one: "Try it out" fetches from the page (connect-src 'self').
    health = watched.page.locator("#operations-health-health")
    health.locator(".opblock-summary").click()
    health.locator("button.try-out__btn").click()
    health.locator("button.execute").click()
    live = health.locator(".live-responses-table tbody .response-col_status")
    live.wait_for()
    assert live.inner_text().strip() == "200"
    assert watched.violations() == []


def test_api_schema_is_served_with_a_policy(watched, live_server, db):
    # The schema is a download (application/vnd.oai.openapi): fetched, not opened.
    response = watched.page.request.get(live_server.url + "/api/schema/")

    assert response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
