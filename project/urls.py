"""Top-level routes: /auth, /todos, the admin, the API schema and docs, the web client."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from project import views
from todos import web

urlpatterns = [
    # The busiest routes first: resolving tries each pattern in turn.
    path("", include("todos.urls")),
    path("auth/", include("accounts.urls")),
    path(".well-known/", include("accounts.well_known_urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", views.api_docs, name="docs"),
    path("healthz", views.health, name="health"),
    path("", web.web_client, name="web-client"),
]
# Unknown routes and other errors Django answers itself: project.middleware makes them JSON.
