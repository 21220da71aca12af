"""Top-level routes: /auth, /todos, the admin, the API schema and docs."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from project import views

urlpatterns = [
    path("auth/", include("accounts.urls")),
    path("", include("todos.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("healthz", views.health, name="health"),
    # Unknown routes answer JSON even with DEBUG on (the admin keeps its own 404s
    # and APPEND_SLASH redirects).
    re_path(r"^(?!admin|static/|api/).*$", views.route_not_found),
]

handler400 = "project.handlers.bad_request"
handler403 = "project.handlers.permission_denied"
handler404 = "project.handlers.page_not_found"
handler500 = "project.handlers.server_error"
