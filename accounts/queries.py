"""The per-request session + user lookup, compiled by the ORM once instead of every time."""

import uuid

from django.db import DEFAULT_DB_ALIAS, connections

from accounts.models import Session


class SessionWithUserQuery:
    """`Session.objects.select_related("user").get(pk=sid)` (optionally locked), SQL built once.

    Building this join's SQL cost more than running it: profiling GET /todos showed the
    compiler, not PostgreSQL, as the whole gap to stock SimpleJWT's user lookup. So the
    ORM compiles the query once per database; each request then runs that SQL with the
    session id and turns the row into objects the way a queryset does (the backend's
    converters, then Model.from_db).
    """

    def __init__(self, alias: str = DEFAULT_DB_ALIAS, *, for_update: bool = False) -> None:
        self.alias = alias
        placeholder = (
            Session.objects.using(alias).select_related("user").filter(pk=uuid.UUID(int=0))
        )
        if for_update:
            # Lock the session row only, not the joined user (FOR UPDATE OF the session).
            placeholder = placeholder.select_for_update(of=("self",))
        compiler = placeholder.query.get_compiler(alias)
        self.sql, params = compiler.as_sql()
        if len(params) != 1:  # pragma: no cover - a guard against a changed ORM
            raise RuntimeError("expected the session id as the query's only parameter")
        select, info = compiler.select, compiler.klass_info
        self.compiler = compiler
        self.converters = compiler.get_converters([column for column, _, _ in select])
        self.session_slice = slice(info["select_fields"][0], info["select_fields"][-1] + 1)
        user_info = info["related_klass_infos"][0]
        self.user_model = user_info["model"]
        self.user_slice = slice(user_info["select_fields"][0], user_info["select_fields"][-1] + 1)
        self.session_names = [s[0].target.attname for s in select[self.session_slice]]
        self.user_names = [s[0].target.attname for s in select[self.user_slice]]

    def get(self, sid) -> Session:
        """The session `sid` with its user cached on it; Session.DoesNotExist if none."""
        connection = connections[self.alias]
        # Raises ValidationError for anything that is not a UUID, as filter(pk=...) would.
        pk = Session._meta.pk.get_db_prep_value(sid, connection)
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [pk])
            row = cursor.fetchone()
        if row is None:
            raise Session.DoesNotExist
        (row,) = self.compiler.apply_converters([row], self.converters)
        session = Session.from_db(self.alias, self.session_names, row[self.session_slice])
        session.user = self.user_model.from_db(self.alias, self.user_names, row[self.user_slice])
        return session


_compiled: dict[tuple[str, bool], SessionWithUserQuery] = {}


def session_with_user(sid, alias: str = DEFAULT_DB_ALIAS, *, for_update: bool = False) -> Session:
    """Load a session and its user in one query, compiling the query on first use.

    With `for_update`, the session row stays locked until the caller's transaction ends.
    """
    key = (alias, for_update)
    query = _compiled.get(key)
    if query is None:
        query = _compiled[key] = SessionWithUserQuery(alias, for_update=for_update)
    return query.get(sid)
