"""The live OpenAPI schema against the app: schemathesis generates cases, the app must conform."""

import re
from collections import Counter, defaultdict

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.clients import Client
from accounts.services import open_session
from project.wsgi import application
from tests.chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium
from tests.reporting import report
from todos.models import TITLE_MAX_LENGTH, Todo

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Fuzzing examples per operation; the coverage and examples phases add their own cases.
MAX_EXAMPLES = 60
MIN_TOTAL_CASES = 1000

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            # Same cases on every run, and no example database kept between runs.
            "deterministic": True,
            "database": "none",
        },
    }
)

COOKIE_ROUTES = "/auth/browser/"
# The origin of the WSGI requests schemathesis makes: the cookie routes' CSRF check wants it.
OWN_ORIGIN = "http://localhost"

# Status codes seen per operation, e.g. {"POST /auth/login": Counter({400: 60, 429: 30})}.
cases_run: dict[str, Counter] = defaultdict(Counter)


# Loaded at import, through the WSGI app itself: the schema is built without the database.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=CONFIG)


@pytest.fixture(scope="module", autouse=True)
def _report_total(request):
    """After every operation ran, print the total and hold it to the minimum."""
    yield
    if not cases_run:
        return
    total = sum(sum(statuses.values()) for statuses in cases_run.values())
    checks = ", ".join(check.__name__ for check in CHECKS)
    report(request, f"schemathesis: {total} cases over {len(cases_run)} operations ({checks})")
    for label, statuses in sorted(cases_run.items()):
        seen = ", ".join(f"{code}x{count}" for code, count in sorted(statuses.items()))
        report(request, f"  {sum(statuses.values()):5d}  {label}  ({seen})")
    all_ran = len(cases_run) == len(_operations())
    cases_run.clear()
    if all_ran:
        assert total >= MIN_TOTAL_CASES, f"only {total} generated cases"


def _operations() -> list[str]:
    """Labels of every operation in the schema, e.g. "POST /auth/login"."""
    return [result.ok().label for result in schema.get_all_operations()]


@schema.parametrize()
@settings(
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        # One database per operation, shared by its cases on purpose.
        HealthCheck.function_scoped_fixture,
    ]
)
def test_api_conforms_to_schema(case, transactional_db, user, password):
    """Every generated request gets a documented status, content type and body."""
    # A fresh session per case: an earlier case may have logged the last one out.
    session, pair = open_session(user=user, client=Client("127.0.0.1", "schemathesis"))
    _aim_at_existing(case, session=session, refresh_token=pair.refresh, password=password)
    headers = {}
    if case.operation.definition.raw.get("security") != [{}]:
        headers["Authorization"] = f"Bearer {pair.access}"
    if case.operation.path.startswith(COOKIE_ROUTES):
        # A browser sends its page's origin with every POST; the X-Requested-With header
        # and the cookie are the schema's own parameters, generated like any other.
        headers["Origin"] = OWN_ORIGIN
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    cases_run[case.operation.label][response.status_code] += 1


def _aim_at_existing(case, *, session, refresh_token: str, password: str) -> None:
    """Point about half the generated ids and tokens at real ones, so success paths run too.

    Random ids and tokens almost never exist; left alone, every PUT would be a 404 and
    every refresh a 401, and the success responses would never be checked.
    """
    params, body = case.path_parameters or {}, case.body
    todo_id = params.get("id")
    if isinstance(todo_id, int) and todo_id % 2 == 0:
        todo = Todo.objects.create(owner=session.user, title="Existing")
        params["id"] = todo.pk
    if isinstance(params.get("session_id"), str) and len(params["session_id"]) % 2 == 0:
        params["session_id"] = session.sid
    cookies = case.cookies or {}
    if isinstance(cookies.get("refresh_token"), str) and len(cookies["refresh_token"]) % 2 == 0:
        cookies["refresh_token"] = refresh_token
    if not isinstance(body, dict):
        return
    if isinstance(body.get("refresh_token"), str) and len(body["refresh_token"]) % 2 == 0:
        body["refresh_token"] = refresh_token
    username = body.get("username")
    logins = ("/auth/login", "/auth/browser/login")
    if case.operation.path in logins and isinstance(username, str) and len(username) % 2:
        body.update(username=session.user.username, password=password)


def test_docs_page_loads_only_local_static_assets(client, db):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.findall(r"(?:https?:)?//[\w.-]+", html.replace("://testserver", ""))
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    # Static files, and the page's start-up script, which the docs view serves itself.
    local = ("/static/", "/api/docs/?script=")
    assert len(assets) >= 3 and all(asset.startswith(local) for asset in assets)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_docs_render_in_chromium_with_the_network_off(live_server):
    require_chromium()
    from playwright.sync_api import sync_playwright

    refused = []

    def only_local(route):
        # The network is "off": anything not served by the app itself is refused.
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_local)
            page.goto(f"{live_server.url}/api/docs/")
            page.wait_for_selector(".opblock", timeout=15_000)
            operations = page.locator(".opblock").count()
            title = page.locator(".info .title").inner_text()
        finally:
            browser.close()
    assert refused == []
    assert operations == len(_operations())
    assert "Todo API" in title


def test_query_parameters_declare_their_limits():
    """Generated clients and fuzzers keep the request line short (gunicorn stops at 4 KiB)."""
    spec = SchemaGenerator().get_schema(request=None, public=True)
    params = {p["name"]: p["schema"] for p in spec["paths"]["/todos"]["get"]["parameters"]}
    assert params["title"]["maxLength"] == TITLE_MAX_LENGTH
    assert params["limit"]["maximum"] == 100
    assert params["done"]["enum"] == ["true", "false"]


def test_sessions_declare_their_kind():
    """GET /auth/sessions: every session says whether it is tokens or an admin sign-in."""
    spec = SchemaGenerator().get_schema(request=None, public=True)
    session = spec["components"]["schemas"]["Session"]
    assert "kind" in session["required"]
    assert spec["components"]["schemas"]["SessionKindEnum"]["enum"] == ["api", "admin"]


def test_todo_length_limits_in_the_schema_follow_the_settings(settings):
    settings.TODO_TITLE_MAX_LENGTH = 50
    settings.TODO_DESCRIPTION_MAX_LENGTH = 70
    spec = SchemaGenerator().get_schema(request=None, public=True)
    for name in ("Todo", "TodoRequest", "PatchedTodoRequest", "TodoReplaceRequest"):
        fields = spec["components"]["schemas"][name]["properties"]
        assert (fields["title"]["maxLength"], fields["description"]["maxLength"]) == (50, 70)


def test_todo_writes_declare_the_count_limit_and_the_write_throttle():
    spec = SchemaGenerator().get_schema(request=None, public=True)
    todos, todo = spec["paths"]["/todos"], spec["paths"]["/todos/{id}"]
    assert "todo_limit_reached" in todos["post"]["responses"]["409"]["description"]
    for operation in (todos["post"], todo["put"], todo["patch"], todo["delete"]):
        assert "Retry-After" in operation["responses"]["429"]["headers"]
    for operation in (todos["get"], todo["get"]):
        assert "429" not in operation["responses"]


def test_every_operation_with_a_body_declares_411():
    spec = SchemaGenerator().get_schema(request=None, public=True)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("post", "put", "patch"):
                assert "411" in operation["responses"], (method, path)
