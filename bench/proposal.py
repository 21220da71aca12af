"""A bench-only prototype of the fix the bench proposes for SessionJWTAuthentication's cost.

Profiling `GET /todos` shows our authentication spending its extra time compiling the
`select_related("user")` query (23 columns, a join) on every request, not in PostgreSQL.
This prototype builds that same SQL once from the models' `_meta` and runs it with the
session id, so the bench can show, in the same run, what the change would buy.
"""

from uuid import UUID

from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework_simplejwt import settings as simplejwt

from accounts.authentication import SessionJWTAuthentication
from accounts.exceptions import AccessTokenExpired, InvalidAccessToken, SessionRevoked
from accounts.models import Session
from accounts.tokens import SESSION_CLAIM

_query: tuple[str, list[str], list[str]] | None = None


def session_user_query() -> tuple[str, list[str], list[str]]:
    """The session+user SQL and the attnames of each model's columns, built once."""
    global _query
    if _query is None:
        User = get_user_model()
        quote = connection.ops.quote_name
        session_fields = Session._meta.concrete_fields
        user_fields = User._meta.concrete_fields
        columns = [f"s.{quote(f.column)}" for f in session_fields]
        columns += [f"u.{quote(f.column)}" for f in user_fields]
        sql = (
            f"SELECT {', '.join(columns)} FROM {quote(Session._meta.db_table)} s "
            f"JOIN {quote(User._meta.db_table)} u "
            f"ON u.{quote(User._meta.pk.column)} = s.{quote(Session.user.field.column)} "
            f"WHERE s.{quote(Session._meta.pk.column)} = %s"
        )
        _query = (sql, [f.attname for f in session_fields], [f.attname for f in user_fields])
    return _query


def session_with_user(sid) -> Session:
    """The session and its user in one query, as `select_related("user").get(pk=sid)` does."""
    try:
        sid = UUID(str(sid))
    except (ValueError, TypeError):
        raise Session.DoesNotExist from None
    sql, session_names, user_names = session_user_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [sid])
        row = cursor.fetchone()
    if row is None:
        raise Session.DoesNotExist
    split = len(session_names)
    session = Session.from_db(connection.alias, session_names, row[:split])
    session.user = get_user_model().from_db(connection.alias, user_names, row[split:])
    return session


class CachedQuerySessionJWTAuthentication(SessionJWTAuthentication):
    """SessionJWTAuthentication whose get_session loads through session_with_user().

    The checks are SessionJWTAuthentication.get_session's, unchanged: the proposed change
    is its first statement only.
    """

    def get_session(self, token) -> Session:
        try:
            session = session_with_user(token[SESSION_CLAIM])
        except Session.DoesNotExist:
            raise InvalidAccessToken("Unknown session") from None
        if str(session.user_id) != str(token[simplejwt.api_settings.USER_ID_CLAIM]):
            raise InvalidAccessToken("Token does not match its session")
        if session.is_revoked():
            raise SessionRevoked()
        if session.is_expired():
            raise AccessTokenExpired()
        if not session.user.is_active:
            raise InvalidAccessToken("User is inactive")
        return session
