"""GET /todos past one chunk: streamed a chunk at a time, in the very bytes of one rendering."""

import json
import tracemalloc

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from todos import views
from todos.models import Todo

CHUNK = views.STREAM_CHUNK


@pytest.fixture
def long_list(user):
    """Two and a half chunks of todos, with strings JSON escapes and some done."""
    return Todo.objects.bulk_create(
        Todo(
            owner=user,
            title=f'{"Ab" if n % 3 else "cd"} {n} \u2028 "é" 😀',
            description=None if n % 4 else f"line\nbreak\x01 {n}",
            done=n % 2 == 0,
        )
        for n in range(CHUNK * 5 // 2)
    )


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("query", ["", "?done=true", "?title=ab"])
def test_long_list_streams_the_bytes_one_rendering_writes(
    auth_client, long_list, monkeypatch, query
):
    streamed = auth_client.get(f"/todos{query}")
    streamed_body = body(streamed)
    monkeypatch.setattr(views, "STREAM_CHUNK", 10**6)
    whole = auth_client.get(f"/todos{query}")

    assert streamed.streaming and not whole.streaming
    assert streamed_body == whole.content
    assert len(json.loads(whole.content)) > CHUNK
    assert streamed["Content-Type"] == whole["Content-Type"] == "application/json"
    assert not streamed.has_header("Content-Length")


def test_list_of_one_chunk_is_not_streamed(auth_client, user):
    Todo.objects.bulk_create(Todo(owner=user, title=f"t{n}") for n in range(CHUNK))
    response = auth_client.get("/todos")
    assert not response.streaming
    assert len(response.json()) == CHUNK


def test_paged_list_is_never_streamed(auth_client, long_list):
    response = auth_client.get(f"/todos?limit={CHUNK}&page=2")
    assert not response.streaming
    assert [t["id"] for t in response.json()] == [t.pk for t in long_list[CHUNK : 2 * CHUNK]]
    assert response["X-Total-Count"] == str(len(long_list))


def test_streamed_list_reads_one_chunk_per_query(auth_client, long_list):
    table = Todo._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        listed = json.loads(body(auth_client.get("/todos")))
    reads = [q["sql"] for q in queries if f'FROM "{table}"' in q["sql"]]
    assert [sql.rsplit("LIMIT", 1)[1].split()[0] for sql in reads] == [
        str(CHUNK + 1),
        str(CHUNK),
        str(CHUNK),
    ]
    assert [t["id"] for t in listed] == [t.pk for t in long_list]


def test_streamed_list_never_holds_its_whole_body(auth_client, user, monkeypatch):
    """Long todos, many chunks: the request's peak stays well under the body's size (not
    streamed, the JSON text and its bytes alone would be twice the body)."""
    description = "x" * 2000
    Todo.objects.bulk_create(
        Todo(owner=user, title=f"t{n}", description=description) for n in range(CHUNK * 20)
    )
    tracemalloc.start()
    try:
        size = sum(len(chunk) for chunk in auth_client.get("/todos").streaming_content)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > 4_000_000
    assert peak < size / 2, (peak, size)


def test_todo_deleted_mid_stream_shifts_no_other_in_or_out(auth_client, long_list):
    """Chunks follow ids, not offsets: a deletion behind the stream skips nobody."""
    response = auth_client.get("/todos")
    chunks = iter(response.streaming_content)
    received = next(chunks)
    sent, unsent = long_list[10], long_list[-10]
    Todo.objects.filter(pk__in=[sent.pk, unsent.pk]).delete()
    received += b"".join(chunks)

    ids = [t["id"] for t in json.loads(received)]
    assert ids == [t.pk for t in long_list if t.pk != unsent.pk]
