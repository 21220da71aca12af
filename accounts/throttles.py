"""Login throttles: failures per username and address, and all logins per address."""

import hashlib

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class SettingsRateMixin:
    """Read the rate when the throttle is built (per request), not at import time."""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class LoginRateThrottle(SettingsRateMixin, SimpleRateThrottle):
    """Every login attempt, per client address."""

    scope = "login"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginFailureThrottle(SettingsRateMixin, SimpleRateThrottle):
    """Failed logins per username and address; only failures are counted."""

    scope = "login_failure"

    def get_cache_key(self, request, view):
        username = request.data.get("username") if isinstance(request.data, dict) else None
        # Hashed, so any string a client sends makes a valid, bounded cache key.
        digest = hashlib.sha256(f"{username}\0{self.get_ident(request)}".encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest}

    def throttle_success(self):
        """Let the attempt through without counting it; record_failure() counts."""
        return True

    def record_failure(self, request, view) -> None:
        """Count one failed login against this username and address."""
        self.key = self.get_cache_key(request, view)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)
