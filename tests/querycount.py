"""One query counter for the tests and the bench: statements, writes, and transactions."""

from dataclasses import dataclass, field

# Transaction control never counts as a query: psycopg sends BEGIN itself, Django commits
# through the connection, and savepoints are Django's way to nest atomic blocks.
CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
WRITES = ("INSERT", "UPDATE", "DELETE")


@dataclass
class Statement:
    """One SQL statement as it ran."""

    sql: str
    in_transaction: bool

    @property
    def is_write(self) -> bool:
        return self.sql.lstrip().upper().startswith(WRITES)


@dataclass
class QueryCounter:
    """Counts what one connection runs while the `with` block lasts.

    Statements pass Django's execute wrapper; a transaction is counted when the
    connection commits or rolls back, which is how an outermost atomic block ends.
    """

    connection: object
    statements: list[Statement] = field(default_factory=list)
    commits: int = 0
    rollbacks: int = 0

    def __call__(self, execute, sql, params, many, context):
        if not sql.lstrip().upper().startswith(CONTROL):
            self.statements.append(Statement(sql, self.connection.in_atomic_block))
        return execute(sql, params, many, context)

    def __enter__(self):
        for name in ("commit", "rollback"):
            original = getattr(self.connection, name)

            def counted(original=original, name=name):
                setattr(self, f"{name}s", getattr(self, f"{name}s") + 1)
                return original()

            setattr(self.connection, name, counted)
        self._wrapping = self.connection.execute_wrapper(self)
        self._wrapping.__enter__()
        return self

    def __exit__(self, *exc):
        self._wrapping.__exit__(*exc)
        for name in ("commit", "rollback"):
            delattr(self.connection, name)

    @property
    def queries(self) -> int:
        return len(self.statements)

    @property
    def writes(self) -> int:
        return sum(statement.is_write for statement in self.statements)

    @property
    def autocommit(self) -> int:
        """Statements that ran outside any transaction, each committed on its own."""
        return sum(not statement.in_transaction for statement in self.statements)

    @property
    def transactions(self) -> int:
        return self.commits + self.rollbacks

    def summary(self) -> dict:
        """The counts as plain data, for reports."""
        return {
            "queries": self.queries,
            "writes": self.writes,
            "transactions": self.transactions,
            "autocommit": self.autocommit,
            "statements": [statement.sql[:100] for statement in self.statements],
        }
