"""The bench's own databases on the PostgreSQL server of DATABASE_URL, and Django runs on them."""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
ROOT = Path(__file__).resolve().parent.parent
# Only databases with this prefix are ever created or dropped.
PREFIX = "bench"


def database_url(name: str) -> str:
    """The URL of database `name` on the server of DATABASE_URL (its own database stays)."""
    parts = urlsplit(os.environ.get("DATABASE_URL") or DEFAULT_SERVER)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin_connection() -> psycopg.Connection:
    """An autocommit connection to the server's maintenance database."""
    return psycopg.connect(database_url("postgres"), autocommit=True)


def recreate(name: str, template: str | None = None) -> None:
    """Drop and create one bench database, optionally as a copy of another (idle) one."""
    assert name.startswith(PREFIX), name
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def drop(name: str) -> None:
    """Drop one bench database."""
    assert name.startswith(PREFIX), name
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def vacuum_analyze(name: str) -> None:
    """Settle a freshly loaded database, so autovacuum doesn't start in the middle of a measure."""
    with psycopg.connect(database_url(name), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def backend_pids(name: str) -> list[int]:
    """The PostgreSQL server processes serving database `name` right now."""
    with _admin_connection() as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchall()
    return [pid for (pid,) in rows]


def server_version() -> str:
    """PostgreSQL's version string."""
    with _admin_connection() as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def django_env(base: dict, name: str) -> dict:
    """Environment of a Django process on database `name` with the bench settings."""
    return {**base, "DATABASE_URL": database_url(name), "DJANGO_SETTINGS_MODULE": "bench.settings"}


def _python(env: dict, name: str, *args: str, log=None, timeout: int = 900) -> str:
    """Run this Python with `args` on database `name` and the bench settings; its output."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=django_env(env, name),
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        check=True,
        timeout=timeout,
    ).stdout


def manage(env: dict, name: str, *args: str, log=None) -> str:
    """Run a manage.py command on database `name`; returns its output."""
    return _python(env, name, "manage.py", *args, log=log)


def django_step(env: dict, name: str, module: str, step: str, log=None, **kwargs):
    """Run `python -m <module> <step> <json kwargs>` on database `name`; its JSON answer."""
    output = _python(env, name, "-m", module, step, json.dumps(kwargs), log=log)
    return json.loads(output.strip().splitlines()[-1])
