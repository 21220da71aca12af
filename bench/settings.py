"""Bench-only settings: the production settings, the bench app (seeder), and the compared routes."""

import os

# The bench logs in and refreshes far faster than any person; the throttles aren't measured.
os.environ.setdefault("THROTTLE_LOGIN_RATE", "1000000/minute")
os.environ.setdefault("THROTTLE_LOGIN_FAILURE_RATE", "1000000/minute")

from project.settings import *  # noqa: F403

# Only here, never in project.settings: seed_sessions drops keys and bulk-loads.
INSTALLED_APPS = [*INSTALLED_APPS, "bench"]  # noqa: F405

ROOT_URLCONF = "bench.urls"

# The stock side's TokenRefreshView rotates and blacklists as SimpleJWT documents it;
# the product's own routes do not read these.
SIMPLE_JWT = {
    **SIMPLE_JWT,  # noqa: F405
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
}
# With a public-key algorithm, stock SimpleJWT and the floor (bench/floor.py) sign and
# verify with the key pair the run imported into the key ring (bench.config.Run), and
# check `iss` as ours does: every side pays for the same algorithm and key. With HS*
# (or outside a bench run) they keep the product's secret, SIMPLE_JWT's SIGNING_KEY.
if not JWT_ALGORITHM.startswith("HS") and os.environ.get("BENCH_SIGNING_KEY"):  # noqa: F405
    SIMPLE_JWT.update(
        ALGORITHM=JWT_ALGORITHM,  # noqa: F405
        SIGNING_KEY=os.environ["BENCH_SIGNING_KEY"],
        VERIFYING_KEY=os.environ["BENCH_VERIFYING_KEY"],
        ISSUER=JWT_ISSUER,  # noqa: F405
    )

# Plain HTTP on 127.0.0.1: no redirect to HTTPS.
SECURE_SSL_REDIRECT = False

# The admin pages render in-process without collectstatic.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
