"""Settings from the environment: unsafe starts refused, deploy check clean, variables mapped."""

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.models import Session
from project.env import Env
from tests.conftest import PASSWORD

BASE_DIR = Path(__file__).resolve().parent.parent
GOOD_SECRETS = {
    "SECRET_KEY": "django-secret-" + "0123456789abcdef" * 4,
    "JWT_KEY_ENCRYPTION_KEY": "key-encryption-key-" + "0f1e2d3c4b5a6978" * 4,
    "JWT_ISSUER": "https://api.example.com",
    "ALLOWED_HOSTS": "api.example.com",
}
HMAC_SECRETS = {**GOOD_SECRETS, "JWT_ALGORITHM": "HS256", "JWT_SIGNING_KEY": "jwt-" + "fe" * 30}
TIMEOUT = 60


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """Run a command with only the given variables set (plus PATH), as a fresh shell would."""
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "project.settings", **env}
    return subprocess.run(
        args, cwd=BASE_DIR, env=clean, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "manage.py", *args], **env)


def test_debug_off_without_secrets_refuses_to_start_naming_each():
    result = manage("check", DEBUG="0")
    assert result.returncode != 0
    assert "ImproperlyConfigured: Refusing to start" in result.stderr
    for name in (
        "SECRET_KEY is not set",
        "JWT_KEY_ENCRYPTION_KEY is not set",
        "JWT_ISSUER is not set",
        "ALLOWED_HOSTS is not set",
    ):
        assert name in result.stderr
    hmac = manage("check", DEBUG="0", JWT_ALGORITHM="HS256")
    assert "JWT_SIGNING_KEY is not set" in hmac.stderr


def test_gunicorn_without_secrets_fails_fast():
    result = run(
        [sys.executable, "-m", "gunicorn", "project.wsgi", "--bind", "127.0.0.1:0"], DEBUG="0"
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_unsafe_and_malformed_values_all_named_at_once():
    result = manage(
        "check",
        DEBUG="0",
        SECRET_KEY="dev-only-insecure-secret-key-do-not-use-in-production",
        JWT_ALGORITHM="HS256",
        JWT_SIGNING_KEY="too-short",
        ALLOWED_HOSTS="api.example.com",
        THROTTLE_LOGIN_RATE="fast",
        ACCESS_TOKEN_LIFETIME="0",
        NUM_PROXIES="-1",
        KEY_RING_SECONDS="0",
        TODO_TITLE_MAX_LENGTH="201",
        THROTTLE_TODO_WRITE_RATE="lots",
        SECURE_HSTS_PRELOAD="maybe",
        LOG_LEVEL="loud",
    )
    assert result.returncode != 0
    for problem in (
        "SECRET_KEY is the public development default",
        "JWT_SIGNING_KEY is too weak",
        "THROTTLE_LOGIN_RATE must look like 5/minute",
        "ACCESS_TOKEN_LIFETIME must be a whole number >= 1 (got '0')",
        "NUM_PROXIES must be a whole number >= 0 (got '-1')",
        # A reread per request would cost a query each.
        "KEY_RING_SECONDS must be a whole number >= 1 (got '0')",
        # The title column holds 200 characters.
        "TODO_TITLE_MAX_LENGTH must be a whole number from 1 to 200 (got '201')",
        "THROTTLE_TODO_WRITE_RATE must look like 5/minute",
        "SECURE_HSTS_PRELOAD must be one of 1/0",
        "LOG_LEVEL must be one of DEBUG, INFO",
    ):
        assert problem in result.stderr


def test_same_key_for_django_and_jwt_refused():
    env = {**HMAC_SECRETS, "JWT_SIGNING_KEY": GOOD_SECRETS["SECRET_KEY"]}
    result = manage("check", DEBUG="0", **env)
    assert "JWT_SIGNING_KEY must differ from SECRET_KEY" in result.stderr


def test_same_key_for_django_and_the_private_keys_refused():
    env = {**GOOD_SECRETS, "JWT_KEY_ENCRYPTION_KEY": GOOD_SECRETS["SECRET_KEY"]}
    result = manage("check", DEBUG="0", **env)
    assert "JWT_KEY_ENCRYPTION_KEY must differ from SECRET_KEY" in result.stderr


def test_hmac_stays_a_configuration():
    result = manage("check", "--deploy", "--fail-level", "WARNING", DEBUG="0", **HMAC_SECRETS)
    assert result.returncode == 0, result.stderr


def test_deploy_check_clean_with_secrets_set():
    result = manage("check", "--deploy", "--fail-level", "WARNING", DEBUG="0", **GOOD_SECRETS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_environment_variables_reach_their_settings():
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({"
        "'access': s.SIMPLE_JWT['ACCESS_TOKEN_LIFETIME'].total_seconds(), "
        "'refresh': s.SIMPLE_JWT['REFRESH_TOKEN_LIFETIME'].total_seconds(), "
        "'absolute': s.ACCOUNTS.pop('SESSION_ABSOLUTE_LIFETIME').total_seconds(), "
        "'todo_write': s.TODO_WRITE_RATE, "
        "'proxies': s.REST_FRAMEWORK['NUM_PROXIES'], "
        "'hosts': s.ALLOWED_HOSTS, 'origins': s.CSRF_TRUSTED_ORIGINS, "
        "'engine': s.DATABASES['default']['ENGINE'], "
        "'db_options': s.DATABASES['default']['OPTIONS'], "
        "'conn_max_age': s.DATABASES['default']['CONN_MAX_AGE'], "
        "'health_checks': s.DATABASES['default']['CONN_HEALTH_CHECKS'], "
        "'cache': s.CACHES['default']['BACKEND'], "
        "'proxy_ssl': s.SECURE_PROXY_SSL_HEADER, 'hsts': s.SECURE_HSTS_SECONDS, "
        "'upload': s.DATA_UPLOAD_MAX_MEMORY_SIZE, "
        "'accounts': s.ACCOUNTS, "
        "'dispatch': s.CELERY_BEAT_SCHEDULE['dispatch']['schedule'], "
        "'heartbeat': s.CELERY_BEAT_SCHEDULE['heartbeat']['schedule'], "
        "'broker': s.CELERY_BROKER_URL, "
        "'todo_limits': [s.TODO_LIMIT_PER_USER, s.TODO_TITLE_MAX_LENGTH, "
        "s.TODO_DESCRIPTION_MAX_LENGTH], "
        "}))"
    )
    result = run(
        [sys.executable, "-c", code],
        DEBUG="0",
        **GOOD_SECRETS,
        CSRF_TRUSTED_ORIGINS="https://api.example.com, https://admin.example.com",
        DATABASE_URL="postgres://app:pw@db.internal:5432/todos",
        DATABASE_CONNECT_TIMEOUT="3",
        CONN_MAX_AGE="120",
        REDIS_URL="redis://cache.internal:6379/0",
        ACCESS_TOKEN_LIFETIME="300",
        REFRESH_TOKEN_LIFETIME="3600",
        SESSION_ABSOLUTE_LIFETIME="86400",
        REFRESH_REUSE_GRACE_SECONDS="10",
        THROTTLE_LOGIN_RATE="100/hour",
        THROTTLE_LOGIN_FAILURE_RATE="3/minute",
        THROTTLE_USERNAME_FAILURE_RATE="40/day",
        THROTTLE_SIGNUP_RATE="7/day",
        THROTTLE_INTROSPECTION_RATE="600/minute",
        THROTTLE_REVOCATION_RATE="60/minute",
        THROTTLE_TODO_WRITE_RATE="30/minute",
        SESSION_LIMIT_PER_USER="5",
        SECURITY_EVENT_RETENTION_DAYS="30",
        REFRESH_COOKIE_SECURE="0",
        TODO_LIMIT_PER_USER="50",
        TODO_TITLE_MAX_LENGTH="80",
        TODO_DESCRIPTION_MAX_LENGTH="500",
        NUM_PROXIES="1",
        SECURE_PROXY_SSL_HEADER="1",
        SECURE_HSTS_SECONDS="3600",
        API_MAX_BODY_BYTES="2048",
        JWT_AUDIENCE="todo-api",
        JWT_KEY_ENCRYPTION_KEY_FALLBACKS="old-key-encryption-key-" + "9" * 40,
        JWKS_MAX_AGE="600",
        EVENTS_DISPATCH_SECONDS="0.5",
        REVOCATION_LIST_SECONDS="1.5",
        REVOCATION_FEED="0",
        EVENTS_HEARTBEAT_SECONDS="30",
        EVENTS_PUSH_TIMEOUT_SECONDS="3",
        EVENTS_RETRY_HOURS="48",
        EVENTS_MAX_BACKOFF_SECONDS="60",
        EVENTS_RETENTION_DAYS="14",
        KEY_RING_SECONDS="30",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "access": 300,
        "refresh": 3600,
        "absolute": 86400,
        "todo_write": "30/minute",
        "proxies": 1,
        "hosts": ["api.example.com"],
        "origins": ["https://api.example.com", "https://admin.example.com"],
        "engine": "django.db.backends.postgresql",
        "db_options": {"connect_timeout": 3},
        "conn_max_age": 120,
        "health_checks": True,
        "cache": "django.core.cache.backends.redis.RedisCache",
        "proxy_ssl": ["HTTP_X_FORWARDED_PROTO", "https"],
        "hsts": 3600,
        "upload": 2048,
        "accounts": {
            "REFRESH_REUSE_GRACE_SECONDS": 10,
            "SESSION_LIMIT_PER_USER": 5,
            "SECURITY_EVENT_RETENTION_DAYS": 30,
            "THROTTLE_RATES": {
                "login": "100/hour",
                "login_failure": "3/minute",
                "username_failure": "40/day",
                "signup": "7/day",
                "introspection": "600/minute",
                "revocation": "60/minute",
            },
            "REFRESH_COOKIE_SECURE": False,
            "REDIS_URL": "redis://cache.internal:6379/0",
            "REVOCATION_LIST_SECONDS": 1.5,
            "REVOCATION_FEED": False,
            "SIGNING_ALGORITHM": "RS256",
            "ISSUER": "https://api.example.com",
            "AUDIENCE": "todo-api",
            "KEY_ENCRYPTION_KEY": GOOD_SECRETS["JWT_KEY_ENCRYPTION_KEY"],
            "KEY_ENCRYPTION_KEY_FALLBACKS": ["old-key-encryption-key-" + "9" * 40],
            "JWKS_MAX_AGE": 600,
            "HEARTBEAT_SECONDS": 30,
            "PUSH_TIMEOUT_SECONDS": 3,
            "PUSH_RETRY_HOURS": 48,
            "PUSH_MAX_BACKOFF_SECONDS": 60,
            "PUSHED_EVENT_RETENTION_DAYS": 14,
            "KEY_RING_SECONDS": 30,
        },
        "dispatch": 0.5,
        "heartbeat": 30,
        "broker": "redis://cache.internal:6379/0",
        "todo_limits": [50, 80, 500],
    }


def test_every_variable_read_is_documented():
    source = (BASE_DIR / "project" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', source))
    table = (BASE_DIR / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.MULTILINE))
    assert len(read) >= 25
    assert read == documented


@pytest.mark.parametrize(("num_proxies", "seen_ip"), [(0, "127.0.0.1"), (1, "203.0.113.7")])
def test_num_proxies_decides_whether_x_forwarded_for_counts(
    api_client, user, settings, num_proxies, seen_ip
):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": num_proxies}
    response = api_client.post(
        "/auth/login",
        {"username": user.username, "password": PASSWORD},
        format="json",
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.7",
    )
    assert response.status_code == 200
    assert Session.objects.get().ip_address == seen_ip


def test_x_forwarded_for_does_not_dodge_login_throttle_by_default(api_client, user, settings):
    settings.ACCOUNTS = {
        **settings.ACCOUNTS,
        "THROTTLE_RATES": {**settings.ACCOUNTS["THROTTLE_RATES"], "login": "3/minute"},
    }
    statuses = [
        api_client.post(
            "/auth/login",
            {"username": user.username, "password": "wrong"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        ).status_code
        for n in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


def test_gunicorn_serves_collected_static_files_with_debug_off(tmp_path):
    env = {
        **GOOD_SECRETS,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_ROOT": str(tmp_path / "static"),
        "SECURE_PROXY_SSL_HEADER": "1",
    }
    assert manage("collectstatic", "--noinput", **env).returncode == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "project.settings", **env}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "project.wsgi", "--bind", f"127.0.0.1:{port}"],
        cwd=BASE_DIR,
        env=clean,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # As behind the TLS proxy: otherwise every plain-HTTP request is redirected to HTTPS.
        status, html = get_when_up(port, "/api/docs/", TIMEOUT)
        assert status == 200
        assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
        assert len(assets) >= 3
        status, html = get_when_up(port, "/", 5)  # the web client, with hashed file names
        assert status == 200
        web = re.findall(r'(?:src|href)="(/static/todos/[^"]+)"', html)
        assert len(web) == 3 and all(re.search(r"\.[0-9a-f]{12}\.", path) for path in web)
        for path in ["/static/admin/css/base.css", *assets, *web]:
            assert get_when_up(port, path, 5)[0] == 200, path
    finally:
        server.terminate()
        server.wait(10)


def get_when_up(port: int, path: str, timeout: float) -> tuple[int, str]:
    """GET path over HTTP "from the proxy", retrying until the server listens."""
    deadline = time.monotonic() + timeout
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", path, headers={"X-Forwarded-Proto": "https"})
            response = connection.getresponse()
            return response.status, response.read().decode(errors="replace")
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        finally:
            connection.close()


def test_title_limit_can_be_the_title_column_but_not_more():
    from todos.models import Todo

    column = Todo._meta.get_field("title").max_length
    env = {"DEBUG": "1", "TODO_TITLE_MAX_LENGTH": str(column)}
    assert manage("check", **env).returncode == 0
    refused = manage("check", **{**env, "TODO_TITLE_MAX_LENGTH": str(column + 1)})
    assert f"TODO_TITLE_MAX_LENGTH must be a whole number from 1 to {column}" in refused.stderr


def test_env_reads_typed_values_and_collects_every_problem():
    env = Env(
        {
            "FLAG": "Yes",
            "COUNT": "7",
            "HOSTS": " a.example , b.example,, ",
            "RATE": "10/hour",
            "BAD_FLAG": "maybe",
            "BAD_COUNT": "7.5",
            "BIG_COUNT": "11",
            "BAD_RATE": "0/minute",
            "SAME": "x" * 60,
        }
    )
    assert env.boolean("FLAG", False) is True
    assert env.boolean("UNSET", True) is True
    assert env.integer("COUNT", 1, minimum=1) == 7
    assert env.items("HOSTS") == ["a.example", "b.example"]
    assert env.rate("RATE", "5/minute") == "10/hour"
    assert env.boolean("BAD_FLAG", False) is False
    assert env.integer("BAD_COUNT", 3) == 3
    assert env.integer("COUNT", 1, maximum=7) == 7
    assert env.integer("BIG_COUNT", 4, maximum=10) == 4
    assert env.rate("BAD_RATE", "5/minute") == "5/minute"
    assert env.secret("SAME", "dev", required=True) == "x" * 60
    assert env.secret("UNSET", "dev", required=False) == "dev"
    assert len(env.problems) == 5
    with pytest.raises(ImproperlyConfigured) as refused:
        env.check("hint")
    message = str(refused.value)
    for name in (
        "BAD_FLAG",
        "BAD_COUNT",
        "BIG_COUNT must be a whole number from 0 to 10 (got '11')",
        "BAD_RATE",
        "SAME is too weak",
    ):
        assert name in message
    assert message.endswith("\nhint")
