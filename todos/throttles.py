"""The per-user rate of todo writes."""

import logging

from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework.permissions import SAFE_METHODS

from accounts.throttles import WindowThrottle

logger = logging.getLogger("django.request")


class TodoWriteThrottle(WindowThrottle):
    """POST, PUT, PATCH and DELETE per user at TODO_WRITE_RATE; reads are free.

    One sliding-window count per user, the kind the login limits use, atomic and shared
    by every server through Redis.
    """

    def rate(self) -> str:
        return settings.TODO_WRITE_RATE

    def key(self, request, view) -> str | None:
        return None if request.method in SAFE_METHODS else f"todos:write:{request.user.pk}"

    def allow_request(self, request, view) -> bool:
        """Count one write of this user; False past the rate."""
        try:
            return super().allow_request(request, view)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            # The rate spares the service, and the limit on the list's size lives in the
            # database: an unreachable Redis should not also stop every todo write.
            logger.warning("Cache unavailable, todo writes not throttled: %s", exc)
            return True
