"""Todos: per-user CRUD with the contract's texts, filters and strict types."""

import pytest

from todos.models import Todo
from todos.views import STREAM_CHUNK

NOT_FOUND = {"error": "Todo not found", "code": "todo_not_found"}
PUT_REQUIRED = "Invalid request. 'title', 'done', and 'description' fields are required."


@pytest.fixture
def todo(user):
    return Todo.objects.create(owner=user, title="Buy milk", description="2 litres")


@pytest.fixture
def others_todo(other_user):
    return Todo.objects.create(owner=other_user, title="Secret plan")


def test_first_of_is_the_orm_query_in_fewer_steps(user, other_user):
    """GET /todos with no parameters lists Todo.objects.first_of(): the same rows, fields
    and order as the ORM's query, of that owner only, at most `count` of them."""
    for number in range(7):
        Todo.objects.create(owner=(user, other_user)[number % 2], title=f"t{number}", done=True)
    Todo.objects.filter(title="t2").update(description=None)
    fields = [field.attname for field in Todo._meta.concrete_fields]

    def rows(todos):
        return [[getattr(todo, name) for name in fields] for todo in todos]

    for count in (1, 3, 10):
        orm = Todo.objects.filter(owner_id=user.pk).order_by("id")[:count]
        assert rows(Todo.objects.first_of(user.pk, count)) == rows(orm)
    assert len(Todo.objects.first_of(user.pk, 10)) == 4


def test_an_unfiltered_list_takes_first_of_and_a_filtered_one_still_filters(
    auth_client, user, monkeypatch
):
    Todo.objects.create(owner=user, title="open")
    Todo.objects.create(owner=user, title="closed", done=True)
    first_of, calls = Todo.objects.first_of, []
    monkeypatch.setattr(Todo.objects, "first_of", lambda *a: calls.append(a) or first_of(*a))
    assert [t["title"] for t in auth_client.get("/todos").json()] == ["open", "closed"]
    assert calls == [(user.pk, STREAM_CHUNK + 1)]
    assert [t["title"] for t in auth_client.get("/todos?done=true").json()] == ["closed"]
    assert [t["title"] for t in auth_client.get("/todos?limit=1").json()] == ["open"]
    assert len(calls) == 1


def test_list_is_bare_array_of_own_todos(auth_client, todo, others_todo):
    response = auth_client.get("/todos")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    todo.refresh_from_db()
    assert body == [
        {
            "id": todo.pk,
            "title": "Buy milk",
            "done": False,
            "description": "2 litres",
            # ISO 8601 in UTC, to the microsecond, as stored.
            "created_at": todo.created_at.isoformat().replace("+00:00", "Z"),
            "updated_at": todo.updated_at.isoformat().replace("+00:00", "Z"),
        }
    ]
    assert body[0]["created_at"].endswith("Z") and "." in body[0]["created_at"]


def test_create_defaults_done_false_201(auth_client, user):
    response = auth_client.post("/todos", {"title": "Write tests"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["title"] == "Write tests" and body["done"] is False and body["description"] is None
    assert Todo.objects.get(pk=body["id"]).owner == user


@pytest.mark.parametrize("body", [{}, {"title": None}, {"description": "no title"}])
def test_create_without_title_400(auth_client, body):
    response = auth_client.post("/todos", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid request. 'title' is required."
    assert not Todo.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "x" * 100_000},
        {"title": 12},
        {"title": ["a"]},
        {"title": "ok", "done": "yes"},
        {"title": "ok", "done": 1},
        {"title": "ok", "description": 5},
        {"title": "ok", "description": "d" * 10_001},
        {"title": "nul\x00byte"},
    ],
    ids=["blank", "huge", "int", "list", "done-str", "done-int", "desc-int", "desc-huge", "nul"],
)
def test_create_with_bad_field_400_and_no_row(auth_client, body):
    response = auth_client.post("/todos", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) >= {"error", "code"}
    assert not Todo.objects.exists()


def test_create_with_lone_surrogate_400(auth_client):
    # Valid JSON, but no database can store it: refused as a 400, never a 500.
    body = '{"title": "lone \\ud800 surrogate"}'
    response = auth_client.post("/todos", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "Strings must be valid Unicode."
    assert not Todo.objects.exists()


def test_retrieve_own_200_and_others_404(auth_client, todo, others_todo):
    assert auth_client.get(f"/todos/{todo.pk}").json()["title"] == "Buy milk"
    response = auth_client.get(f"/todos/{others_todo.pk}")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize("pk", ["999999", "abc", "99999999999999999999999", "-1", "1.5"])
def test_unknown_or_invalid_id_404_todo_not_found(auth_client, pk):
    for method in ("get", "put", "patch", "delete"):
        response = getattr(auth_client, method)(f"/todos/{pk}", {"title": "x"}, format="json")
        assert response.status_code == 404, method
        assert response.json() == NOT_FOUND


def test_put_replaces_todo_200(auth_client, todo):
    response = auth_client.put(
        f"/todos/{todo.pk}",
        {"title": "Buy oat milk", "done": True, "description": None},
        format="json",
    )
    assert response.status_code == 200
    todo.refresh_from_db()
    assert (todo.title, todo.done, todo.description) == ("Buy oat milk", True, None)


@pytest.mark.parametrize(
    "body", [{"title": "x"}, {"title": "x", "done": True}, {"done": True, "description": ""}]
)
def test_put_missing_fields_400(auth_client, todo, body):
    response = auth_client.put(f"/todos/{todo.pk}", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == PUT_REQUIRED
    todo.refresh_from_db()
    assert todo.title == "Buy milk"


def test_put_others_todo_404_and_unchanged(auth_client, others_todo):
    response = auth_client.put(
        f"/todos/{others_todo.pk}",
        {"title": "mine now", "done": True, "description": ""},
        format="json",
    )
    assert response.status_code == 404
    others_todo.refresh_from_db()
    assert others_todo.title == "Secret plan"


def test_patch_subset_200(auth_client, todo):
    response = auth_client.patch(f"/todos/{todo.pk}", {"done": True}, format="json")
    assert response.status_code == 200
    assert response.json()["done"] is True
    assert response.json()["title"] == "Buy milk"


@pytest.mark.parametrize("body", [{}, []])
def test_patch_empty_body_400(auth_client, todo, body):
    response = auth_client.patch(f"/todos/{todo.pk}", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid request."


def test_patch_wrong_type_400(auth_client, todo):
    response = auth_client.patch(f"/todos/{todo.pk}", {"done": "yes"}, format="json")
    assert response.status_code == 400
    todo.refresh_from_db()
    assert todo.done is False


def test_delete_204_empty_body(auth_client, todo):
    response = auth_client.delete(f"/todos/{todo.pk}")
    assert response.status_code == 204
    assert response.content == b""
    assert not Todo.objects.exists()


def test_delete_others_todo_404(auth_client, others_todo):
    assert auth_client.delete(f"/todos/{others_todo.pk}").json() == NOT_FOUND
    assert Todo.objects.filter(pk=others_todo.pk).exists()


@pytest.fixture
def many(user):
    titles = ["Buy groceries", "Call mom", "buy stamps", "Finish report", "Workout"]
    return Todo.objects.bulk_create(
        Todo(owner=user, title=t, done=i % 2 == 1) for i, t in enumerate(titles)
    )


def titles(response):
    return [t["title"] for t in response.json()]


def test_filter_done(auth_client, many):
    assert titles(auth_client.get("/todos?done=true")) == ["Call mom", "Finish report"]
    assert titles(auth_client.get("/todos?done=false")) == [
        "Buy groceries",
        "buy stamps",
        "Workout",
    ]


def test_filter_title_case_insensitive_prefix(auth_client, many):
    assert titles(auth_client.get("/todos?title=BUY")) == ["Buy groceries", "buy stamps"]
    assert titles(auth_client.get("/todos?title=groceries")) == []


def test_page_and_limit_slice_with_total_headers(auth_client, many):
    response = auth_client.get("/todos?page=2&limit=2")
    assert titles(response) == ["buy stamps", "Finish report"]
    assert response["X-Total-Count"] == "5"
    assert 'rel="prev"' in response["Link"] and 'rel="next"' in response["Link"]
    assert titles(auth_client.get("/todos?page=9&limit=2")) == []


def test_no_page_or_limit_returns_everything_without_headers(auth_client, many):
    response = auth_client.get("/todos")
    assert len(response.json()) == 5
    assert "X-Total-Count" not in response and "Link" not in response


def test_limit_alone_is_the_first_page(auth_client, many):
    response = auth_client.get("/todos?limit=2")
    assert titles(response) == ["Buy groceries", "Call mom"]
    assert response["X-Total-Count"] == "5"
    assert response["Link"] == '<http://testserver/todos?limit=2&page=2>; rel="next"'


def test_page_alone_pages_by_twenty(auth_client, user, many):
    Todo.objects.bulk_create(Todo(owner=user, title=f"extra {n}") for n in range(20))
    assert len(auth_client.get("/todos?page=1").json()) == 20
    second = auth_client.get("/todos?page=2")
    assert len(second.json()) == 5
    assert second["X-Total-Count"] == "25"
    assert second["Link"] == '<http://testserver/todos?page=1>; rel="prev"'


def test_filters_and_paging_combine_and_links_keep_the_filters(auth_client, many):
    response = auth_client.get("/todos?done=false&limit=2&page=1")
    assert titles(response) == ["Buy groceries", "buy stamps"]
    assert response["X-Total-Count"] == "3"
    assert "done=false" in response["Link"] and "page=2" in response["Link"]


@pytest.mark.parametrize(
    "query",
    [
        "done=yes",
        "page=0",
        "page=abc",
        "limit=0",
        "limit=1000",
        "page=-1&limit=2",
        "title=" + "x" * 201,
    ],
)
def test_invalid_query_400(auth_client, many, query):
    response = auth_client.get(f"/todos?{query}")
    assert response.status_code == 400
    assert response.json()["error"].startswith("Invalid query parameter")


@pytest.mark.parametrize(
    "fields",
    [
        {"title": "Buy milk", "description": None, "done": False},
        {"title": "emoji 😀 \u2028", "description": "", "done": True},
    ],
)
def test_written_out_representation_equals_drfs_own(user, fields):
    """TodoSerializer writes its dict by hand for speed: the same keys, order and values."""
    from rest_framework import serializers

    from todos.serializers import TodoSerializer

    todo = Todo.objects.create(owner=user, **fields)
    todo.refresh_from_db()
    serializer = TodoSerializer()
    fast = serializer.to_representation(todo)
    generic = serializers.Serializer.to_representation(serializer, todo)
    assert fast == generic
    assert list(fast) == list(generic) == list(serializer.fields)


def test_list_body_is_these_exact_bytes(api_client, user, login, time_machine):
    """Order of keys, time format, escapes: what clients parse, pinned to the byte."""
    time_machine.move_to("2026-03-01 12:00:00.123456+00:00", tick=False)
    access = login(user)["access_token"]
    first = Todo.objects.create(owner=user, title="Buy milk", description=None)
    second = Todo.objects.create(owner=user, title="Ünïcode \u2028", description="", done=True)
    stamp = '"created_at":"2026-03-01T12:00:00.123456Z","updated_at":"2026-03-01T12:00:00.123456Z"'
    expected = (
        f'[{{"id":{first.pk},"title":"Buy milk","done":false,"description":null,{stamp}}},'
        f'{{"id":{second.pk},"title":"Ünïcode \\u2028","done":true,"description":"",{stamp}}}]'
    )
    response = api_client.get("/todos", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert response.content == expected.encode()


@pytest.mark.parametrize("path", ["/todos/", "/todos/{id}/"])
def test_a_trailing_slash_gets_the_same_answer(auth_client, path):
    created = auth_client.post("/todos", {"title": "Slash"}, format="json").json()
    with_slash = auth_client.get(path.format(id=created["id"]))
    without = auth_client.get(path.rstrip("/").format(id=created["id"]))
    assert with_slash.status_code == without.status_code == 200
    assert with_slash.content == without.content
