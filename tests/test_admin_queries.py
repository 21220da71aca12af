"""Admin pages cost a fixed number of queries however many rows they show."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.admin import paginators
from accounts.clients import Client
from accounts.models import Session
from accounts.refresh import refresh_session
from accounts.services import open_session

# pg_class and its row estimates exist on PostgreSQL only.
needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL: estimates come from pg_class"
)
SESSIONS = reverse("admin:accounts_session_changelist")

# Each page: the admin's Django session row, its user, its sign-in's accounts.Session
# (accounts.signins), then the page's own queries.
SIGNED_IN = 3
CHANGELISTS = {
    # the count, then one page of sessions joined to their users
    "sessions": (SESSIONS, SIGNED_IN + 2),
    "sessions searched": (SESSIONS + "?q=alice", SIGNED_IN + 2),
    "sessions filtered": (SESSIONS + "?status=active&revoked_reason__exact=", SIGNED_IN + 2),
    "sessions filtered by kind": (SESSIONS + "?kind__exact=admin", SIGNED_IN + 2),
    # the count, then one page of tokens joined to user, session link and blacklist
    "outstanding tokens": (
        reverse("admin:token_blacklist_outstandingtoken_changelist"),
        SIGNED_IN + 2,
    ),
    "outstanding tokens searched": (
        reverse("admin:token_blacklist_outstandingtoken_changelist") + "?q=alice",
        SIGNED_IN + 2,
    ),
    "blacklisted tokens": (
        reverse("admin:token_blacklist_blacklistedtoken_changelist"),
        SIGNED_IN + 2,
    ),
}


def open_sessions(user, count: int) -> list[Session]:
    """`count` sessions, each rotated once: two tokens each, one of them blacklisted."""
    sessions = []
    for _ in range(count):
        session, pair = open_session(user=user, client=Client("192.0.2.10", "test"))
        refresh_session(refresh_token=pair.refresh)
        sessions.append(session)
    return sessions


def assert_page_costs(client, url: str, queries: int, django_assert_num_queries) -> None:
    # The first request fills process-wide caches (content types); pin a warm page.
    assert client.get(url).status_code == 200
    with django_assert_num_queries(queries):
        response = client.get(url)
    assert response.status_code == 200


@pytest.mark.parametrize("rows", [1, 20])
@pytest.mark.parametrize("page", CHANGELISTS)
def test_changelist_query_count_is_fixed(admin_client, user, django_assert_num_queries, page, rows):
    open_sessions(user, rows)
    url, queries = CHANGELISTS[page]

    assert_page_costs(admin_client, url, queries, django_assert_num_queries)


@pytest.mark.parametrize("rows", [1, 20])
def test_user_page_query_count_is_fixed(admin_client, user, django_assert_num_queries, rows):
    open_sessions(user, rows)

    # the user, its groups and permissions (two each: choices and chosen), the sessions inline
    url = reverse("admin:auth_user_change", args=[user.pk])
    assert_page_costs(admin_client, url, SIGNED_IN + 6, django_assert_num_queries)


def test_token_pages_cost_three_queries(admin_client, user, django_assert_num_queries):
    open_sessions(user, 1)
    token = OutstandingToken.objects.order_by("pk").first()  # rotated out: blacklisted

    # the token with its user, session link and blacklist row in one query
    for url in (
        reverse("admin:token_blacklist_outstandingtoken_change", args=[token.pk]),
        reverse("admin:token_blacklist_blacklistedtoken_change", args=[token.blacklistedtoken.pk]),
    ):
        assert_page_costs(admin_client, url, SIGNED_IN + 1, django_assert_num_queries)


@pytest.mark.parametrize("rotations", [1, 20])
def test_session_page_query_count_is_fixed(
    admin_client, user, django_assert_num_queries, rotations
):
    session, pair = open_session(user=user, client=Client("192.0.2.10", "test"))
    for _ in range(rotations):
        pair = refresh_session(refresh_token=pair.refresh)

    # the session with its user, then its token chain with blacklist rows
    url = reverse("admin:accounts_session_change", args=[session.pk])
    assert_page_costs(admin_client, url, SIGNED_IN + 2, django_assert_num_queries)


def test_unfiltered_changelist_never_counts_more_than_its_page(admin_client, user):
    open_sessions(user, 3)

    with CaptureQueriesContext(connection) as queries:
        admin_client.get(SESSIONS)

    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    # One count, of the list shown: show_full_result_count is off.
    assert len(counts) == 1


@pytest.mark.postgres
@needs_postgresql
def test_postgresql_unfiltered_list_uses_the_planner_estimate(admin_client, user, monkeypatch):
    sessions = open_sessions(user, 3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_session")
    monkeypatch.setattr(paginators, "ESTIMATE_ABOVE", 1)
    # Deleted after ANALYZE, so the estimate (3, and the operator's admin sign-in) and
    # the true count (2, and that sign-in) differ.
    Session.objects.filter(pk=sessions[0].pk).delete()

    unfiltered = admin_client.get(SESSIONS)
    filtered = admin_client.get(SESSIONS, {"status": "active"})

    assert unfiltered.context["cl"].result_count == 3 + 1
    assert filtered.context["cl"].result_count == 2 + 1


@pytest.mark.postgres
@needs_postgresql
def test_postgresql_small_table_is_counted_exactly(admin_client, user):
    sessions = open_sessions(user, 3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_session")
    Session.objects.filter(pk=sessions[0].pk).delete()

    # The two left, and the operator's own admin sign-in.
    assert admin_client.get(SESSIONS).context["cl"].result_count == 2 + 1
