"""Per-user limits on todos: how many a list holds and how long their strings are."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from django.db.models.signals import pre_save
from rest_framework.test import APIClient

from tests.conftest import bearer, database_snapshot, wait_until
from todos.models import Todo

# JSON's widest characters: each is written as six bytes (\u0001, \u2028).
WIDEST = ("\x01", "\u2028")
# Per todo beyond its strings: keys, quotes, a 19-digit id, `false`, two timestamps.
TODO_OVERHEAD_BYTES = 160


@pytest.fixture
def limits(settings):
    """Small limits, so a full list and the longest strings are quick to make."""
    settings.TODO_LIMIT_PER_USER = 3
    settings.TODO_TITLE_MAX_LENGTH = 10
    settings.TODO_DESCRIPTION_MAX_LENGTH = 20


def too_long(limit: int) -> dict:
    text = f"Ensure this field has no more than {limit} characters."
    return {"error": text, "code": "max_length"}


def test_create_past_the_count_limit_409_naming_it_and_nothing_written(auth_client, limits):
    for n in range(3):
        assert auth_client.post("/todos", {"title": f"t{n}"}, format="json").status_code == 201
    before = database_snapshot()

    response = auth_client.post("/todos", {"title": "one more"}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "error": "You have reached the limit of 3 todos. Delete some to add more.",
        "code": "todo_limit_reached",
    }
    assert database_snapshot() == before


def test_count_limit_counts_only_the_callers_todos(auth_client, other_user, limits):
    Todo.objects.bulk_create(Todo(owner=other_user, title=f"t{n}") for n in range(3))
    assert auth_client.post("/todos", {"title": "mine"}, format="json").status_code == 201


def test_deleting_a_todo_at_the_count_limit_makes_room_201(auth_client, user, limits):
    first, *_ = Todo.objects.bulk_create(Todo(owner=user, title=f"t{n}") for n in range(3))
    assert auth_client.post("/todos", {"title": "no room"}, format="json").status_code == 409
    assert auth_client.delete(f"/todos/{first.pk}").status_code == 204
    assert auth_client.post("/todos", {"title": "room"}, format="json").status_code == 201


def test_todos_over_a_lowered_count_limit_stay_editable_200(auth_client, user, limits):
    """Lowering the limit refuses new todos only: those kept from before stay usable."""
    todos = Todo.objects.bulk_create(Todo(owner=user, title=f"t{n}") for n in range(5))
    response = auth_client.patch(f"/todos/{todos[4].pk}", {"done": True}, format="json")
    assert response.status_code == 200
    assert len(auth_client.get("/todos").json()) == 5


@pytest.mark.parametrize(("field", "limit"), [("title", 10), ("description", 20)])
def test_create_past_the_length_limit_400_max_length_and_nothing_written(
    auth_client, limits, field, limit
):
    before = database_snapshot()
    response = auth_client.post("/todos", {"title": "ok", field: "x" * (limit + 1)}, format="json")

    assert response.status_code == 400
    error = too_long(limit)
    assert response.json() == {**error, "fields": {field: [error["error"]]}}
    assert database_snapshot() == before
    at_limit = auth_client.post("/todos", {"title": "ok", field: "x" * limit}, format="json")
    assert at_limit.status_code == 201


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize(("field", "limit"), [("title", 10), ("description", 20)])
def test_update_past_the_length_limit_400_max_length_and_todo_unchanged(
    auth_client, user, limits, method, field, limit
):
    todo = Todo.objects.create(owner=user, title="keep", description="me")
    before = database_snapshot()
    body = {"title": "ok", "done": True, "description": None, field: "x" * (limit + 1)}

    response = getattr(auth_client, method)(f"/todos/{todo.pk}", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "max_length"
    assert response.json()["fields"] == {field: [too_long(limit)["error"]]}
    assert database_snapshot() == before


def test_length_limit_counts_characters_not_bytes_201(auth_client, limits):
    """Ten four-byte characters are a title of ten."""
    response = auth_client.post("/todos", {"title": "😀" * 10}, format="json")
    assert response.status_code == 201


def test_full_list_of_the_longest_todos_stays_within_the_documented_bound(auth_client, limits):
    """docs/configuration.md: a list's body is at most limit x (6 x (title + description)
    + 160) bytes, plus its brackets; the count limit stops it growing past that."""
    for char in (*WIDEST, WIDEST[0]):
        # A title is stripped, and U+2028 is whitespace: one letter keeps it a title.
        body = {"title": "a" + char * 9, "description": char * 20}
        assert auth_client.post("/todos", body, format="json").status_code == 201
    assert auth_client.post("/todos", body, format="json").status_code == 409

    listed = auth_client.get("/todos").content

    per_todo = 6 * (10 + 20) + TODO_OVERHEAD_BYTES
    assert len(listed) <= 2 + 3 * per_todo
    # The strings did take six bytes a character: the bound is not loose by much.
    assert len(listed) > 3 * 6 * (9 + 20)


# --- concurrent creates ----------------------------------------------------------------------


@pytest.fixture
def racer(transactional_db, make_user, login, settings):
    """A user with one todo of a limit of two, and a signed-in header for each thread."""
    settings.TODO_LIMIT_PER_USER = 2
    user = make_user("racer")
    Todo.objects.create(owner=user, title="already here")
    return user, bearer(login(user)["access_token"])


def create(header: dict, title: str) -> int:
    """POST /todos from a thread: its own client and database connection."""
    try:
        response = APIClient().post("/todos", {"title": title}, format="json", **header)
        return response.status_code
    finally:
        connections.close_all()


def lock_waiters() -> int:
    """Backends of this database waiting for a row lock right now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_two_creates_at_the_limit_minus_one_one_201_one_409_on_postgres(postgres_only, racer):
    """The first create holds between its count and its insert; the second must wait.

    Without a lock the second would count one todo, insert, and both would get 201.
    """
    user, header = racer
    counted, release = threading.Event(), threading.Event()
    first_thread = []

    def hold_first(sender, instance, **kwargs):
        if not first_thread:
            first_thread.append(threading.get_ident())
        if first_thread == [threading.get_ident()]:
            counted.set()
            release.wait(timeout=10)

    pre_save.connect(hold_first, sender=Todo)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(create, header, "first")
            assert counted.wait(timeout=10)
            second = pool.submit(create, header, "second")
            # The second queues on the owner's row lock (or, without one, is done already).
            wait_until(lambda: second.done() or lock_waiters() > 0)
            release.set()
            statuses = sorted([first.result(timeout=10), second.result(timeout=10)])
    finally:
        release.set()
        pre_save.disconnect(hold_first, sender=Todo)
    assert statuses == [201, 409]
    assert Todo.objects.filter(owner=user).count() == 2


def test_burst_of_creates_never_passes_the_count_limit(racer, settings):
    """Twelve creates released at once against a limit of five: five 201, the rest 409."""
    settings.TODO_LIMIT_PER_USER = 5
    user, header = racer
    barrier = threading.Barrier(12)

    def one(n: int) -> int:
        barrier.wait(timeout=10)
        return create(header, f"burst {n}")

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = sorted(pool.map(one, range(12)))
    assert statuses == [201] * 4 + [409] * 8
    assert Todo.objects.filter(owner=user).count() == 5


def test_create_locks_the_owner_row_but_not_against_key_share_on_postgres(postgres_only, racer):
    """FOR NO KEY UPDATE: creates of one owner queue, while inserts of rows that reference
    the user (a session, an event), which take a key-share lock on it, go ahead."""
    from django.contrib.auth import get_user_model
    from django.db import DatabaseError, transaction

    user, header = racer
    holding, release = threading.Event(), threading.Event()

    def hold(sender, instance, **kwargs):
        holding.set()
        release.wait(timeout=10)

    pre_save.connect(hold, sender=Todo)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(create, header, "held")
            assert holding.wait(timeout=10)
            users = get_user_model().objects.filter(pk=user.pk)
            with pytest.raises(DatabaseError, match="could not obtain lock"), transaction.atomic():
                users.select_for_update(nowait=True).exists()
            with transaction.atomic(), connection.cursor() as cursor:
                table = connection.ops.quote_name(users.model._meta.db_table)
                cursor.execute(
                    f"SELECT 1 FROM {table} WHERE id = %s FOR KEY SHARE NOWAIT", [user.pk]
                )
            release.set()
            assert pending.result(timeout=10) == 201
    finally:
        release.set()
        pre_save.disconnect(hold, sender=Todo)
