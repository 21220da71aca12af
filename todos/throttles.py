"""The per-user rate of todo writes."""

import logging

from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import BaseThrottle

from accounts.guard import parse_rate
from accounts.windows import Window, claim

logger = logging.getLogger("django.request")


class TodoWriteThrottle(BaseThrottle):
    """POST, PUT, PATCH and DELETE per user at TODO_WRITE_RATE; reads are free.

    One sliding-window count per user, the kind the login limits use (accounts.windows),
    atomic and shared by every server through Redis. DRF's SimpleRateThrottle reads a
    list of timestamps and writes it back, so parallel writes would overwrite each
    other's entries and slip under the limit.
    """

    def allow_request(self, request, view) -> bool:
        """Count one write of this user; False past the rate."""
        if request.method in SAFE_METHODS:
            return True
        try:
            limit, period = parse_rate(settings.TODO_WRITE_RATE)
            self.claimed = claim(Window(f"todos:write:{request.user.pk}", limit, period))
            return self.claimed.granted
        except (RedisConnectionError, RedisTimeoutError) as exc:
            # The rate spares the service, and the limit on the list's size lives in the
            # database: an unreachable cache should not also stop every todo write.
            logger.warning("Cache unavailable, todo writes not throttled: %s", exc)
            return True

    def wait(self) -> float:
        """Seconds until this user has a write again (Retry-After)."""
        return self.claimed.wait
