"""The compiled session + user lookup returns exactly what the ORM's queryset does."""

import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Model

from accounts.clients import Client
from accounts.models import Session
from accounts.queries import session_with_user
from accounts.services import session_create, session_refresh


def field_values(instance: Model) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_compiled_lookup_equals_select_related_get(user, django_assert_num_queries):
    session, pair = session_create(user=user, client=Client("203.0.113.9", "Phone/1.0"))
    session_refresh(refresh_token=pair.refresh)
    expected = Session.objects.select_related("user").get(pk=session.pk)

    with django_assert_num_queries(1):
        loaded = session_with_user(str(session.pk))
        assert loaded.user.username == user.username  # cached: no second query

    assert field_values(loaded) == field_values(expected)
    assert field_values(loaded.user) == field_values(expected.user)
    assert isinstance(loaded.pk, uuid.UUID)
    assert loaded.expires_at.tzinfo is not None
    assert loaded._state.adding is False and loaded._state.db == "default"


def test_compiled_lookup_unknown_session_does_not_exist(db):
    with pytest.raises(Session.DoesNotExist):
        session_with_user(str(uuid.uuid4()))


@pytest.mark.parametrize("sid", ["not-a-uuid", "", "1234"])
def test_compiled_lookup_rejects_non_uuid(db, sid):
    with pytest.raises(ValidationError):
        session_with_user(sid)


def test_compiled_locking_lookup_locks_only_the_session_row(user):
    from django.db import connection, transaction

    from accounts.queries import SessionWithUserQuery

    session, _ = session_create(user=user, client=Client(None, ""))
    query = SessionWithUserQuery(for_update=True)
    if connection.features.has_select_for_update:
        assert "FOR UPDATE OF" in query.sql
    with transaction.atomic():
        loaded = query.get(session.pk)
    assert field_values(loaded) == field_values(Session.objects.get(pk=session.pk))
