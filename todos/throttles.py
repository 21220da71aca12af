"""The per-user rate of todo writes."""

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS

from accounts.throttles import WindowThrottle


class TodoWriteThrottle(WindowThrottle):
    """POST, PUT, PATCH and DELETE per user at TODO_WRITE_RATE; reads are free.

    One sliding-window count per user, the kind the login limits use, atomic and shared
    by every server through Redis. It fails open: the rate spares the service, and the
    limit on the list's size lives in the database, so an unreachable Redis should not
    also stop every todo write.
    """

    fail_open = True

    def rate(self) -> str:
        return settings.TODO_WRITE_RATE

    def key(self, request, view) -> str | None:
        return None if request.method in SAFE_METHODS else f"todos:write:{request.user.pk}"
