"""Whether the database is ready to serve: every migration applied.

A fresh checkout served before `manage.py migrate` would answer every login with "retry
shortly" while /healthz said ok. Instead /healthz, and any request that meets a missing
table, answer 503 `migrations_pending`, naming the cause, in the log too.
"""

import logging
import threading

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

logger = logging.getLogger("django.request")

# Set once every migration is applied: from then on the check costs nothing. A deploy
# with new migrations restarts the processes, and so clears it.
_MIGRATED = threading.Event()


def pending_migrations() -> list[str]:
    """The migrations not yet applied to the default database, as `app.name`; [] once none."""
    if _MIGRATED.is_set():
        return []
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    pending = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
    if pending:
        logger.error(
            "The database is not migrated (%d migrations pending, first %s): run "
            "`manage.py migrate`",
            len(pending),
            pending[0],
        )
    else:
        _MIGRATED.set()
    return pending
