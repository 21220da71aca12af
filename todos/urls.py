"""Routes under /todos, as the lesson's client calls them; with a trailing slash too.

Django users expect `/todos/` to work as well: it gets the very same answer, from the
same viewset, and is left out of the schema, which documents each route once.
"""

from drf_spectacular.utils import extend_schema
from rest_framework.routers import SimpleRouter

from todos.views import TodoViewSet

app_name = "todos"


@extend_schema(exclude=True)
class SlashedTodoViewSet(TodoViewSet):
    """TodoViewSet at `/todos/` and `/todos/<id>/`."""


router = SimpleRouter(trailing_slash=False)
router.register("todos", TodoViewSet, basename="todo")
slashed = SimpleRouter()
slashed.register("todos", SlashedTodoViewSet, basename="todo-slashed")

urlpatterns = [*router.urls, *slashed.urls]
