"""What a signed-in user does with their own sessions and record: list, end one, end all."""

from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response

from accounts.clients import client_of
from accounts.exceptions import SessionNotFound
from accounts.models import RevokeReason, SecurityEvent, Session
from accounts.pagination import INVALID_PAGE, PAGE_HEADERS, PagedListPagination
from accounts.schema import error
from accounts.serializers import (
    LogoutAllResultSerializer,
    LogoutAllSerializer,
    SecurityEventSerializer,
    SessionSerializer,
)
from accounts.views import INVALID_BODY, SessionAPIView, validated


class LogoutAllView(SessionAPIView):
    """POST /auth/logout-all: end every session of the user, or every other one."""

    @extend_schema(
        operation_id="logout_all",
        request=LogoutAllSerializer,
        responses={200: LogoutAllResultSerializer, 400: INVALID_BODY},
        tags=["auth"],
    )
    def post(self, request):
        data = validated(LogoutAllSerializer, request)
        sessions = Session.objects.filter(user=request.user)
        if data["keep_current"]:
            sessions = sessions.exclude(pk=request.auth.pk)
        count = sessions.revoke(RevokeReason.LOGOUT_ALL, client=client_of(request))
        return Response({"message": "Logout successful", "revoked": count})


class SessionListView(SessionAPIView):
    """GET /auth/sessions: the caller's active sessions, newest first."""

    @extend_schema(
        operation_id="sessions_list",
        responses={200: SessionSerializer(many=True)},
        tags=["auth"],
    )
    def get(self, request):
        sessions = Session.objects.active().filter(user=request.user)
        serializer = SessionSerializer(
            sessions, many=True, context={"current_session": request.auth}
        )
        return Response(serializer.data)


class SecurityEventListView(SessionAPIView, ListAPIView):
    """GET /auth/events: the caller's own security record, newest first, a page at a time."""

    serializer_class = SecurityEventSerializer
    pagination_class = PagedListPagination

    def get_queryset(self):
        return SecurityEvent.objects.filter(user=self.request.user).order_by("-id")

    @extend_schema(
        operation_id="events_list",
        description="Your account's security record, newest first: sign-ins, wrong passwords, "
        "lockouts, forgiven refresh retries, detected token reuse, ended sessions, password "
        "changes. Always paginated (`page`, `limit`; 20 a page by default).",
        parameters=PAGE_HEADERS,
        responses={200: SecurityEventSerializer(many=True), 400: INVALID_PAGE},
        tags=["auth"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class SessionDetailView(SessionAPIView):
    """DELETE /auth/sessions/<id>: revoke one of the caller's own sessions."""

    @extend_schema(
        operation_id="session_revoke",
        parameters=[
            OpenApiParameter(
                "session_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="A `sid`."
            )
        ],
        responses={204: None, 404: error("No such session of yours: `session_not_found`.")},
        tags=["auth"],
    )
    def delete(self, request, session_id):
        try:
            sid = UUID(session_id)  # any spelling of a UUID, upper case included
        except ValueError:
            raise SessionNotFound() from None
        sessions = Session.objects.filter(pk=sid, user=request.user)
        if not sessions.exists():
            # Another user's session does not exist for you.
            raise SessionNotFound()
        sessions.revoke(RevokeReason.USER, client=client_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
