"""The per-user rate of todo writes: 429 with Retry-After past it, reads never counted."""

import time

import pytest
from rest_framework.test import APIClient

from tests.conftest import bearer, database_snapshot
from todos.models import Todo


@pytest.fixture
def write_rate(settings, time_machine):
    """Three writes in any minute, on a clock that stands still ten seconds into a minute.

    The next minute's, so tokens already issued are neither expired nor from the future.
    The window slides: places free 60 s after they were taken, not at the minute's end.
    """
    settings.TODO_WRITE_RATE = "3/minute"
    time_machine.move_to((int(time.time()) // 60 + 1) * 60 + 10, tick=False)


@pytest.fixture
def todo(user):
    return Todo.objects.create(owner=user, title="Buy milk")


def use_up_the_rate(client, todo) -> None:
    """One write of each kind that succeeds: POST, PUT, PATCH."""
    assert client.post("/todos", {"title": "new"}, format="json").status_code == 201
    body = {"title": "Buy oat milk", "done": False, "description": None}
    assert client.put(f"/todos/{todo.pk}", body, format="json").status_code == 200
    assert client.patch(f"/todos/{todo.pk}", {"done": True}, format="json").status_code == 200


def assert_throttled(response, seconds: int) -> None:
    assert response.status_code == 429, response.content
    unit = "second" if seconds == 1 else "seconds"
    assert response.json() == {
        "error": f"Request was throttled. Expected available in {seconds} {unit}.",
        "code": "throttled",
    }
    assert response["Retry-After"] == str(seconds)


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_write_past_the_rate_429_retry_after_and_nothing_written(
    auth_client, todo, write_rate, method
):
    use_up_the_rate(auth_client, todo)
    before = database_snapshot()

    body = {"title": "t", "done": True, "description": ""}
    path = "/todos" if method == "post" else f"/todos/{todo.pk}"
    response = getattr(auth_client, method)(path, body, format="json")

    assert_throttled(response, 60)
    assert database_snapshot() == before


def test_reads_are_never_throttled_200(auth_client, todo, write_rate):
    use_up_the_rate(auth_client, todo)
    for _ in range(5):
        assert auth_client.get("/todos").status_code == 200
        assert auth_client.get(f"/todos/{todo.pk}").status_code == 200


def test_reads_do_not_use_up_the_write_rate(auth_client, todo, write_rate):
    for _ in range(5):
        assert auth_client.get("/todos").status_code == 200
    use_up_the_rate(auth_client, todo)


def test_write_rate_is_per_user(auth_client, todo, other_user, login, write_rate):
    use_up_the_rate(auth_client, todo)
    other = APIClient()
    other.credentials(**bearer(login(other_user)["access_token"]))
    assert other.post("/todos", {"title": "mine"}, format="json").status_code == 201


def test_refused_writes_count_too(auth_client, todo, write_rate):
    """A 400 or a 404 costs the server as much as a write: each counts."""
    assert auth_client.post("/todos", {"title": ""}, format="json").status_code == 400
    assert auth_client.delete("/todos/999999").status_code == 404
    assert auth_client.patch(f"/todos/{todo.pk}", {}, format="json").status_code == 400
    assert_throttled(auth_client.post("/todos", {"title": "t"}, format="json"), 60)


def test_writes_resume_as_places_free(auth_client, todo, write_rate, time_machine):
    use_up_the_rate(auth_client, todo)
    assert_throttled(auth_client.post("/todos", {"title": "t"}, format="json"), 60)
    time_machine.shift(59)
    assert_throttled(auth_client.post("/todos", {"title": "t"}, format="json"), 1)
    time_machine.shift(1)
    assert auth_client.post("/todos", {"title": "t"}, format="json").status_code == 201


def test_writes_either_side_of_a_minute_edge_add_up(auth_client, todo, write_rate, time_machine):
    """Two writes at :10, one at :59, then the next minute's :01: still three in 60 s."""
    assert auth_client.post("/todos", {"title": "a"}, format="json").status_code == 201
    assert auth_client.post("/todos", {"title": "b"}, format="json").status_code == 201
    time_machine.shift(49)
    assert auth_client.post("/todos", {"title": "c"}, format="json").status_code == 201
    time_machine.shift(2)
    assert_throttled(auth_client.post("/todos", {"title": "d"}, format="json"), 9)


def test_writes_go_through_unthrottled_while_the_cache_is_down(auth_client, settings, caplog):
    """The rate spares the service; the count limit, in the database, still holds."""
    settings.TODO_LIMIT_PER_USER = 1
    # Nothing listens on port 1: every count fails to connect.
    settings.ACCOUNTS = {**settings.ACCOUNTS, "REDIS_URL": "redis://127.0.0.1:1/0"}
    assert auth_client.post("/todos", {"title": "t"}, format="json").status_code == 201
    assert auth_client.post("/todos", {"title": "t"}, format="json").status_code == 409
    assert "TodoWriteThrottle not counted" in caplog.text
