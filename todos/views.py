"""Per-user todo CRUD: another user's todo does not exist for you."""

from rest_framework import exceptions, viewsets
from rest_framework.response import Response

from todos.models import Todo
from todos.serializers import TodoListQuerySerializer, TodoSerializer

PUT_FIELDS = ("title", "done", "description")


class TodoNotFound(exceptions.NotFound):
    default_detail = "Todo not found"
    default_code = "todo_not_found"


class InvalidTodoRequest(exceptions.ValidationError):
    default_code = "invalid_request"


class TodoViewSet(viewsets.ModelViewSet):
    """GET/POST /todos and GET/PUT/PATCH/DELETE /todos/<id>."""

    serializer_class = TodoSerializer
    # Any path segment reaches get_object(), so a bad id is "Todo not found", not a bare 404.
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return Todo.objects.filter(owner=self.request.user)

    def get_object(self):
        pk = self.kwargs["pk"]
        # Refuse ids no row can have before they reach the database (no overflow, no 500).
        if not (pk.isascii() and pk.isdigit() and len(pk) <= 18):
            raise TodoNotFound()
        todo = self.get_queryset().filter(pk=int(pk)).first()
        if todo is None:
            raise TodoNotFound()
        return todo

    def list(self, request, *args, **kwargs):
        query = TodoListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        todos = self.get_queryset()
        if "done" in params:
            todos = todos.filter(done=params["done"] == "true")
        if params.get("title"):
            todos = todos.filter(title__istartswith=params["title"])
        headers = {}
        if "page" in params and "limit" in params:
            page, limit = params["page"], params["limit"]
            total = todos.count()
            todos = todos[(page - 1) * limit : page * limit]
            headers = {
                "X-Total-Count": str(total),
                **self._link_header(request, page, limit, total),
            }
        return Response(self.get_serializer(todos, many=True).data, headers=headers)

    @staticmethod
    def _link_header(request, page: int, limit: int, total: int) -> dict:
        """RFC 8288 next/prev links, keeping the other query parameters."""
        links = []
        last = max(1, -(-total // limit))
        for rel, number in (("prev", page - 1), ("next", page + 1)):
            if 1 <= number <= last:
                params = request.query_params.copy()
                params["page"] = str(number)
                url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
                links.append(f'<{url}>; rel="{rel}"')
        return {"Link": ", ".join(links)} if links else {}

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
