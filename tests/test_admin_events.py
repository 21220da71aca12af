"""The security record in the admin: read-only, filterable, searchable, linked, bounded."""

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client as BrowserClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import events
from accounts.clients import Client
from accounts.models import EventKind, SecurityEvent, Session
from accounts.services import open_session

EVENTS = reverse("admin:accounts_securityevent_changelist")


@pytest.fixture
def record(user, other_user):
    """Two users' sign-ins, a failure and a revocation."""
    mine, _ = open_session(user=user, client=Client("198.51.100.1", "okhttp/4.12.0"))
    events.record(EventKind.LOGIN, user=user, sid=mine.pk, client=Client("198.51.100.1"))
    events.record(EventKind.LOGIN_FAILED, user=user, client=Client("203.0.113.9"), door="api_login")
    events.record(EventKind.LOGIN, user=other_user, client=Client("192.0.2.1"))
    return mine


def listed(response) -> list[SecurityEvent]:
    return list(response.context["cl"].result_list)


def test_list_is_newest_first_with_who_what_where(admin_client, record, user):
    response = admin_client.get(EVENTS)
    events = listed(response)
    # Last, the first of all: the operator's own sign-in to the admin.
    assert [(e.kind, e.username) for e in events] == [
        ("login", "bob"),
        ("login_failed", "alice"),
        ("login", "alice"),
        ("login", "admin"),
    ]
    page = response.content.decode()
    assert "Wrong password" in page and "Signed in" in page
    assert "api login" in page and "203.0.113.9" in page
    assert reverse("admin:auth_user_change", args=[user.pk]) in page


def test_filter_by_kind(admin_client, record):
    events = listed(admin_client.get(EVENTS, {"kind__exact": "login_failed"}))
    assert [e.kind for e in events] == ["login_failed"]


@pytest.mark.parametrize(
    ("term", "expected"), [("alice", 2), ("203.0.113.9", 1), ("bob", 1), ("nobody", 0)]
)
def test_exact_search_by_username_or_address(admin_client, record, term, expected):
    assert len(listed(admin_client.get(EVENTS, {"q": term}))) == expected


def test_search_by_session_id(admin_client, record):
    events = listed(admin_client.get(EVENTS, {"q": str(record.pk)}))
    assert [e.kind for e in events] == ["login"]


def test_a_users_page_links_to_their_events(admin_client, record, user):
    page = admin_client.get(reverse("admin:auth_user_change", args=[user.pk])).content.decode()
    link = f"{EVENTS}?user__id__exact={user.pk}"
    assert link in page
    events = listed(admin_client.get(link))
    assert {e.user_id for e in events} == {user.pk} and len(events) == 2


def test_a_sessions_page_links_to_its_events(admin_client, record):
    url = reverse("admin:accounts_session_change", args=[record.pk])
    link = f"{EVENTS}?session_id={record.pk}"
    assert link in admin_client.get(url).content.decode()
    assert [e.kind for e in listed(admin_client.get(link))] == ["login"]


def test_nobody_adds_changes_or_deletes_an_event(admin_client, record):
    event = SecurityEvent.objects.first()
    change = reverse("admin:accounts_securityevent_change", args=[event.pk])
    assert admin_client.get(reverse("admin:accounts_securityevent_add")).status_code == 403
    assert admin_client.post(change, {"kind": "login", "reason": "x"}).status_code == 403
    delete = reverse("admin:accounts_securityevent_delete", args=[event.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    response = admin_client.get(EVENTS)
    assert "action-checkbox" not in response.content.decode()
    assert SecurityEvent.objects.filter(pk=event.pk, reason="").exists()
    # Its page shows it, read-only.
    page = admin_client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert not page.context["adminform"].form.fields  # every field read-only


def test_staff_need_the_view_permission(make_user, record):
    staff = make_user("helpdesk", is_staff=True)
    browser = BrowserClient()
    browser.force_login(staff)
    assert browser.get(EVENTS).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_securityevent"))
    assert browser.get(EVENTS).status_code == 200


@pytest.mark.parametrize("rows", [1, 40])
def test_changelist_query_count_is_fixed(admin_client, user, rows):
    for n in range(rows):
        events.record(EventKind.LOGIN_FAILED, user=user, client=Client(f"10.0.0.{n % 250}"))
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(EVENTS).status_code == 200
    # Django session and user of the admin, its sign-in's session, the count, the page
    # (with its actors).
    assert len(queries) == 5, [q["sql"][:80] for q in queries]


def test_deleted_sessions_leave_their_events(admin_client, record):
    Session.objects.filter(pk=record.pk).delete()
    assert listed(admin_client.get(EVENTS, {"q": str(record.pk)}))
