"""The sessions admin: list, filters, exact search, the read-only session page."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.admin import sessions as sessions_admin
from accounts.clients import Client
from accounts.models import RevokeReason, Session
from accounts.refresh import refresh_session

CHANGELIST = reverse("admin:accounts_session_changelist")


def change_url(session) -> str:
    return reverse("admin:accounts_session_change", args=[session.pk])


@pytest.fixture
def open_session(db):
    """Open a session for `user` straight through the session service."""

    def make(user, ip="192.0.2.10", user_agent="TodoApp/1.0 okhttp/4.12.0"):
        return services.open_session(user=user, client=Client(ip, user_agent))

    return make


def listed(response) -> list:
    return list(response.context["cl"].result_list)


def action_names(response) -> list[str]:
    return [name for name, _ in response.context["action_form"].fields["action"].choices if name]


def test_changelist_lists_sessions_newest_first(admin_client, user, open_session, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    older, _ = open_session(user)
    time_machine.shift(timedelta(minutes=1))
    newer, _ = open_session(user)

    # The operator's own admin sign-in is a session too: list the API ones.
    response = admin_client.get(CHANGELIST, {"kind__exact": "api"})

    assert response.status_code == 200
    assert listed(response) == [newer, older]


FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


def test_changelist_shows_user_status_ip_device_and_reason(admin_client, user, open_session):
    session, _ = open_session(user, ip="198.51.100.7", user_agent=FIREFOX)
    Session.objects.filter(pk=session.pk).update(
        revoked_at=timezone.now(), revoked_reason=RevokeReason.REUSE_DETECTED
    )

    content = admin_client.get(CHANGELIST).content.decode()

    assert "alice" in content
    assert "revoked" in content
    assert "198.51.100.7" in content
    assert "Refresh token reuse detected" in content
    # The device as a person reads it; the session's page has the whole user agent.
    assert "Firefox on Ubuntu" in content
    assert FIREFOX not in content
    assert FIREFOX in admin_client.get(change_url(session)).content.decode()


@pytest.mark.parametrize("status", ["active", "revoked", "expired"])
def test_status_filter_lists_only_that_status(admin_client, user, open_session, status):
    names = ("active", "revoked", "expired", "idle")
    sessions = {name: open_session(user)[0] for name in names}
    Session.objects.filter(pk=sessions["revoked"].pk).update(
        revoked_at=timezone.now(), revoked_reason=RevokeReason.LOGOUT
    )
    Session.objects.filter(pk=sessions["expired"].pk).update(expires_at=timezone.now())
    # Its refresh token idled out: it can never be refreshed again.
    Session.objects.filter(pk=sessions["idle"].pk).update(idle_expires_at=timezone.now())

    response = admin_client.get(CHANGELIST, {"status": status, "kind__exact": "api"})

    expected = {"expired": {sessions["expired"], sessions["idle"]}}.get(status, {sessions[status]})
    assert set(listed(response)) == expected


def test_reason_filter_lists_only_that_reason(admin_client, user, open_session):
    by_admin, by_logout, _ = (open_session(user)[0] for _ in range(3))
    Session.objects.filter(pk=by_admin.pk).update(
        revoked_at=timezone.now(), revoked_reason=RevokeReason.ADMIN
    )
    Session.objects.filter(pk=by_logout.pk).update(
        revoked_at=timezone.now(), revoked_reason=RevokeReason.LOGOUT
    )

    response = admin_client.get(CHANGELIST, {"revoked_reason__exact": "admin"})

    assert listed(response) == [by_admin]


def test_search_by_username_is_exact(admin_client, make_user, open_session):
    alice_session, _ = open_session(make_user("alice"))
    open_session(make_user("alicia"))

    assert listed(admin_client.get(CHANGELIST, {"q": "alice"})) == [alice_session]
    assert listed(admin_client.get(CHANGELIST, {"q": "ali"})) == []


@pytest.mark.parametrize("address", ["203.0.113.9", "2001:db8::1"])
def test_search_by_ip_address_finds_its_sessions(admin_client, user, open_session, address):
    session, _ = open_session(user, ip=address)
    open_session(user, ip="192.0.2.1")

    assert listed(admin_client.get(CHANGELIST, {"q": address})) == [session]


@pytest.mark.parametrize("spelling", [str, lambda sid: sid.hex, lambda sid: str(sid).upper()])
def test_search_by_session_id_accepts_any_uuid_spelling(admin_client, user, open_session, spelling):
    session, _ = open_session(user)
    open_session(user)

    response = admin_client.get(CHANGELIST, {"q": spelling(session.pk)})

    assert listed(response) == [session]


@pytest.mark.parametrize("term", ["not-a-uuid", "12345", "1.2.3", "'quoted term'", "%", "a" * 300])
def test_search_with_a_term_that_is_no_uuid_or_ip_finds_nothing(
    admin_client, user, open_session, term
):
    open_session(user)

    response = admin_client.get(CHANGELIST, {"q": term})

    assert response.status_code == 200
    assert listed(response) == []


def test_search_terms_are_anded(admin_client, make_user, open_session):
    alice, bob = make_user("alice"), make_user("bob")
    wanted, _ = open_session(alice, ip="203.0.113.9")
    open_session(alice, ip="192.0.2.1")
    open_session(bob, ip="203.0.113.9")

    assert listed(admin_client.get(CHANGELIST, {"q": "alice 203.0.113.9"})) == [wanted]


def test_search_uses_exact_comparisons_an_index_can_serve(admin_client, user, open_session):
    session, _ = open_session(user)

    with CaptureQueriesContext(connection) as queries:
        admin_client.get(CHANGELIST, {"q": f"alice 192.0.2.10 {session.pk}"})

    search_sql = [q["sql"] for q in queries if "accounts_session" in q["sql"]]
    assert search_sql
    for sql in search_sql:
        # iexact/icontains become UPPER(...) or LIKE, which a b-tree index cannot serve,
        # and an OR across joined tables makes PostgreSQL scan them whole.
        for defeats_indexes in ("LIKE", "UPPER(", "CAST(", " OR "):
            assert defeats_indexes not in sql.upper()


def test_detail_page_shows_the_refresh_token_chain(admin_client, user, open_session):
    session, pair = open_session(user)
    refresh_session(refresh_token=pair.refresh)
    first, second = session.token_links.select_related("token").order_by("token_id")

    content = admin_client.get(change_url(session)).content.decode()

    assert first.token.jti in content
    assert second.token.jti in content
    assert content.index(second.token.jti) < content.index(first.token.jti)  # newest first
    assert "current" in content


def test_detail_page_bounds_the_chain_and_links_the_rest(
    admin_client, user, open_session, monkeypatch
):
    monkeypatch.setattr(sessions_admin, "CHAIN_ROWS", 2)
    session, pair = open_session(user)
    for _ in range(2):
        pair = refresh_session(refresh_token=pair.refresh)
    oldest, *newest = session.token_links.select_related("token").order_by("token_id")

    content = admin_client.get(change_url(session)).content.decode()

    assert all(link.token.jti in content for link in newest)
    assert oldest.token.jti not in content
    tokens_list = reverse("admin:token_blacklist_outstandingtoken_changelist")
    assert f"{tokens_list}?q={session.pk}" in content


def test_detail_page_is_read_only(admin_client, user, open_session):
    session, _ = open_session(user)

    response = admin_client.get(change_url(session))

    assert response.status_code == 200
    assert response.context["title"] == "View session"
    assert 'name="_save"' not in response.content.decode()
    assert admin_client.post(change_url(session), {"user_agent": "forged"}).status_code == 403
    session.refresh_from_db()
    assert session.user_agent != "forged"


def test_add_page_does_not_exist(admin_client, db):
    assert admin_client.get(reverse("admin:accounts_session_add")).status_code == 403


def test_sessions_are_revoked_never_deleted(admin_client, user, open_session):
    session, _ = open_session(user)

    assert action_names(admin_client.get(CHANGELIST)) == ["revoke_selected"]
    delete_url = reverse("admin:accounts_session_delete", args=[session.pk])
    assert admin_client.get(delete_url).status_code == 403
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert Session.objects.filter(pk=session.pk).exists()
