"""URL configuration for hostproject: startproject's, plus the accounts app and one view."""

from django.contrib import admin
from django.urls import include, path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response


@api_view(["GET"])
@permission_classes([IsAuthenticated])
def me(request):
    """The host's own API view, guarded by the app's authentication class (its DRF default)."""
    return Response({"username": request.user.get_username()})


urlpatterns = [
    path("admin/", admin.site.urls),
    # accounts: its routes.
    path("auth/", include("accounts.urls")),
    path("me", me),
]
