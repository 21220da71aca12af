"""DRF throttles on the guard's sliding windows: atomic, and shared by every server.

DRF's SimpleRateThrottle reads a list of timestamps from the cache and writes it back,
so parallel requests overwrite each other's entries and slip past the rate (the second
review counted 189 of 200 parallel revocations through a 120/minute limit). A claim
here takes its place in one atomic step (accounts.windows).
"""

import logging

from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

from accounts.windows import Window, claim, parse_rate

logger = logging.getLogger("accounts.throttles")


class WindowThrottle(BaseThrottle):
    """At most `rate()` requests per `key()` in any window of the rate's length.

    While Redis cannot count, the request is refused (503), unless `fail_open`: a limit
    that guards nothing secret (no password is checked behind it) lets requests through
    rather than stop what they do, e.g. ending a session.
    """

    fail_open = False

    def rate(self) -> str:
        """A DRF-style rate, "120/minute"."""
        raise NotImplementedError

    def key(self, request, view) -> str | None:
        """What is counted together; None to count nothing."""
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        key = self.key(request, view)
        if key is None:
            return True
        limit, period = parse_rate(self.rate())
        try:
            self.claimed = claim(Window(key, limit, period))
        except RedisError as error:
            if not self.fail_open:
                raise
            logger.warning("Redis unavailable, %s not counted: %s", type(self).__name__, error)
            return True
        return self.claimed.granted

    def wait(self) -> float:
        """Seconds until a place frees (Retry-After)."""
        return self.claimed.wait
