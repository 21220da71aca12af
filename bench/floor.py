"""The floor of `GET /todos`: the same answer with no DRF and no SimpleJWT, for the bench only.

It authenticates the same bearer token with the same checks as ours, the cheapest honest
way: PyJWT verifies the signature (with the key and algorithm stock SimpleJWT has in
bench.settings: the run's RS256 public key, or the HS* secret), expiry and issuer; then
the same revocation check as ours, the product's own (`may_vouch_for` on the claims, then
`RevocationList.vouches_for`: the process's feed, or one `MGET` while the feed cannot be
trusted); only if that cannot vouch, one query joins the
token's session to its user and checks it is live. Then the todo query, and the list's
JSON by hand. The bench checks that its body is byte for byte the body of `/todos` before
measuring it.
"""

import json
import uuid
from datetime import UTC

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from accounts.conf import app_settings
from accounts.models import Session, SessionKind
from accounts.revocation_window import may_vouch_for
from accounts.revocations import revocation_list
from todos.models import Todo

SESSION_SQL = (
    "SELECT s.user_id, s.kind, s.revoked_at, s.expires_at, u.is_active "
    f"FROM {Session._meta.db_table} s JOIN {get_user_model()._meta.db_table} u "
    "ON u.id = s.user_id WHERE s.id = %s"
)
TODOS_SQL = (
    "SELECT id, title, done, description, created_at, updated_at "
    f"FROM {Todo._meta.db_table} WHERE owner_id = %s ORDER BY id"
)
TODO_KEYS = ("id", "title", "done", "description", "created_at", "updated_at")


def _verifying_key():
    """SIMPLE_JWT's verifying key (the HS* secret for HS*), parsed once as SimpleJWT does."""
    jwt_settings = settings.SIMPLE_JWT
    algorithm = jwt_settings["ALGORITHM"]
    key = (
        jwt_settings["SIGNING_KEY"] if algorithm.startswith("HS") else jwt_settings["VERIFYING_KEY"]
    )
    return algorithm, jwt.PyJWS().get_algorithm_by_name(algorithm).prepare_key(key)


ALGORITHM, VERIFYING_KEY = _verifying_key()
ISSUER = app_settings.ISSUER


def _unauthorized() -> HttpResponse:
    response = JsonResponse({"error": "Invalid JWT token", "code": "invalid_token"}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="api", error="invalid_token"'
    return response


def _iso(moment) -> str:
    """A datetime as DRF writes it: ISO 8601 in UTC, with Z for +00:00."""
    text = moment.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def todos(request) -> HttpResponse:
    """GET /floor/todos: the caller's todos, the bytes DRF's JSONRenderer would write."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not token:
        return _unauthorized()
    try:
        claims = jwt.decode(
            token,
            VERIFYING_KEY,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iss", "sub", "sid", "jti"]},
        )
        sid = uuid.UUID(claims["sid"])
    except (jwt.InvalidTokenError, ValueError, TypeError):
        return _unauthorized()
    if claims.get("token_type") != "access":
        return _unauthorized()
    revocations = revocation_list()
    vouched = (
        revocations is not None and may_vouch_for(claims) and revocations.vouches_for(str(sid))
    )
    with connection.cursor() as cursor:
        user_id = claims["sub"] if vouched else _live_session_user(cursor, sid, claims["sub"])
        if user_id is None:
            return _unauthorized()
        cursor.execute(TODOS_SQL, [user_id])
        rows = cursor.fetchall()
    items = [
        dict(
            zip(
                TODO_KEYS, (pk, title, done, description, _iso(created), _iso(updated)), strict=True
            )
        )
        for pk, title, done, description, created, updated in rows
    ]
    body = json.dumps(items, ensure_ascii=False, separators=(",", ":"))
    # DRF escapes these two, which are valid JSON but not valid JavaScript.
    body = body.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return HttpResponse(body.encode(), content_type="application/json")


def _live_session_user(cursor, sid: uuid.UUID, subject: str):
    """The session's user id if the session is live and the token's; else None (one query)."""
    cursor.execute(SESSION_SQL, [sid])
    row = cursor.fetchone()
    if row is None:
        return None
    user_id, kind, revoked_at, expires_at, is_active = row
    live = kind == SessionKind.API and revoked_at is None and expires_at > timezone.now()
    live = live and is_active
    return user_id if live and str(user_id) == str(subject) else None


@csrf_exempt
def verify(request) -> HttpResponse:
    """POST /floor/verify: the floor of a login, one password check over HTTP and nothing else.

    It reads the user's hash (one query) and verifies the password with Django's
    hasher, as login does; no session, no token, no record.
    """
    body = json.loads(request.body)
    user = get_user_model()._default_manager.get(username=body["username"])
    ok = check_password(body["password"], user.password)
    return JsonResponse({"ok": ok}, status=200 if ok else 401)
