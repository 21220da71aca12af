"""Per-user todo CRUD: another user's todo does not exist for you."""

from collections.abc import Iterator

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import filters, viewsets
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts.fields import StrictBooleanField
from accounts.pagination import MAX_LIMIT, PAGE_HEADERS, BareListPagination
from accounts.schema import error
from todos.exceptions import InvalidTodoRequest, TodoNotFound
from todos.models import Todo
from todos.serializers import TodoFilterSerializer, TodoSerializer, description_field
from todos.throttles import TodoWriteThrottle

PUT_FIELDS = ("title", "done", "description")
# An unpaged list longer than this is streamed in chunks of this many todos (a page at
# most), so a worker holds one chunk of it at a time, never the whole list.
STREAM_CHUNK = MAX_LIMIT
FILTERS = frozenset(TodoFilterSerializer().fields)


class TodoReplaceSerializer(TodoSerializer):
    """PUT's body, for the schema: all three fields are required (the view checks it)."""

    done = StrictBooleanField()
    description = description_field()


TODO_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="A todo id.")
INVALID_TODO = error(
    "Missing, null, empty or too long title, wrong types (`invalid_request`, `invalid`, "
    "`required`, `null`, `blank`, `max_length`...); details per field under `fields`."
)
TODO_NOT_FOUND = error("No such todo of yours: `todo_not_found`.")
LIMIT_REACHED = error(
    "Your list already holds `TODO_LIMIT_PER_USER` todos; nothing was added: `todo_limit_reached`."
)
WRITES_THROTTLED = error(
    "Too many todo writes (`THROTTLE_TODO_WRITE_RATE`, per user); retry after "
    "`Retry-After` seconds: `throttled`."
)


class TodoFilter(filters.BaseFilterBackend):
    """`?done=true|false` and a case-insensitive `?title=` prefix; a bad value is a 400."""

    def filter_queryset(self, request, queryset, view):
        if not FILTERS.intersection(request.query_params):
            return queryset  # the common case, without building a serializer
        query = TodoFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        if "done" in params:
            queryset = queryset.filter(done=params["done"] == "true")
        if params.get("title"):
            queryset = queryset.filter(title__istartswith=params["title"])
        return queryset


@extend_schema_view(
    list=extend_schema(
        operation_id="todos_list",
        description="Your todos, oldest first. `done` and a case-insensitive `title` prefix "
        "filter; `page` and/or `limit` paginate. Always a bare array; unpaged and longer "
        "than 100 todos, it is streamed (chunked, no Content-Length).",
        parameters=[
            TodoFilterSerializer,
            *PAGE_HEADERS,
        ],
        responses={
            200: TodoSerializer(many=True),
            400: error(
                "A query parameter is invalid (`invalid`, `invalid_choice`, `max_length`, "
                "`min_value`, `max_value`); details under `fields`."
            ),
        },
    ),
    create=extend_schema(
        operation_id="todos_create",
        description="Create a todo; `done` defaults to false, `description` to null. "
        "Refused (409) when your list holds `TODO_LIMIT_PER_USER` todos already.",
        responses={
            201: TodoSerializer,
            400: INVALID_TODO,
            409: LIMIT_REACHED,
            429: WRITES_THROTTLED,
        },
    ),
    retrieve=extend_schema(
        operation_id="todos_retrieve",
        description="One of your todos; another user's is 404, never 403.",
        parameters=[TODO_ID],
        responses={200: TodoSerializer, 404: TODO_NOT_FOUND},
    ),
    update=extend_schema(
        operation_id="todos_replace",
        description="Replace a todo: `title`, `done` and `description` are all required.",
        parameters=[TODO_ID],
        request=TodoReplaceSerializer,
        responses={
            200: TodoSerializer,
            400: INVALID_TODO,
            404: TODO_NOT_FOUND,
            429: WRITES_THROTTLED,
        },
    ),
    partial_update=extend_schema(
        operation_id="todos_update",
        description="Change some fields of a todo; an empty body is a 400.",
        parameters=[TODO_ID],
        responses={
            200: TodoSerializer,
            400: INVALID_TODO,
            404: TODO_NOT_FOUND,
            429: WRITES_THROTTLED,
        },
    ),
    destroy=extend_schema(
        operation_id="todos_delete",
        description="Delete a todo.",
        parameters=[TODO_ID],
        responses={204: None, 404: TODO_NOT_FOUND, 429: WRITES_THROTTLED},
    ),
)
class TodoViewSet(viewsets.ModelViewSet):
    """GET/POST /todos and GET/PUT/PATCH/DELETE /todos/<id>."""

    serializer_class = TodoSerializer
    throttle_classes = (TodoWriteThrottle,)
    filter_backends = (TodoFilter,)
    pagination_class = BareListPagination
    # Any path segment reaches get_object(), so a bad id is "Todo not found", not a bare 404.
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return Todo.objects.filter(owner=self.request.user)

    def list(self, request, *args, **kwargs):
        """The filtered list: a page if asked for, else all of it, streamed past one chunk."""
        if request.query_params:
            queryset = self.filter_queryset(self.get_queryset())
            page = self.paginate_queryset(queryset)
            if page is not None:
                return self.get_paginated_response(self.get_serializer(page, many=True).data)
            first = list(queryset[: STREAM_CHUNK + 1])
        else:
            # Nothing filters or pages it: the common request, the same rows in fewer steps.
            queryset = None
            first = Todo.objects.first_of(request.user.pk, STREAM_CHUNK + 1)
        if len(first) <= STREAM_CHUNK:
            return Response(self.get_serializer(first, many=True).data)
        queryset = queryset if queryset is not None else self.get_queryset()
        return StreamingHttpResponse(
            self._chunks(queryset, first), content_type=JSONRenderer.media_type
        )

    def _chunks(self, queryset, first: list) -> Iterator[bytes]:
        """The JSON array of `queryset`, chunk by chunk, in the bytes JSONRenderer writes.

        Each chunk after `first` is the next STREAM_CHUNK todos by id (keyset, so a todo
        added or deleted meanwhile never shifts another one in or out of the list).
        """
        renderer = JSONRenderer()
        rows, opening = first, b"["
        while rows:
            # Rendered as an array, and its brackets dropped: the same bytes, escapes
            # included, as the whole list rendered at once.
            yield opening + renderer.render(self.get_serializer(rows, many=True).data)[1:-1]
            opening = b","
            if len(rows) < STREAM_CHUNK:
                break  # the last chunk: nothing follows it
            rows = list(queryset.filter(pk__gt=rows[-1].pk)[:STREAM_CHUNK])
        yield b"]"

    def get_object(self):
        pk = self.kwargs["pk"]
        # Refuse ids no row can have before they reach the database (no overflow, no 500).
        if not (pk.isascii() and pk.isdigit() and len(pk) <= 18):
            raise TodoNotFound()
        todo = self.get_queryset().filter(pk=int(pk)).first()
        if todo is None:
            raise TodoNotFound()
        return todo

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)

    def update(self, request, *args, partial=False, **kwargs):
        """PUT needs all three fields, PATCH at least one; a missing todo is 404 first."""
        todo = self.get_object()
        if not isinstance(request.data, dict) or not request.data:
            raise InvalidTodoRequest("Invalid request.")
        if not partial and any(field not in request.data for field in PUT_FIELDS):
            raise InvalidTodoRequest(
                "Invalid request. 'title', 'done', and 'description' fields are required."
            )
        serializer = self.get_serializer(todo, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)
