"""The bench's steps inside Django: fixtures, tokens, query counts, admin renders, row counts.

A script, never imported: `python -m bench.inside <step> [json-args]` prints one JSON
object. The runner sets DJANGO_SETTINGS_MODULE=bench.settings and the step's database.
"""
# ruff: noqa: E402 - Django is set up before anything imports a model.

import django

django.setup()

import json
import os
import statistics
import sys
import time
from datetime import timedelta
from functools import partial

import jwt
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Max
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import keys
from accounts.clients import Client as ApiClient
from accounts.conf import app_settings
from accounts.models import SecurityEvent, Session, SessionToken, SigningKey
from accounts.services import open_session
from accounts.signing import token_backend
from bench.config import BENCH_USERNAME, REFRESHING, SIDES
from tests.querycount import QueryCounter
from todos.models import Todo

ADMIN_USERNAME = "bench-admin"
LARGEST_USERNAME = "bench-largest"
TODOS = 20
# The character that makes the longest JSON: DRF writes it as six bytes, `\u2028`, and
# holds it in two while it renders. The largest list is made of it.
WIDEST_CHARACTER = "\u2028"
TABLES = {
    "sessions": Session,
    "session_tokens": SessionToken,
    "blacklisted_tokens": BlacklistedToken,
    "outstanding_tokens": OutstandingToken,
    "security_events": SecurityEvent,
}


def prepare(password: str) -> dict:
    """The run's key pair as the key ring's active key, the bench user (real password
    hash), its todos, and a superuser for the admin.
    """
    if not app_settings.SIGNING_ALGORITHM.startswith("HS"):
        # Imported as a first key is made: active at once, nobody holds a token yet.
        private = keys.load_private(os.environ["BENCH_SIGNING_KEY"])
        SigningKey.objects.add(
            algorithm=app_settings.SIGNING_ALGORITHM, private_key=private, active=True
        )
    User = get_user_model()
    user = User.objects.create_user(username=BENCH_USERNAME, password=password)
    Todo.objects.bulk_create(
        Todo(owner=user, title=f"Todo {n}", description="bench", done=n % 3 == 0)
        for n in range(TODOS)
    )
    User.objects.create_superuser(username=ADMIN_USERNAME, password=None)
    return {"password_hash": user.password}


def mint(ours: int = 0, stock: int = 0, username: str = BENCH_USERNAME) -> dict:
    """Fresh token pairs: ours from the session service, stock as SimpleJWT makes them."""
    user = get_user_model().objects.get(username=username)
    pairs = {"ours": [], "stock": []}
    for _ in range(ours):
        _, pair = open_session(user=user, client=ApiClient("127.0.0.1", "bench"))
        pairs["ours"].append({"access": pair.access, "refresh": pair.refresh})
    for _ in range(stock):
        # for_user records the OutstandingToken row, as stock login does.
        refresh = RefreshToken.for_user(user)
        pairs["stock"].append({"access": str(refresh.access_token), "refresh": str(refresh)})
    return pairs


def verify_cost(token: str, calls: int = 3000) -> dict:
    """Median microseconds of one verification of `token`: by our token backend (the
    header, the key by `kid`, PyJWT's signature and claim checks), and by PyJWT alone with
    the same key object and claims. In this process's JWT_ALGORITHM.
    """
    key = token_backend.key_for_verifying(jwt.get_unverified_header(token)["kid"])
    issuer = app_settings.ISSUER

    def pyjwt():
        jwt.decode(token, key.public, algorithms=[key.algorithm], issuer=issuer)

    return {
        "verify_ours_us": _median_us(partial(token_backend.decode, token), calls),
        "verify_pyjwt_us": _median_us(pyjwt, calls),
    }


def _median_us(call, calls: int, batch: int = 50) -> float:
    """The median over batches of one call's time, in microseconds, after a warm-up."""
    for _ in range(batch):
        call()
    timings = []
    for _ in range(max(1, calls // batch)):
        started = time.perf_counter()
        for _ in range(batch):
            call()
        timings.append((time.perf_counter() - started) / batch)
    return statistics.median(timings) * 1e6


def largest_list(count: int | None = None) -> dict:
    """A user holding the largest todo list the limits allow, written by bulk_create.

    `count` todos (default: the per-user limit), every title and description at its
    maximum length in the widest character. Not through the API: the limits under
    measure would refuse nothing, and the write throttle would only slow the seeding.
    """
    count = settings.TODO_LIMIT_PER_USER if count is None else count
    title = WIDEST_CHARACTER * settings.TODO_TITLE_MAX_LENGTH
    description = WIDEST_CHARACTER * settings.TODO_DESCRIPTION_MAX_LENGTH
    user = get_user_model().objects.create_user(username=LARGEST_USERNAME, password=None)
    Todo.objects.bulk_create(
        (Todo(owner=user, title=title, description=description) for _ in range(count)),
        batch_size=100,
    )
    return {
        "username": LARGEST_USERNAME,
        "todos": count,
        "title_length": len(title),
        "description_length": len(description),
    }


def refresh_queries() -> dict:
    """Queries, writes and transactions of one refresh per side, through the URLconf."""
    client = Client()
    pairs = mint(ours=1, stock=1)
    results = {}
    for name in REFRESHING:
        side, token = SIDES[name], pairs[name][0]["refresh"]
        # The first refresh warms caches; the second is what every refresh costs.
        for _ in range(2):
            with QueryCounter(connection) as counter:
                body = {side.refresh_field: token}
                response = client.post(side.refresh, body, content_type="application/json")
            assert response.status_code == 200, response.content
            token = response.json()[side.refresh_field]
        results[name] = counter.summary()
    return results


def todos_queries() -> dict:
    """Queries of one `GET /todos` per side in the steady state (the revocation list warm),
    and the SQL of each, through the URLconf."""
    client = Client()
    pairs = mint(ours=1, stock=1)
    results = {}
    for name, side in SIDES.items():
        header = {"HTTP_AUTHORIZATION": f"Bearer {pairs[side.minted_by(name)][0]['access']}"}
        # The first request warms caches and renews the revocation list's epoch.
        for _ in range(2):
            with QueryCounter(connection) as counter:
                response = client.get(side.todos, **header)
            assert response.status_code == 200, response.content
        results[name] = {
            "queries": counter.queries,
            "tables": sorted({_table(s.sql) for s in counter.statements}),
        }
    return results


def _table(sql: str) -> str:
    """The first table a SELECT reads from."""
    return sql.partition(" FROM ")[2].split()[0].strip('"') if " FROM " in sql else sql[:40]


def admin_changelists(renders: int = 5) -> dict:
    """Render time and queries of the changelist of every registered session and token model."""
    client = Client()
    client.force_login(get_user_model().objects.get(username=ADMIN_USERNAME))
    pages = {}
    for label in ("accounts", "token_blacklist"):
        for model in filter(admin.site.is_registered, apps.get_app_config(label).get_models()):
            url = reverse(f"admin:{label}_{model._meta.model_name}_changelist")
            timings = []
            for _ in range(renders + 1):
                with QueryCounter(connection) as counter:
                    started = time.perf_counter()
                    response = client.get(url)
                    timings.append(time.perf_counter() - started)
            pages[str(model._meta.verbose_name_plural)] = {
                "status": response.status_code,
                # The first render warms templates and caches.
                "p50_ms": statistics.median(timings[1:]) * 1000,
                "queries": counter.queries,
                "rows": model._default_manager.count(),
            }
    return pages


def counts(up_to_token: int | None = None) -> dict:
    """Rows per session and token table; with `up_to_token`, token rows up to that id only."""
    result = {}
    for name, model in TABLES.items():
        rows = model.objects.all()
        if up_to_token is not None and model not in (Session, SecurityEvent):
            key = "pk" if model is OutstandingToken else "token_id"
            rows = rows.filter(**{f"{key}__lte": up_to_token})
        result[name] = rows.count()
    now = timezone.now()
    result["expired_sessions"] = Session.objects.filter(expires_at__lte=now).count()
    result["expired_tokens"] = OutstandingToken.objects.filter(expires_at__lte=now).count()
    result["old_events"] = SecurityEvent.objects.filter(created_at__lt=_event_cutoff(now)).count()
    result["max_token_id"] = OutstandingToken.objects.aggregate(top=Max("pk"))["top"] or 0
    return result


def _event_cutoff(now):
    return now - timedelta(days=app_settings.SECURITY_EVENT_RETENTION_DAYS)


def cleanup_floor() -> dict:
    """What PostgreSQL itself needs for the cleanup: six plain statements, one transaction."""
    s, st = Session._meta.db_table, SessionToken._meta.db_table
    bl, ot = BlacklistedToken._meta.db_table, OutstandingToken._meta.db_table
    ev = SecurityEvent._meta.db_table
    # Joins, not `IN (subquery) OR IN (subquery)`: a subquery whose ids outgrow work_mem
    # cannot be hashed, and PostgreSQL then rescans it for every row.
    statements = {
        "current token links": f"UPDATE {s} SET current_token_id = NULL FROM {ot} "
        f"WHERE {ot}.id = {s}.current_token_id AND {ot}.expires_at <= %(now)s",
        "session tokens": f"DELETE FROM {st} USING {ot}, {s} "
        f"WHERE {ot}.id = {st}.token_id AND {s}.id = {st}.session_id "
        f"AND ({ot}.expires_at <= %(now)s OR {s}.expires_at <= %(now)s)",
        "sessions": f"DELETE FROM {s} WHERE expires_at <= %(now)s",
        "blacklisted tokens": f"DELETE FROM {bl} USING {ot} "
        f"WHERE {ot}.id = {bl}.token_id AND {ot}.expires_at <= %(now)s",
        "outstanding tokens": f"DELETE FROM {ot} WHERE expires_at <= %(now)s",
        "security events": f"DELETE FROM {ev} WHERE created_at < %(events_cutoff)s",
    }
    rows = {}
    started = time.perf_counter()
    # The foreign keys are deferred: their checks run at the commit, inside the timing.
    with transaction.atomic(), connection.cursor() as cursor:
        now = timezone.now()
        for name, sql in statements.items():
            cursor.execute(sql, {"now": now, "events_cutoff": _event_cutoff(now)})
            rows[name] = cursor.rowcount
    return {"sql_seconds": time.perf_counter() - started, "rows": rows}


STEPS = {
    step.__name__: step
    for step in (
        prepare,
        mint,
        verify_cost,
        largest_list,
        refresh_queries,
        todos_queries,
        admin_changelists,
        counts,
        cleanup_floor,
    )
}

if __name__ == "__main__":
    step, kwargs = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    print(json.dumps(STEPS[step](**kwargs)))
