"""Settings, read from the environment with safe development defaults."""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

from project.env import Env

BASE_DIR = Path(__file__).resolve().parent.parent


env = Env()

DEBUG = env.boolean("DEBUG", False)

# Development-only secrets. They are public, so production refuses them.
DEV_SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"
DEV_JWT_SIGNING_KEY = "dev-only-insecure-jwt-signing-key-do-not-use-in-production"
DEV_JWT_KEY_ENCRYPTION_KEY = "dev-only-insecure-key-encryption-key-do-not-use-in-production"

SECRET_KEY = env.secret("SECRET_KEY", DEV_SECRET_KEY, required=not DEBUG)

# JWTs. With a public-key algorithm (RS256 by default) tokens are signed by the key ring
# (accounts.keyring: `manage.py signing_keys`), whose private keys are stored encrypted
# with JWT_KEY_ENCRYPTION_KEY. With HS* they are signed with the secret JWT_SIGNING_KEY.
JWT_ALGORITHM = env.choice(
    "JWT_ALGORITHM",
    "RS256",
    ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA"),
)
JWT_SIGNING_KEY = ""
JWT_KEY_ENCRYPTION_KEY = ""
if JWT_ALGORITHM.startswith("HS"):
    JWT_SIGNING_KEY = env.secret("JWT_SIGNING_KEY", DEV_JWT_SIGNING_KEY, required=not DEBUG)
    if not DEBUG and JWT_SIGNING_KEY and JWT_SIGNING_KEY == SECRET_KEY:
        # One leaked key must not both forge tokens and sign Django's cookies.
        env.problem("JWT_SIGNING_KEY must differ from SECRET_KEY")
else:
    JWT_KEY_ENCRYPTION_KEY = env.secret(
        "JWT_KEY_ENCRYPTION_KEY", DEV_JWT_KEY_ENCRYPTION_KEY, required=not DEBUG
    )
    if not DEBUG and JWT_KEY_ENCRYPTION_KEY and JWT_KEY_ENCRYPTION_KEY == SECRET_KEY:
        # A leaked SECRET_KEY must not also open the private signing keys.
        env.problem("JWT_KEY_ENCRYPTION_KEY must differ from SECRET_KEY")
# The issuer (`iss`, and the base of the URLs discovery publishes): this API's public
# origin. Built from configuration, never from a request's Host header.
JWT_ISSUER = env.text("JWT_ISSUER", "http://localhost:8000" if DEBUG else "")
if not DEBUG and not JWT_ISSUER:
    env.problem("JWT_ISSUER is not set (this API's public URL, e.g. https://api.example.com)")

ALLOWED_HOSTS = env.items("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
if not DEBUG and not ALLOWED_HOSTS:
    # Django would answer every request 400 (DisallowedHost); say so at start instead.
    env.problem("ALLOWED_HOSTS is not set (the host names this API is served under)")
CSRF_TRUSTED_ORIGINS = env.items("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # Django's admin, on a site whose login and password forms are rate-limited.
    "accounts.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # The Content-Security-Policy header (its system checks catch outdated settings).
    "csp",
    "accounts",
    "todos",
]

MIDDLEWARE = [
    # First: it sees every response, and the errors of the middleware below.
    "project.middleware.JSONErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Every page's Content-Security-Policy (CONTENT_SECURITY_POLICY below); after
    # whitenoise, which answers static files itself.
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A Django sign-in (the admin's) whose session has ended is signed out here.
    "accounts.signins.SignInSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The API docs' page (project/templates/api/); apps keep their own templates.
        "DIRS": [BASE_DIR / "project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "project.wsgi.application"

# Database: SQLite by default, PostgreSQL (psycopg 3) when DATABASE_URL is set.
# Connections are kept CONN_MAX_AGE seconds and checked before reuse, so a server
# restart or a dropped connection costs one reconnect, not an error.
DATABASE_URL = env.text("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
try:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env.integer("CONN_MAX_AGE", 60), conn_health_checks=True
        )
    }
except ValueError as exc:
    env.problem(f"DATABASE_URL is not a database URL ({exc})")
    DATABASES = {"default": dj_database_url.parse(f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# The test database's name (Django's TEST.NAME): two suites on one server must not share
# one. Django's default is the database's name with `test_` in front.
if env.text("DATABASE_TEST_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": env.text("DATABASE_TEST_NAME")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable server fails the request in seconds (503) instead of hanging a worker.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "connect_timeout", env.integer("DATABASE_CONNECT_TIMEOUT", 5, minimum=1)
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue on the
    # busy timeout instead of failing with "database is locked" mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not shared-cache memory, so threaded race tests get real locking.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache: Redis when REDIS_URL is set (shared throttle counters), local memory otherwise.
REDIS_URL = env.text("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Bounded waits: an unreachable Redis is a quick 503, not a hung worker.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    # Per process; room enough that a flood of keys cannot cull the rate-limit counters.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

# Django's ModelBackend, but a username is found whatever its case (accounts/backends.py).
AUTHENTICATION_BACKENDS = ["accounts.backends.CaseInsensitiveModelBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Not a rule on the password: Django calls its password_changed() hook on every
    # password change (admin, changepassword, set_password + save), and it ends the
    # user's sessions. `manage.py check` fails without it (accounts/checks.py).
    {"NAME": "accounts.hooks.EndSessionsOnPasswordChange"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# In development whitenoise serves static files straight from the apps (`make run` turns
# off runserver's own static handler, whose 404 is an HTML page outside the middleware).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# Where collectstatic writes; whitenoise serves it with DEBUG off.
STATIC_ROOT = Path(env.text("STATIC_ROOT") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Security headers; the TLS-related ones are configurable for a proxy in front.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env.boolean("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env.boolean("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env.boolean("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env.boolean("SECURE_HSTS_PRELOAD", not DEBUG)
# Only behind a TLS proxy that sets X-Forwarded-Proto itself (and strips the client's).
if env.boolean("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Health checks from a load balancer arrive over plain HTTP on this path.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# The Content-Security-Policy of every response (django-csp): the admin's pages, and the
# default for anything else. Only our own scripts, styles and images run or load: no
# inline script or style, nothing from elsewhere, no plugins, no framing, forms post
# here only. Two pages set their own with django-csp's decorators: the web client at /
# (stricter: no form posts at all; project/views.py) and the API docs (Swagger UI's
# images are data: URIs, and its page's one style block carries a nonce; project/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# The largest request body; Django refuses a larger one from its Content-Length, before
# reading any of it (413), for the API's JSON and the admin's forms alike.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.integer("API_MAX_BODY_BYTES", 1024 * 1024, minimum=1)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.SessionJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["accounts.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "project.handlers.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "accounts.schema.ApiAutoSchema",
    "UNAUTHENTICATED_USER": None,
    # How many proxies in front append to X-Forwarded-For. 0 ignores the header, so a
    # client cannot pick its own address to dodge the rate limits.
    "NUM_PROXIES": env.integer("NUM_PROXIES", 0),
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(
        seconds=env.integer("ACCESS_TOKEN_LIFETIME", 15 * 60, minimum=1)
    ),
    # The refresh token's lifetime is the session's idle timeout: each rotation renews it.
    "REFRESH_TOKEN_LIFETIME": timedelta(
        seconds=env.integer("REFRESH_TOKEN_LIFETIME", 7 * 24 * 3600, minimum=1)
    ),
    # The HMAC secret, for HS*; public-key algorithms sign with the key ring instead.
    "ALGORITHM": JWT_ALGORITHM if JWT_ALGORITHM.startswith("HS") else "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY or SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "LEEWAY": 0,
}
if SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"] < SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]:
    # An access token would outlive the session's idle timeout, which the refresh token is.
    env.problem("REFRESH_TOKEN_LIFETIME must be at least ACCESS_TOKEN_LIFETIME")

# Per user: how many todos, and how long a title and a description may be. Together they
# bound the body of an unpaged GET /todos (docs/configuration.md has the arithmetic).
TODO_LIMIT_PER_USER = env.integer("TODO_LIMIT_PER_USER", 1000, minimum=1)
# The title column holds 200 characters (todos.models.TITLE_MAX_LENGTH).
TODO_TITLE_MAX_LENGTH = env.integer("TODO_TITLE_MAX_LENGTH", 200, minimum=1, maximum=200)
TODO_DESCRIPTION_MAX_LENGTH = env.integer("TODO_DESCRIPTION_MAX_LENGTH", 2000)
# Todo writes (POST, PUT, PATCH, DELETE) per user, in any window of that length.
TODO_WRITE_RATE = env.rate("THROTTLE_TODO_WRITE_RATE", "120/minute")

# The accounts app's own settings (accounts/conf.py has every key and its default).
ACCOUNTS = {
    # A session's absolute lifetime; rotation never extends a session past it.
    "SESSION_ABSOLUTE_LIFETIME": timedelta(
        seconds=env.integer("SESSION_ABSOLUTE_LIFETIME", 30 * 24 * 3600, minimum=1)
    ),
    # Seconds after a rotation during which the token it replaced (that one only, from
    # the client it served) gets the very same new pair again: a retry or a second tab
    # keeps its session. Anything else rotated out ends the session. 0 is strict reuse
    # detection (RFC 9700 §4.14.2).
    "REFRESH_REUSE_GRACE_SECONDS": env.integer("REFRESH_REUSE_GRACE_SECONDS", 10),
    # Active sessions a user may hold; past it a new login ends the oldest. 0: no limit.
    "SESSION_LIMIT_PER_USER": env.integer("SESSION_LIMIT_PER_USER", 0),
    # Days the security record keeps an event; `manage.py cleanup_tokens` deletes older ones.
    "SECURITY_EVENT_RETENTION_DAYS": env.integer("SECURITY_EVENT_RETENTION_DAYS", 90, minimum=1),
    # Brute-force limits (accounts.guard), in any window of that length: password checks
    # per client address, wrong passwords per normalized username and address, wrong
    # passwords per username from every address, signups per address; and the RFC
    # endpoints' rates per resource server (or address).
    "THROTTLE_RATES": {
        "login": env.rate("THROTTLE_LOGIN_RATE", "60/minute"),
        "login_failure": env.rate("THROTTLE_LOGIN_FAILURE_RATE", "5/minute"),
        "username_failure": env.rate("THROTTLE_USERNAME_FAILURE_RATE", "30/hour"),
        "signup": env.rate("THROTTLE_SIGNUP_RATE", "20/hour"),
        "introspection": env.rate("THROTTLE_INTROSPECTION_RATE", "1200/minute"),
        "revocation": env.rate("THROTTLE_REVOCATION_RATE", "120/minute"),
    },
    # The cookie mode's refresh cookie only over HTTPS (and `__Host-`); off with DEBUG so
    # `make run` works on http://localhost:8000.
    "REFRESH_COOKIE_SECURE": env.boolean("REFRESH_COOKIE_SECURE", not DEBUG),
    # The brute-force counts are shared through Redis when it is set, and authentication
    # reads ended sessions there instead of querying the database (accounts.revocations).
    "REDIS_URL": REDIS_URL or None,
    "REVOCATION_LIST_SECONDS": env.number("REVOCATION_LIST_SECONDS", 2, minimum=0),
    "REVOCATION_FEED": env.boolean("REVOCATION_FEED", True),
    "SIGNING_ALGORITHM": JWT_ALGORITHM,
    "ISSUER": JWT_ISSUER,
    "AUDIENCE": env.text("JWT_AUDIENCE") or None,
    "KEY_ENCRYPTION_KEY": JWT_KEY_ENCRYPTION_KEY or None,
    "KEY_ENCRYPTION_KEY_FALLBACKS": env.items("JWT_KEY_ENCRYPTION_KEY_FALLBACKS"),
    "JWKS_MAX_AGE": env.integer("JWKS_MAX_AGE", 300),
    # Session events (docs/other-services.md): a heartbeat to every receiver this often,
    # each push waits this long for an answer, and a failing one is retried this long.
    "HEARTBEAT_SECONDS": env.integer("EVENTS_HEARTBEAT_SECONDS", 10, minimum=1),
    "PUSH_TIMEOUT_SECONDS": env.integer("EVENTS_PUSH_TIMEOUT_SECONDS", 5, minimum=1),
    "PUSH_RETRY_HOURS": env.integer("EVENTS_RETRY_HOURS", 24, minimum=1),
    "PUSH_MAX_BACKOFF_SECONDS": env.integer("EVENTS_MAX_BACKOFF_SECONDS", 600, minimum=1),
    "PUSHED_EVENT_RETENTION_DAYS": env.integer("EVENTS_RETENTION_DAYS", 7, minimum=1),
    # Seconds a process trusts the key ring it read: a rotation reaches every server
    # within it. Each reread is one query.
    "KEY_RING_SECONDS": env.integer("KEY_RING_SECONDS", 10, minimum=1),
}

# Celery sends the session events (accounts.push, project/celery.py): through Redis when
# REDIS_URL is set, else through folders on disk (development).
EVENTS_DIR = BASE_DIR / ".celery"
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost/"
if not REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(EVENTS_DIR / "queue"),
        "data_folder_out": str(EVENTS_DIR / "queue"),
        "control_folder": str(EVENTS_DIR / "control"),
        "polling_interval": 0.1,
    }
    (EVENTS_DIR / "queue").mkdir(parents=True, exist_ok=True)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(EVENTS_DIR / "beat-schedule")
CELERY_BEAT_SCHEDULE = {
    # Polls the outbox: the revoking request only writes rows, and a lost message is found
    # again on the next beat. Its interval bounds how soon a receiver hears of a logout.
    "dispatch": {
        "task": "accounts.tasks.dispatch",
        "schedule": env.number("EVENTS_DISPATCH_SECONDS", 0.25),
        # Without a worker, beats must not pile up in the broker (a Redis that never evicts).
        "options": {"expires": 5},
    },
    "heartbeat": {
        "task": "accounts.tasks.heartbeat",
        "schedule": ACCOUNTS["HEARTBEAT_SECONDS"],
        "options": {"expires": ACCOUNTS["HEARTBEAT_SECONDS"]},
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Todo API with sign-in sessions",
    "DESCRIPTION": "JWT access and refresh tokens whose sessions really end at logout.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and docs are public and read no token: a stale one must not break them.
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

LOG_LEVEL = env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        # Defence in depth: no code logs a token, and any JWT that slips in is blanked.
        "redact_tokens": {"()": "accounts.security_log.RedactTokens"},
    },
    "formatters": {
        "json": {"()": "accounts.security_log.JSONFormatter"},
    },
    "handlers": {
        "null": {"class": "logging.NullHandler"},
        "console": {"class": "logging.StreamHandler", "filters": ["redact_tokens"]},
        "security": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["redact_tokens"],
        },
    },
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL},
        # One JSON object per line: login, refresh, logout, revocation, password change.
        "security": {"handlers": ["security"], "level": "INFO", "propagate": False},
        # A disallowed Host gets a JSON 400; a scanner's bad Host is no error worth a
        # traceback (Django's own advice).
        "django.security.DisallowedHost": {"handlers": ["null"], "propagate": False},
    },
}

env.check(
    "Set these environment variables (see docs/configuration.md)"
    + ("." if DEBUG else ", or set DEBUG=1 for local development.")
)
