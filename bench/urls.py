"""Bench-only routes: stock SimpleJWT's refresh and todo list, and the floor, beside ours."""

from django.urls import include, path
from rest_framework_simplejwt.authentication import (
    JWTAuthentication,
    JWTStatelessUserAuthentication,
)
from rest_framework_simplejwt.views import TokenRefreshView

from bench import floor
from project import urls as project_urls
from todos.models import Todo
from todos.views import TodoViewSet


class StockTodoViewSet(TodoViewSet):
    """The same todo view and data, authenticated by stock SimpleJWT (one user query)."""

    authentication_classes = (JWTAuthentication,)


class StatelessTodoViewSet(TodoViewSet):
    """The same todo view and data behind SimpleJWT's stateless class: the token alone
    decides (no query, and no way to end a session), so the list is the token's user's."""

    authentication_classes = (JWTStatelessUserAuthentication,)

    def get_queryset(self):
        return Todo.objects.filter(owner_id=self.request.user.id)


# The paths are bench.config.SIDES; ROTATE_REFRESH_TOKENS and BLACKLIST_AFTER_ROTATION
# are on in the project settings. The todo routes come first, as in project.urls: GET /todos
# resolves at the cost it has in the product, not after every bench route has been tried
# (five patterns and two includes: about 40 µs per request in-process).
urlpatterns = [
    path("", include("todos.urls")),
    path("stock/refresh", TokenRefreshView.as_view(), name="stock-refresh"),
    path("stock/todos", StockTodoViewSet.as_view({"get": "list"}), name="stock-todos"),
    path(
        "stateless/todos",
        StatelessTodoViewSet.as_view({"get": "list"}),
        name="stateless-todos",
    ),
    path("floor/todos", floor.todos, name="floor-todos"),
    path("floor/verify", floor.verify, name="floor-verify"),
    path("", include(project_urls)),
]
