"""Test settings: production-shaped settings with test secrets and fast hashing."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-secret-key-" + "s" * 40)
os.environ.setdefault("JWT_SIGNING_KEY", "test-jwt-signing-key-" + "j" * 40)
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("JWT_KEY_ENCRYPTION_KEY", "test-key-encryption-key-" + "k" * 40)
os.environ.setdefault("JWT_ISSUER", "http://testserver")
# Off unless a test turns it on (tests/test_revocation_feed.py, the two-server tests): a
# feed is a thread with connections of its own, which a test must stop.
os.environ.setdefault("REVOCATION_FEED", "0")

from project.settings import *

# Tests hash thousands of passwords; MD5 is fine for that and nothing else.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# No collectstatic in tests: serve the admin's static files unhashed from the finders.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file per test process (threads in race tests need real file locking), so
    # concurrent runs never create or drop each other's database.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"todo-api-test-{os.getpid()}.sqlite3")
    }
