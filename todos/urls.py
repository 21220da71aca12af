"""Routes under /todos, without trailing slashes as the lesson's client calls them."""

from rest_framework.routers import SimpleRouter

from todos.views import TodoViewSet

app_name = "todos"

router = SimpleRouter(trailing_slash="")
router.register("todos", TodoViewSet, basename="todo")

urlpatterns = router.urls
