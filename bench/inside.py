"""The bench's steps that run inside Django: fixtures, query counts, admin renders.

`python -m bench.inside <step> [json-args]` prints one JSON object; the runner calls it
with DJANGO_SETTINGS_MODULE=bench.settings and the database of the step in DATABASE_URL.
"""

import json
import statistics
import sys
import time

import django

BENCH_USERNAME = "bench"
ADMIN_USERNAME = "bench-admin"
TODOS = 20


def prepare(password: str) -> dict:
    """The bench user (real password hash), its todos, and a superuser for the admin."""
    from django.contrib.auth import get_user_model

    from todos.models import Todo

    User = get_user_model()
    user = User.objects.create_user(username=BENCH_USERNAME, password=password)
    Todo.objects.bulk_create(
        Todo(owner=user, title=f"Todo {n}", description="bench", done=n % 3 == 0)
        for n in range(TODOS)
    )
    User.objects.create_superuser(username=ADMIN_USERNAME, password=None)
    return {"user_id": user.pk, "password_hash": user.password}


def mint(ours: int = 0, stock: int = 0) -> dict:
    """Fresh token pairs: ours from the session service, stock as SimpleJWT makes them."""
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts import services

    user = get_user_model().objects.get(username=BENCH_USERNAME)
    pairs = {"ours": [], "stock": []}
    for _ in range(ours):
        _, pair = services.session_create(user=user, ip="127.0.0.1", user_agent="bench")
        pairs["ours"].append({"access": pair.access, "refresh": pair.refresh})
    for _ in range(stock):
        # for_user records the OutstandingToken row, as stock login does.
        refresh = RefreshToken.for_user(user)
        pairs["stock"].append({"access": str(refresh.access_token), "refresh": str(refresh)})
    return pairs


class QueryCounter:
    """Counts statements through Django's execute wrapper, and transactions by their end.

    BEGIN and COMMIT never pass the wrapper (psycopg sends BEGIN itself, Django commits
    through the connection), so a transaction is counted when an atomic block commits or
    rolls back; savepoints are counted apart from queries.
    """

    def __init__(self, connection):
        self.connection = connection
        self.queries: list[dict] = []
        self.savepoints = 0
        self.transactions = 0

    def __call__(self, execute, sql, params, many, context):
        if "SAVEPOINT" in sql[:30].upper():
            self.savepoints += 1
        else:
            self.queries.append(
                {"sql": sql[:100], "in_transaction": self.connection.in_atomic_block}
            )
        return execute(sql, params, many, context)

    def __enter__(self):
        for name in ("commit", "rollback"):
            original = getattr(self.connection, name)

            def counted(original=original):
                self.transactions += 1
                return original()

            setattr(self.connection, name, counted)
        self._wrapping = self.connection.execute_wrapper(self)
        self._wrapping.__enter__()
        return self

    def __exit__(self, *exc):
        self._wrapping.__exit__(*exc)
        for name in ("commit", "rollback"):
            delattr(self.connection, name)

    def summary(self) -> dict:
        in_transaction = sum(q["in_transaction"] for q in self.queries)
        return {
            "queries": len(self.queries),
            "transactions": self.transactions,
            "in_transaction": in_transaction,
            "autocommit": len(self.queries) - in_transaction,
            "savepoints": self.savepoints,
            "statements": [q["sql"] for q in self.queries],
        }


def refresh_queries(rounds: int = 3) -> dict:
    """Queries and transactions of one refresh, ours and stock, through the URLconf."""
    from django.db import connections
    from django.test import Client

    connection = connections["default"]
    client = Client()
    results = {}
    sides = {
        "ours": ("/auth/refresh", "refresh_token", "refresh_token"),
        "stock": ("/stock/refresh", "refresh", "refresh"),
    }
    pairs = mint(ours=1, stock=1)
    for side, (path, field, answer) in sides.items():
        token = pairs[side][0]["refresh"]
        seen = []
        # The first request warms caches; the ones after are what every request costs.
        for _ in range(rounds + 1):
            with QueryCounter(connection) as counter:
                response = client.post(path, {field: token}, content_type="application/json")
            assert response.status_code == 200, response.content
            token = response.json()[answer]
            seen.append(counter.summary())
        steady = seen[1:]
        results[side] = {
            **steady[-1],
            "stable": all(s["queries"] == steady[0]["queries"] for s in steady),
        }
    return results


def admin_changelists(repeat: int = 5) -> dict:
    """Render time and queries of each session/token changelist the admin registers."""
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(get_user_model().objects.get(username=ADMIN_USERNAME))
    connection = connections["default"]
    pages = {}
    for model in admin.site._registry:
        if model._meta.app_label not in {"accounts", "token_blacklist"}:
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        timings = []
        for _ in range(repeat + 1):
            with QueryCounter(connection) as counter:
                started = time.perf_counter()
                response = client.get(url)
                timings.append(time.perf_counter() - started)
        pages[str(model._meta.verbose_name_plural)] = {
            "url": url,
            "status": response.status_code,
            # The first render warms templates and caches.
            "p50_ms": statistics.median(timings[1:]) * 1000,
            "queries": counter.summary()["queries"],
            "bytes": len(response.content),
        }
    return pages


def counts() -> dict:
    """Rows of each session and token table, and how many of them are expired."""
    from django.db.models import Count, Q
    from django.utils import timezone
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

    from accounts.models import Session, SessionToken

    now = timezone.now()
    expired = Count("pk", filter=Q(expires_at__lte=now))
    return {
        "outstanding_tokens": OutstandingToken.objects.aggregate(n=Count("pk"), expired=expired),
        "sessions": Session.objects.aggregate(n=Count("pk"), expired=expired),
        "session_tokens": SessionToken.objects.count(),
        "blacklisted_tokens": BlacklistedToken.objects.count(),
    }


def profile_todos(requests: int = 300) -> dict:
    """Profile GET /todos per side with pyinstrument (see bench.profiling)."""
    from bench.profiling import profile_todos as run

    return run(requests)


def profile_refresh(requests: int = 150) -> dict:
    """Profile refresh per side with pyinstrument (see bench.profiling)."""
    from bench.profiling import profile_refresh as run

    return run(requests)


STEPS = {
    "prepare": prepare,
    "mint": mint,
    "refresh_queries": refresh_queries,
    "admin_changelists": admin_changelists,
    "counts": counts,
    "profile_todos": profile_todos,
    "profile_refresh": profile_refresh,
}


def main() -> None:
    """Run the step named on the command line and print its result as JSON."""
    django.setup()
    step, kwargs = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    print(json.dumps(STEPS[step](**kwargs)))


if __name__ == "__main__":
    main()
