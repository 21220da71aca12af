"""The session model: the per-request lookup, and its lifecycle state."""

import uuid

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.clients import Client
from accounts.models import Session
from accounts.refresh import refresh_session
from accounts.services import open_session

LOADED = ("id", "user_id", "expires_at", "revoked_at")


class RecordingRouter:
    """Sends reads to "default" and remembers which models asked."""

    asked: list = []

    def db_for_read(self, model, **hints):
        self.asked.append(model)
        return "default"


@pytest.fixture
def session(user):
    session, pair = open_session(user=user, client=Client("203.0.113.9", "Phone/1.0"))
    refresh_session(refresh_token=pair.refresh)
    return session


def test_get_with_user_equals_select_related_in_one_query(session, django_assert_num_queries):
    expected = Session.objects.select_related("user").get(pk=session.pk)

    with django_assert_num_queries(1):
        loaded = Session.objects.get_with_user(str(session.pk))
        assert loaded.user.username == expected.user.username  # cached: no second query
        assert loaded.user.is_active is True

    assert {f: getattr(loaded, f) for f in LOADED} == {f: getattr(expected, f) for f in LOADED}
    assert loaded.user.pk == expected.user.pk
    assert isinstance(loaded.pk, uuid.UUID) and loaded.expires_at.tzinfo is not None


def test_get_with_user_loads_every_other_field_on_first_use(session):
    expected = Session.objects.select_related("user").get(pk=session.pk)
    loaded = Session.objects.get_with_user(session.pk)
    for field in Session._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname)
    for field in type(expected.user)._meta.concrete_fields:
        assert getattr(loaded.user, field.attname) == getattr(expected.user, field.attname)


def test_get_with_user_sees_revocation_and_deactivation(session, user):
    Session.objects.filter(pk=session.pk).update(revoked_at=timezone.now(), revoked_reason="logout")
    user.is_active = False
    user.save()
    loaded = Session.objects.get_with_user(session.pk)
    assert loaded.is_revoked() and loaded.user.is_active is False


def test_get_with_user_unknown_session_does_not_exist(db):
    with pytest.raises(Session.DoesNotExist):
        Session.objects.get_with_user(str(uuid.uuid4()))


@pytest.mark.parametrize("sid", ["not-a-uuid", "", "1234", "'; DROP TABLE x; --"])
def test_get_with_user_refuses_what_no_session_id_can_be(db, sid):
    with pytest.raises(ValidationError):
        Session.objects.get_with_user(sid)


def test_get_with_user_asks_the_database_router(session, settings):
    settings.DATABASE_ROUTERS = [f"{__name__}.RecordingRouter"]
    RecordingRouter.asked.clear()
    Session.objects.get_with_user(session.pk)
    assert Session in RecordingRouter.asked
