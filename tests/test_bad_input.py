"""Every endpoint, fed bad input: each answer is a JSON {error, code} and nothing changes."""

import json
import re
import uuid
from dataclasses import dataclass

import pytest
from django.conf import settings as django_settings
from drf_spectacular.generators import SchemaGenerator

from accounts.browser import refresh_cookie
from accounts.models import Session
from accounts.signing import token_backend
from tests.conftest import bearer, database_snapshot
from tests.reporting import report
from todos.models import Todo

NEW_PASSWORD = "another-Strong-pass-456"


@dataclass(frozen=True)
class Endpoint:
    """One operation, with a valid body to mutate and the fields that may be null or absent."""

    method: str
    path: str
    body: dict | None = None
    auth: bool = True
    optional: tuple[str, ...] = ()
    nullable: tuple[str, ...] = ()


# "{todo}", "{sid}" and "<refresh>" are filled in with the signed-in user's real ones.
ENDPOINTS = [
    Endpoint("post", "/auth/signup", {"username": "newcomer", "password": NEW_PASSWORD}, False),
    Endpoint("post", "/auth/login", {"username": "alice", "password": "<password>"}, False),
    Endpoint("post", "/auth/refresh", {"refresh_token": "<refresh>"}, False),
    Endpoint("post", "/auth/logout", {"refresh_token": "<refresh>"}),
    Endpoint("post", "/auth/logout-all", {"keep_current": True}, optional=("keep_current",)),
    Endpoint(
        "post", "/auth/password", {"old_password": "<password>", "new_password": NEW_PASSWORD}
    ),
    Endpoint("get", "/auth/sessions"),
    Endpoint("get", "/auth/events"),
    Endpoint("delete", "/auth/sessions/{sid}"),
    Endpoint("get", "/todos"),
    Endpoint(
        "post",
        "/todos",
        {"title": "Changed", "description": "Changed", "done": True},
        optional=("description", "done"),
        nullable=("description",),
    ),
    Endpoint("get", "/todos/{todo}"),
    Endpoint(
        "put",
        "/todos/{todo}",
        {"title": "Changed", "description": "Changed", "done": True},
        nullable=("description",),
    ),
    Endpoint("patch", "/todos/{todo}", {"title": "Changed"}),
    Endpoint("delete", "/todos/{todo}"),
    Endpoint("get", "/healthz", auth=False),
    # Cookie mode: sent as the web client sends them (see COOKIE_ROUTE_HEADERS).
    Endpoint("post", "/auth/browser/login", {"username": "alice", "password": "<password>"}, False),
    Endpoint("post", "/auth/browser/refresh", auth=False),
    Endpoint("post", "/auth/browser/logout", auth=False),
    # For other services; their form bodies are fed bad input in tests/test_oauth.py.
    Endpoint("post", "/auth/introspect", auth=False),
    Endpoint("post", "/auth/revoke", auth=False),
    Endpoint("get", "/.well-known/jwks.json", auth=False),
    Endpoint("get", "/.well-known/oauth-authorization-server", auth=False),
]
COOKIE_ROUTES = "/auth/browser/"
# What a page of the API's own origin sends with every cookie-mode request (CSRF check).
COOKIE_ROUTE_HEADERS = {"HTTP_X_REQUESTED_WITH": "fetch", "HTTP_ORIGIN": "http://testserver"}

# Wrong JSON types for a field, by the type it should have.
WRONG_TYPES = {
    str: [123, 1.5, True, ["x"], {"x": "y"}],
    bool: ["true", 1, 0, "yes", ["x"], {"x": True}],
}
# Strings no field accepts: NUL bytes, a lone surrogate, a 100,000-character value.
BAD_STRINGS = {
    "nul": "a\x00b",
    "lone-surrogate": "a\ud800b",
    "huge": "x" * 100_000,
}
MALFORMED_JSON = {
    "truncated": b'{"title": ',
    "single-quotes": b"{'title': 'x'}",
    "trailing-comma": b'{"title": "x",}',
    "nan": b'{"title": NaN}',
    "invalid-utf8": b'{"title": "\xff\xfe"}',
    "two-documents": b'{"title": "x"} {"title": "y"}',
}
# Nested past the parser's limit (32): as deep as Python's stack and far deeper.
DEEP_JSON = {
    "depth-33": ('{"x":' * 33 + "1" + "}" * 33).encode(),
    "depth-1000": b"[" * 1000 + b"]" * 1000,
    "depth-100000": b'{"title":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}
NOT_JSON = {
    "text": ("text/plain", b'{"title": "x"}'),
    "form": ("application/x-www-form-urlencoded", b"title=x&done=true"),
    "multipart": ("multipart/form-data; boundary=xyz", b"--xyz--\r\n"),
    "xml": ("application/xml", b"<title>x</title>"),
}
# A list, a scalar or null where the API wants an object.
NOT_AN_OBJECT = {
    "array": "[BODY]",
    "empty-array": [],
    "string": "title",
    "number": 42,
    "null": None,
}


@dataclass(frozen=True)
class Bad:
    """One bad request and the status it must get."""

    label: str
    method: str
    path: str
    status: int
    body: object = None
    raw: bytes | None = None
    content_type: str = "application/json"
    auth: bool | str = True
    query: str = ""
    # Cookie routes only: the refresh cookie sent ("<refresh>": the user's real one), and
    # whether the request carries the CSRF check's headers.
    cookie: str = "<refresh>"
    csrf: bool = True

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}{self.query[:40]} {self.label}"


def _body_cases(endpoint: Endpoint) -> list[Bad]:
    """Bad bodies for an endpoint that reads one."""
    cases = []

    def bad(label, status=400, **kwargs):
        cases.append(
            Bad(label, endpoint.method, endpoint.path, status, auth=endpoint.auth, **kwargs)
        )

    for name, raw in MALFORMED_JSON.items():
        bad(f"malformed-json:{name}", raw=raw)
    for name, raw in DEEP_JSON.items():
        bad(f"deep-json:{name}", raw=raw)
    for name, (content_type, raw) in NOT_JSON.items():
        bad(f"not-json:{name}", 415, raw=raw, content_type=content_type)
    for name, body in NOT_AN_OBJECT.items():
        bad(f"not-an-object:{name}", body=[endpoint.body] if body == "[BODY]" else body)
    limit = django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    for name, size in (("just-over", limit), ("far-over", 3 * limit)):
        first = next(iter(endpoint.body))
        bad(f"oversized-body:{name}", 413, body={**endpoint.body, first: "x" * size})
    for field, value in endpoint.body.items():
        for wrong in WRONG_TYPES[type(value)]:
            bad(f"wrong-type:{field}={json.dumps(wrong)}", body={**endpoint.body, field: wrong})
        if field not in endpoint.nullable:
            bad(f"null:{field}", body={**endpoint.body, field: None})
        if field not in endpoint.optional:
            missing = {key: val for key, val in endpoint.body.items() if key != field}
            bad(f"missing:{field}", body=missing)
        if isinstance(value, str):
            for name, text in BAD_STRINGS.items():
                bad(f"bad-string:{field}:{name}", body={**endpoint.body, field: text})
    if endpoint.method == "patch":
        bad("empty-object", body={})
    return cases


def _route_cases() -> list[Bad]:
    """Unknown routes, wrong methods, ids that cannot exist, bad query strings and headers."""
    cases = [
        Bad("unknown-route", method, path, 404)
        for path in ("/nope", "/auth/nope", "/todos/1/extra", "/auth/login/", "/api/nope", "/%00")
        for method in ("get", "post")
    ]
    allowed = {}
    for endpoint in ENDPOINTS:
        allowed.setdefault((endpoint.path, endpoint.auth), set()).add(endpoint.method)
    for (path, auth), methods in allowed.items():
        for method in {"get", "post", "put", "patch", "delete"} - methods:
            cases.append(Bad("wrong-method", method, path, 405, body={}, auth=auth))
    for todo_id in ("abc", "-1", "1.5", "99999999999999999999999", "%00", "%E2%98%83", "0x1"):
        for method in ("get", "put", "patch", "delete"):
            body = {"title": "Changed", "description": None, "done": True}
            cases.append(Bad("no-such-todo", method, f"/todos/{todo_id}", 404, body=body))
    for sid in ("not-a-uuid", str(uuid.UUID(int=0)), "%00"):
        cases.append(Bad("no-such-session", "delete", f"/auth/sessions/{sid}", 404))
    for query in (
        "?done=maybe",
        "?done=%00",
        "?page=0&limit=10",
        "?page=abc&limit=10",
        "?page=1&limit=1000",
        "?page=1&limit=-1",
        "?page=1&limit=%E2%98%83",
        "?title=%00",
        # Past DATA_UPLOAD_MAX_NUMBER_FIELDS: Django's TooManyFieldsSent, a 400 too.
        "?" + "&".join(f"field{n}=1" for n in range(1001)),
        f"?title={'x' * 300}",
    ):
        cases.append(Bad("bad-query", "get", "/todos", 400, query=query))
    for query in ("?page=0", "?page=1000001", "?limit=101", "?limit=abc", "?page=%00"):
        cases.append(Bad("bad-query", "get", "/auth/events", 400, query=query))
    for header in ("Bearer", "Bearer a.b.c", "Bearer \x00", "Bearer \xe9\xe9", "Token x", "\xff"):
        cases.append(Bad(f"bad-authorization:{header!r}", "get", "/todos", 401, auth=header))
    for name in ODD_EXPIRY:
        # Signed at test time, with the key ring's key (the database holds it).
        access, refresh = (f"<odd-exp:{kind}:{name}>" for kind in ("access", "refresh"))
        cases.append(Bad(f"odd-exp:{name}", "get", "/todos", 401, auth=f"Bearer {access}"))
        body = {"refresh_token": refresh}
        cases.append(Bad(f"odd-exp:{name}", "post", "/auth/refresh", 401, body=body, auth=False))
        cases.append(
            Bad(f"odd-exp:{name}", "post", "/auth/browser/refresh", 401, auth=False, cookie=refresh)
        )
    for cookie in ("", "garbage", "a.b.c", "\x00", "x" * 5000):
        label = f"bad-cookie:{cookie[:10]!r}"
        cases.append(Bad(label, "post", "/auth/browser/refresh", 401, auth=False, cookie=cookie))
    for path in ("/auth/browser/login", "/auth/browser/refresh", "/auth/browser/logout"):
        body = {"username": "alice", "password": "<password>"}
        cases.append(Bad("no-csrf-headers", "post", path, 403, body=body, auth=False, csrf=False))
    return cases


# `exp` claims PyJWT lets through but no datetime can hold; only the key's holder can sign them.
ODD_EXPIRY = {"1e30": 10**30, "float-1e300": 1e300, "numeric-string": "99999999999"}


def signed(kind: str, exp) -> str:
    """A token of ours in every claim but `exp`, signed with the server's key."""
    claims = {"token_type": kind, "exp": exp, "iat": 1, "jti": uuid.uuid4().hex}
    claims |= {"sub": "1", "sid": str(uuid.uuid4())}
    return token_backend.encode(claims)


ODD_EXPIRY_TOKEN = re.compile(r"<odd-exp:(access|refresh):([^>]+)>")


BAD_REQUESTS = [
    case for endpoint in ENDPOINTS if endpoint.body is not None for case in _body_cases(endpoint)
] + _route_cases()
requests_sent: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _report_count(request):
    """Print how many bad requests were sent and over how many endpoints."""
    yield
    if not requests_sent:
        return
    report(
        request,
        f"bad-input matrix: {len(requests_sent)} bad requests over {len(ENDPOINTS)} endpoints, "
        "each a JSON {error, code} with the database unchanged",
    )
    requests_sent.clear()


@pytest.fixture
def world(user, other_user, login, password) -> dict:
    """A signed-in user with a todo, and another user with one of theirs."""
    tokens = login(user)
    login(other_user)
    return {
        "{todo}": str(Todo.objects.create(owner=user, title="Mine", description=None).pk),
        "{sid}": str(Session.objects.get(user=user).pk),
        "<refresh>": tokens["refresh_token"],
        "<password>": password,
        "access": tokens["access_token"],
        "other_todo": Todo.objects.create(owner=other_user, title="Theirs").pk,
    }


def _fill(value, world: dict):
    """Replace the placeholders in a path or body with the world's real values."""
    if isinstance(value, str):
        for placeholder in ("{todo}", "{sid}", "<refresh>", "<password>"):
            value = value.replace(placeholder, world[placeholder])
        return ODD_EXPIRY_TOKEN.sub(lambda m: signed(m[1], ODD_EXPIRY[m[2]]), value)
    if isinstance(value, dict):
        return {key: _fill(item, world) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, world) for item in value]
    return value


def send(client, bad: Bad, world: dict):
    """Send one bad request through the test client."""
    headers = {}
    if bad.auth is True:
        headers = bearer(world["access"])
    elif isinstance(bad.auth, str):
        headers = {"HTTP_AUTHORIZATION": _fill(bad.auth, world)}
    if bad.path.startswith(COOKIE_ROUTES):
        client.cookies[refresh_cookie().name] = _fill(bad.cookie, world)
        if bad.csrf:
            headers |= COOKIE_ROUTE_HEADERS
    data = bad.raw if bad.raw is not None else json.dumps(_fill(bad.body, world))
    method = getattr(client, bad.method)
    path = _fill(bad.path, world) + bad.query
    if bad.method == "get":
        return method(path, **headers)
    return method(path, data, content_type=bad.content_type, **headers)


@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=str)
def test_bad_input_json_error_and_nothing_changes(bad, world, client):
    before = database_snapshot()
    response = send(client, bad, world)
    requests_sent.append(str(bad))
    assert response.status_code == bad.status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) - {"fields"} == {"error", "code"}
    assert isinstance(body["error"], str) and body["error"]
    assert re.fullmatch(r"[a-z][a-z_]*", body["code"])
    assert database_snapshot() == before


def test_bad_input_matrix_covers_every_operation_in_the_schema():
    spec = SchemaGenerator().get_schema(request=None, public=True)
    in_schema = {(method, path) for path, item in spec["paths"].items() for method in item}
    in_matrix = {
        (endpoint.method, endpoint.path.replace("{todo}", "{id}").replace("{sid}", "{session_id}"))
        for endpoint in ENDPOINTS
    }
    assert in_matrix == in_schema


def test_oversized_form_outside_the_api_413_json(client, db, settings):
    body = "username=admin&password=" + "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = client.post("/admin/login/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


ODD_BUT_VALID = [
    "emoji 😀 and a flag 🇳🇴",
    "combining e\u0301 and precomposed \u00e9",
    "right-to-left \u202eoverride\u202c and \u200bzero\u200dwidth",
    "full-width \uff21\uff22\uff23 and math \U0001d518\U0001d52b\U0001d526",
    "\u00a0non-breaking\u3000spaces and a tab\t",
]


@pytest.mark.parametrize("title", ODD_BUT_VALID)
def test_odd_but_valid_unicode_round_trips_unchanged(auth_client, title):
    response = auth_client.post("/todos", {"title": title, "description": title}, format="json")
    assert response.status_code == 201
    stored = auth_client.get(f"/todos/{response.json()['id']}").json()
    assert stored["title"] == title.strip() and stored["description"] == title
