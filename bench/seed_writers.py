"""How seeded rows reach the database: COPY on PostgreSQL, batched bulk_create elsewhere."""

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.db import connection, models
from psycopg.types.json import Jsonb
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import SecurityEvent, Session, SessionToken


class Writer:
    """Writes the rows of one model at a time; subclasses choose how."""

    @contextmanager
    def loading(self) -> Iterator[None]:
        """Wraps the whole load, inside its transaction."""
        yield

    def reserve_ids(self, model, count: int) -> list[int]:
        """`count` fresh primary keys for `model`."""
        raise NotImplementedError

    def write(self, model, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        """Insert `rows`, tuples of the `columns` attnames."""
        raise NotImplementedError

    def write_dicts(self, model, rows: Iterable[dict]) -> None:
        """Insert dicts keyed by attname; fields a dict leaves out take their default."""
        defaults = {f.attname: f.get_default() for f in model._meta.concrete_fields}

        def values(row: dict) -> tuple:
            unknown = row.keys() - defaults.keys()
            if unknown:
                raise ValueError(f"{model.__name__} has no field {', '.join(sorted(unknown))}")
            return tuple(row.get(name, default) for name, default in defaults.items())

        self.write(model, list(defaults), (values(row) for row in rows))


class CopyWriter(Writer):
    """PostgreSQL: COPY into locked tables whose indexes and keys are rebuilt once."""

    MODELS = (OutstandingToken, Session, SessionToken, BlacklistedToken, SecurityEvent)
    # Foreign keys, unique constraints and plain indexes; primary keys stay.
    DEFINITIONS = """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype = 'f'
        FROM pg_constraint WHERE contype IN ('f', 'u') AND conrelid::regclass::text = ANY(%s)
        UNION ALL
        SELECT indrelid::regclass::text, indexrelid::regclass::text,
               pg_get_indexdef(indexrelid), false
        FROM pg_index WHERE indrelid::regclass::text = ANY(%s) AND NOT indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = indexrelid)
    """

    @contextmanager
    def loading(self) -> Iterator[None]:
        """Take the tables' indexes and keys off for the load, then rebuild and validate them.

        Checking foreign keys and updating a dozen indexes row by row costs several times
        the COPY itself; a sorted build and one validating pass per key at the end is
        PostgreSQL's own advice for bulk loads ("Populating a Database").
        """
        tables = [model._meta.db_table for model in self.MODELS]
        with connection.cursor() as cursor:
            # Checks deferred from earlier writes in this transaction would make ALTER
            # TABLE fail: run them now. The lock keeps other writers out while keys are off.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            cursor.execute(self.DEFINITIONS, [tables, tables])
            # Foreign keys go first and come back last.
            definitions = sorted(cursor.fetchall(), key=lambda row: not row[3])
            for table, name, definition, _ in definitions:
                cursor.execute(
                    f"DROP INDEX {name}"
                    if definition.startswith("CREATE")
                    else f"ALTER TABLE {table} DROP CONSTRAINT {name}"
                )
        yield
        with connection.cursor() as cursor:
            for table, name, definition, _ in reversed(definitions):
                cursor.execute(
                    definition
                    if definition.startswith("CREATE")
                    else f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"
                )
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            # Fresh statistics, so the planner sees the new volume at once.
            for table in [*tables, get_user_model()._meta.db_table]:
                cursor.execute(f"ANALYZE {table}")

    def reserve_ids(self, model, count: int) -> list[int]:
        """Ids from the table's own sequence, so they never collide with other inserts."""
        sequence = "pg_get_serial_sequence(%s, %s)"
        args = [model._meta.db_table, model._meta.pk.column]
        with connection.cursor() as cursor:
            if model in self.MODELS:
                # The table is locked, so nobody else draws from its sequence: take a block.
                cursor.execute(
                    f"SELECT setval({sequence}, nextval({sequence}) + %s - 1)",
                    [*args, *args, count],
                )
                last = cursor.fetchone()[0]
                return list(range(last - count + 1, last + 1))
            cursor.execute(
                f"SELECT nextval({sequence}) FROM generate_series(1, %s)",
                [*args, count],
            )
            return [row[0] for row in cursor.fetchall()]

    def write(self, model, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        quote = connection.ops.quote_name
        names = ", ".join(quote(model._meta.get_field(c).column) for c in columns)
        sql = f"COPY {quote(model._meta.db_table)} ({names}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                # COPY needs JSON columns as JSON; psycopg dumps a dict only when told so.
                copy.write_row([Jsonb(v) if isinstance(v, dict) else v for v in row])


class BulkWriter(Writer):
    """Other databases: ids past the current maximum, batched bulk_create."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size

    def reserve_ids(self, model, count: int) -> list[int]:
        """Ids above the current maximum; the transaction holds the write lock (SQLite)."""
        start = (model.objects.aggregate(top=models.Max("pk"))["top"] or 0) + 1
        return list(range(start, start + count))

    def write(self, model, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        objs = (model(**dict(zip(columns, row, strict=True))) for row in rows)
        model.objects.bulk_create(objs, batch_size=self.batch_size)
