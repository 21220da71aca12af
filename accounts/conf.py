"""The app's settings: one dict, `settings.ACCOUNTS`, every key with a default.

A project sets only what it changes, e.g. ``ACCOUNTS = {"ISSUER": "https://api.example.com"}``.
A value is worked out on first use and kept, as DRF's `api_settings` does, until Django
says a setting changed (`setting_changed`): `override_settings` and the `settings` test
fixture work as they do for Django's own settings, and a request pays an attribute read.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

DEFAULTS = {
    # Sessions.
    "SESSION_ABSOLUTE_LIFETIME": timedelta(days=30),
    "REFRESH_REUSE_GRACE_SECONDS": 10,
    "SESSION_LIMIT_PER_USER": 0,
    "SECURITY_EVENT_RETENTION_DAYS": 90,
    # The brute-force policy (accounts.guard): DRF-style rates.
    "THROTTLE_RATES": {
        "login": "60/minute",
        "login_failure": "5/minute",
        "username_failure": "30/hour",
        "signup": "20/hour",
        "introspection": "1200/minute",
        "revocation": "120/minute",
    },
    # The cookie mode's refresh cookie: Secure (and `__Host-`) unless DEBUG is on.
    "REFRESH_COOKIE_SECURE": None,
    # Where the brute-force counts are shared by every app server; None: in this process.
    # With it, authentication also reads ended sessions there, not from the database.
    "REDIS_URL": None,
    # How long the revocation list in Redis is believed after a renewal (accounts.revocations);
    # also how long a revocation waits when it cannot reach Redis. 0: always the database.
    "REVOCATION_LIST_SECONDS": 2,
    # Each process also keeps the ended sessions in memory, pushed through Redis, and skips
    # the round trip per request while that copy is complete (accounts.revocation_feed).
    "REVOCATION_FEED": True,
    # Tokens: who issues them (`iss`, and the base of every published URL), for whom.
    "ISSUER": None,
    "AUDIENCE": None,
    # RS256: deterministic signatures and the cheapest public-key verification (docs/keys).
    "SIGNING_ALGORITHM": "RS256",
    # Encrypts the private signing keys at rest; required with DEBUG off.
    "KEY_ENCRYPTION_KEY": None,
    "KEY_ENCRYPTION_KEY_FALLBACKS": [],
    # How long clients may cache the JWKS; `activate` waits this long after `add`.
    "JWKS_MAX_AGE": 300,
    # How long a process trusts the key ring it read before reading it again.
    "KEY_RING_SECONDS": 10,
    # Session events pushed to resource servers (accounts.push).
    "HEARTBEAT_SECONDS": 10,
    "PUSH_TIMEOUT_SECONDS": 5,
    "PUSH_RETRY_HOURS": 24,
    "PUSH_MAX_BACKOFF_SECONDS": 600,
    # Delivered and failed pushes are kept this long (the admin's delivery record).
    "PUSHED_EVENT_RETENTION_DAYS": 7,
}

# What an unset ISSUER means in development (`make run`); production must set it.
DEVELOPMENT_ISSUER = "http://localhost:8000"


class AppSettings:
    """`app_settings.NAME`: settings.ACCOUNTS["NAME"], or its default."""

    def __getattr__(self, name: str):
        """Only for a setting not worked out yet (or since a change): it is kept after."""
        if name not in DEFAULTS:
            raise AttributeError(f"ACCOUNTS has no setting {name!r}")
        value = getattr(settings, "ACCOUNTS", {}).get(name, DEFAULTS[name])
        resolve = RESOLVERS.get(name)
        value = resolve(self, value) if resolve else value
        setattr(self, name, value)
        return value

    def reload(self) -> None:
        """Forget every value worked out: the next use reads settings.ACCOUNTS again."""
        for name in DEFAULTS:
            self.__dict__.pop(name, None)

    def _resolve_throttle_rates(self, rates: dict) -> dict:
        # A project that sets some rates keeps the defaults of the others.
        return {**DEFAULTS["THROTTLE_RATES"], **rates}

    def _resolve_refresh_cookie_secure(self, value) -> bool:
        return (not settings.DEBUG) if value is None else value

    def _resolve_issuer(self, value) -> str:
        if not value and settings.DEBUG:
            return DEVELOPMENT_ISSUER
        if not value:
            # Every token carries it: refuse to sign or verify anything without it.
            raise ImproperlyConfigured(
                "ACCOUNTS['ISSUER'] is not set: this API's public origin, e.g. "
                "https://api.example.com (manage.py check says so too)."
            )
        return value.rstrip("/")


# The settings whose value is worked out from others: `_resolve_<name>` of AppSettings.
RESOLVERS = {
    name: resolve
    for name in DEFAULTS
    if (resolve := getattr(AppSettings, f"_resolve_{name.lower()}", None)) is not None
}

app_settings = AppSettings()


def _setting_changed(*, setting: str, **kwargs) -> None:
    # DEBUG too: ISSUER and REFRESH_COOKIE_SECURE are worked out from it.
    if setting in ("ACCOUNTS", "DEBUG"):
        app_settings.reload()


setting_changed.connect(_setting_changed)
