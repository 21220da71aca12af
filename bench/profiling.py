"""Where `GET /todos` and refresh spend their time, per side, profiled in-process (pyinstrument)."""

from pathlib import Path

from bench.inside import mint

RESULTS = Path(__file__).resolve().parent / "results"
SIDES = {"ours": "/todos", "stock": "/stock/todos"}


def _outermost(frame, match) -> list:
    """The outermost frames under `frame` (itself included) for which match(frame) holds."""
    if match(frame):
        return [frame]
    return [found for child in frame.children for found in _outermost(child, match)]


def _in(path: str):
    return lambda frame: path in (frame.file_path or "")


def _breakdown(auth: list) -> dict:
    """Split authentication time: ORM work, database round trips, JWT, the rest."""
    orm = [f for frame in auth for f in _outermost(frame, _in("/django/db/"))]
    database = sum(f.time for frame in auth for f in _outermost(frame, _in("/psycopg/")))
    jwt = sum(f.time for frame in auth for f in _outermost(frame, _in("/jwt/")))
    orm_time = sum(f.time for f in orm) - sum(
        f.time for frame in orm for f in _outermost(frame, _in("/psycopg/"))
    )
    total = sum(frame.time for frame in auth)
    return {
        "Django ORM (build SQL, make objects)": orm_time,
        "database round trip (psycopg)": database,
        "JWT decode and verify": jwt,
        "other": total - orm_time - database - jwt,
    }


def profile_todos(requests: int = 300) -> dict:
    """Per request: total time, time in authentication, and what authentication spends on."""
    from django.test import Client
    from pyinstrument import Profiler

    pairs = mint(ours=1, stock=1)
    tokens = {"ours": pairs["ours"][0], "stock": pairs["stock"][0]}
    client = Client()
    results = {}
    for side, path in SIDES.items():
        header = {"HTTP_AUTHORIZATION": f"Bearer {tokens[side]['access']}"}
        for _ in range(30):  # warm-up
            client.get(path, **header)
        profiler = Profiler(interval=0.0002)
        profiler.start()
        for _ in range(requests):
            assert client.get(path, **header).status_code == 200
        profiler.stop()
        root = profiler.last_session.root_frame()
        auth = _outermost(root, lambda frame: frame.function == "perform_authentication")
        auth_time = sum(frame.time for frame in auth)
        parts = _breakdown(auth)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"profile-todos-{side}.txt").write_text(
            profiler.output_text(unicode=True, color=False)
        )
        per_request = 1000 / requests
        results[side] = {
            "request_ms": profiler.last_session.duration * per_request,
            "authentication_ms": auth_time * per_request,
            "authentication_parts_ms": {
                name: seconds * per_request for name, seconds in parts.items()
            },
        }
    return results


REFRESH_SIDES = {
    # side: (path, request field, response field)
    "ours": ("/auth/refresh", "refresh_token", "refresh_token"),
    "stock": ("/stock/refresh", "refresh", "refresh"),
}


def profile_refresh(requests: int = 150) -> dict:
    """Per refresh: total time, split into ORM, database, JWT and the rest; the lock query."""
    from django.test import Client
    from pyinstrument import Profiler

    pairs = mint(ours=1, stock=1)
    client = Client()
    results = {}
    for side, (path, field, answer) in REFRESH_SIDES.items():
        token = pairs[side][0]["refresh"]

        def refresh(token: str, path=path, field=field, answer=answer) -> str:
            response = client.post(path, {field: token}, content_type="application/json")
            assert response.status_code == 200, response.content
            return response.json()[answer]

        for _ in range(10):  # warm-up
            token = refresh(token)
        profiler = Profiler(interval=0.0002)
        profiler.start()
        for _ in range(requests):
            token = refresh(token)
        profiler.stop()
        root = profiler.last_session.root_frame()
        (RESULTS / f"profile-refresh-{side}.txt").write_text(
            profiler.output_text(unicode=True, color=False)
        )
        per_request = 1000 / requests
        # Ours locks the session through session_with_user(); stock takes no lock.
        lock = _outermost(root, lambda frame: frame.function == "session_with_user")
        results[side] = {
            "request_ms": root.time * per_request,
            "parts_ms": {
                name: seconds * per_request for name, seconds in _breakdown([root]).items()
            },
            "session_lock_query_ms": sum(frame.time for frame in lock) * per_request,
        }
    return results
