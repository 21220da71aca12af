"""Lookalike usernames: refused at signup and in the admin, race-safe, reported when old."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from django.core.checks import Warning as CheckWarning
from django.core.management import call_command
from django.db import IntegrityError, connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models.signals import pre_save
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import lookalikes
from accounts.lookalikes import fill, keys_of, lookalike_groups, lookalike_usernames_check
from accounts.models import SecurityEvent, UsernameSkeleton

User = get_user_model()
NEW_PASSWORD = "a-brand-new-Passphrase-42"
TAKEN = {"error": "Username already exists", "code": "username_taken"}

# Cyrillic small i, es, te and capital es, te; Latin small dotless i.
CYR_I, CYR_ES, CYR_TE, CYR_CAP_ES, CYR_CAP_TE, DOTLESS_I = (
    "\u0456",
    "\u0441",
    "\u0442",
    "\u0421",
    "\u0422",
    "\u0131",
)
LOOKALIKES_OF_RT2VICTIM = {
    "exact": "rt2victim",
    "upper case": "RT2VICTIM",
    "mixed case": "Rt2Victim",
    "Cyrillic i": f"rt2v{CYR_I}ct{CYR_I}m",
    "Cyrillic es": f"rt2vi{CYR_ES}tim",
    "Cyrillic te": f"r{CYR_TE}2vic{CYR_TE}im",
    "capital Cyrillic es and te": f"R{CYR_CAP_TE}2VI{CYR_CAP_ES}{CYR_CAP_TE}IM",
    "dotless i": f"rt2v{DOTLESS_I}ct{DOTLESS_I}m",
    "rn for m": "rt2victirn",
    "fullwidth": "\uff52\uff54\uff12\uff56\uff49\uff43\uff54\uff49\uff4d",
    # The second review's: marks TR39 keeps (dot below, acute, cedilla, dot above...).
    "i with dot below": "rt2v\u1ecbctim",
    "m with dot below": "rt2victi\u1e43",
    "c with dot above": "rt2vi\u010btim",
    "i with tilde below": "rt2v\u1e2dctim",
    "i with acute": "rt2v\u00edctim",
    "combining acute": "rt2vi\u0301ctim",
}


def signup(client, username: str, ip: str = "10.0.0.1"):
    body = {"username": username, "password": NEW_PASSWORD}
    return client.post("/auth/signup", body, format="json", REMOTE_ADDR=ip)


@pytest.fixture
def rt2victim(make_user):
    return make_user("rt2victim")


# --- the keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOOKALIKES_OF_RT2VICTIM.values(), ids=LOOKALIKES_OF_RT2VICTIM)
def test_a_lookalike_shares_a_unique_key(name):
    shared = set(keys_of(name).unique().items()) & set(keys_of("rt2victim").unique().items())
    assert shared


@pytest.mark.parametrize(
    ("name", "other"),
    [("alice", "aiice"), ("alice", "alicia"), ("bob", "b0b0"), ("victim", "victim2"),
     ("paypal", "paypai")],
)  # fmt: skip
def test_different_names_share_no_key(name, other):
    assert not set(keys_of(name).unique().items()) & set(keys_of(other).unique().items())


def test_a_capital_i_looks_like_a_small_l_not_a_small_i():
    assert keys_of("paypaI").skeleton == keys_of("paypal").skeleton


def test_a_digit_one_and_a_small_i_are_lookalikes_in_upper_case():
    """The price of the upper-cased skeleton (docs/sessions.md): USER1 and USERI look alike."""
    assert keys_of("user1").upper_skeleton == keys_of("useri").upper_skeleton


def test_the_folded_key_is_the_same_in_any_case_only():
    assert keys_of("RT2VICTIM").folded == keys_of("rt2victim").folded
    assert keys_of(f"rt2v{CYR_I}ctim").folded != keys_of("rt2victim").folded


def test_a_user_gets_keys_when_saved_and_new_ones_when_renamed(make_user):
    user = make_user("rt2victim")
    assert UsernameSkeleton.objects.get(user=user).skeleton == keys_of("rt2victim").skeleton
    user.username = "someone-else"
    user.save()
    assert UsernameSkeleton.objects.get(user=user).folded == keys_of("someone-else").folded
    assert not lookalikes.lookalike_taken("RT2VICTIM")
    user.delete()
    assert not UsernameSkeleton.objects.exists()


def test_a_save_that_does_not_touch_the_name_reads_no_key(rt2victim, django_assert_num_queries):
    with django_assert_num_queries(1):
        rt2victim.save(update_fields=["last_login"])


# --- signup --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOOKALIKES_OF_RT2VICTIM.values(), ids=LOOKALIKES_OF_RT2VICTIM)
def test_signup_of_a_lookalike_is_refused_as_a_taken_name(api_client, rt2victim, name):
    """The same answer as for the very name: it tells no one which lookalike exists."""
    response = signup(api_client, name)
    assert (response.status_code, response.json()) == (400, TAKEN)
    assert list(User.objects.values_list("username", flat=True)) == ["rt2victim"]
    assert not SecurityEvent.objects.filter(kind="signup").exists()


@pytest.mark.parametrize("name", ["rt2victims", "rt2victim2", "aiice", "rt2-victim"])
def test_signup_of_a_name_that_only_resembles_is_accepted(api_client, rt2victim, make_user, name):
    make_user("alice")
    assert signup(api_client, name).status_code == 201


@pytest.mark.parametrize(("taken", "name"), [("paypal", "paypaI"), ("bill", "biII"), ("O0", "0O")])
def test_signup_of_a_name_with_a_capital_for_a_lookalike_small_letter_is_refused(
    api_client, make_user, taken, name
):
    make_user(taken)
    assert signup(api_client, name).json() == TAKEN


def test_signup_of_a_lookalike_of_a_renamed_user_is_refused(api_client, rt2victim):
    rt2victim.username = "Renamed"
    rt2victim.save()
    assert signup(api_client, "RENAMED").json() == TAKEN
    assert signup(api_client, "rt2victim").status_code == 201


def test_a_save_of_a_lookalike_outside_a_transaction_writes_no_user(rt2victim):
    """`createsuperuser` and the shell save in autocommit: the hook refuses before the write."""
    with pytest.raises(IntegrityError):
        User.objects.create_user(f"rt2v{CYR_I}ctim", password=NEW_PASSWORD)
    assert User.objects.count() == 1


@pytest.fixture
def both_past_every_check():
    """Hold each user save after the lookalike checks until the other gets there too."""
    barrier = threading.Barrier(2)

    def wait_for_the_other(**kwargs):
        barrier.wait(timeout=10)

    # Connected after accounts.lookalikes' own pre_save check, so it runs after it.
    pre_save.connect(wait_for_the_other, sender=User, dispatch_uid="test.both_past")
    yield
    pre_save.disconnect(sender=User, dispatch_uid="test.both_past")


def test_parallel_signups_of_lookalikes_create_one_account(
    postgres_only, transactional_db, both_past_every_check
):
    """Both pass every SELECT before either writes: only the unique key index can decide."""

    def sign_up(name):
        try:
            response = signup(APIClient(), name, ip=f"10.0.0.{len(name)}")
            return response.status_code, response.json()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(sign_up, ["rt2victim", f"RT2VI{CYR_CAP_ES}TIM"]))

    assert sorted(status for status, _ in answers) == [201, 400]
    assert [body for status, body in answers if status == 400] == [TAKEN]
    assert User.objects.count() == UsernameSkeleton.objects.count() == 1


# --- the admin's forms ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["RT2VICTIM", f"rt2vi{CYR_ES}tim", f"rt2v{DOTLESS_I}ctim"])
def test_admin_add_user_refuses_a_lookalike(admin_client, rt2victim, name):
    response = admin_client.post(
        reverse("admin:auth_user_add"),
        {"username": name, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["username"] == [
        "A user with that username already exists."
    ]
    assert not User.objects.filter(username=name).exists()


def change_form(user, **changes) -> dict:
    return {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "api_sessions-TOTAL_FORMS": "0",
        "api_sessions-INITIAL_FORMS": "0",
        **changes,
    }


def test_admin_change_user_refuses_a_rename_to_a_lookalike(admin_client, rt2victim, other_user):
    url = reverse("admin:auth_user_change", args=[other_user.pk])
    response = admin_client.post(url, change_form(other_user, username=f"rt2vic{CYR_TE}im"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["username"] == [
        "A user with that username already exists."
    ]
    other_user.refresh_from_db()
    assert other_user.username == "bob"


def test_admin_change_user_takes_a_new_case_of_the_same_name(admin_client, rt2victim):
    url = reverse("admin:auth_user_change", args=[rt2victim.pk])
    response = admin_client.post(url, change_form(rt2victim, username="RT2Victim"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    rt2victim.refresh_from_db()
    assert rt2victim.username == "RT2Victim"
    assert UsernameSkeleton.objects.get(user=rt2victim).skeleton == keys_of("RT2Victim").skeleton


def test_admin_can_still_edit_an_account_made_before_lookalikes_were_refused(
    admin_client, rt2victim
):
    older = User.objects.bulk_create([User(username="RT2VICTIM", password="!")])[0]
    fill(User.objects, UsernameSkeleton.objects)
    url = reverse("admin:auth_user_change", args=[older.pk])
    response = admin_client.post(url, change_form(older, first_name="Kept"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    older.refresh_from_db()
    assert older.first_name == "Kept"


# --- accounts made before: the migration, the report, the check ---------------------------


def make_unkeyed(*names: str) -> list:
    """Accounts written around the model's hooks, as they were before this change."""
    return User.objects.bulk_create([User(username=name, password="!") for name in names])


def test_fill_keys_the_earliest_account_and_leaves_lookalikes_without_the_shared_key(db):
    first, upper, cyrillic, other = make_unkeyed(
        "rt2victim", "RT2VICTIM", f"rt2v{CYR_I}ctim", "other"
    )
    assert fill(User.objects, UsernameSkeleton.objects, batch=2) == 4
    rows = {row.pk: row for row in UsernameSkeleton.objects.all()}
    assert rows[first.pk].folded_skeleton == keys_of("rt2victim").folded_skeleton
    assert rows[upper.pk].folded_skeleton is None  # rt2victim holds it
    assert rows[upper.pk].skeleton == keys_of("RT2VICTIM").skeleton  # nobody else does
    assert rows[cyrillic.pk].skeleton is None
    assert rows[other.pk].skeleton is not None
    assert set(lookalikes.unkeyed(User.objects)) == {upper, cyrillic}
    assert fill(User.objects, UsernameSkeleton.objects) == 0  # nothing more to give


def test_fill_gives_a_key_once_its_holder_is_gone(db):
    first, _ = make_unkeyed("rt2victim", "RT2VICTIM")
    fill(User.objects, UsernameSkeleton.objects)
    first.delete()
    assert fill(User.objects, UsernameSkeleton.objects) == 1
    assert not lookalikes.unkeyed(User.objects).exists()


def test_the_migration_keys_existing_users_without_failing_on_lookalikes(transactional_db):
    before = ("accounts", "0006_signing_keys_resource_servers")
    after = ("accounts", "0007_username_skeletons")
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate([before])
    try:
        old_users = executor.loader.project_state([before]).apps.get_model("auth", "User")
        for name in ("rt2victim", "RT2VICTIM", f"rt2vi{CYR_ES}tim", "alice"):
            old_users.objects.create(username=name, password="!")
        MigrationExecutor(connection).migrate([after])
        assert UsernameSkeleton.objects.count() == 4
        assert [[u.username for u in group] for group in lookalike_groups()] == [
            ["rt2victim", "RT2VICTIM", f"rt2vi{CYR_ES}tim"]
        ]
    finally:
        # Back to the latest schema, for the tests after this one.
        MigrationExecutor(connection).migrate(latest)


def test_lookalike_usernames_lists_each_group_with_escaped_names(db, capsys):
    make_unkeyed("rt2victim", "alice", f"rt2v{DOTLESS_I}ctim", "ALICE", "bob", "RT2VICTIM")
    call_command("lookalike_usernames", "--fill")
    out = capsys.readouterr().out.splitlines()
    ids = dict(User.objects.values_list("username", "pk"))
    assert out == [
        "Keyed 6 accounts.",
        f"rt2victim 'rt2victim' (id {ids['rt2victim']}), "
        f"rt2v{DOTLESS_I}ctim 'rt2v\\u0131ctim' (id {ids[f'rt2v{DOTLESS_I}ctim']}), "
        f"RT2VICTIM 'RT2VICTIM' (id {ids['RT2VICTIM']})",
        f"alice 'alice' (id {ids['alice']}), ALICE 'ALICE' (id {ids['ALICE']})",
        "2 groups of lookalike usernames.",
    ]


def test_lookalike_usernames_says_when_there_are_none(make_user, capsys):
    make_user("rt2victim")
    call_command("lookalike_usernames")
    assert capsys.readouterr().out == "0 groups of lookalike usernames.\n"


def test_the_check_reads_no_database_unless_asked(db, django_assert_num_queries):
    make_unkeyed("rt2victim", "RT2VICTIM")
    with django_assert_num_queries(0):
        assert lookalike_usernames_check(None) == []
        assert lookalike_usernames_check(None, databases=[]) == []


def test_the_check_warns_of_unkeyed_users_in_a_database_it_may_read(db):
    assert lookalike_usernames_check(None, databases=["default"]) == []
    make_unkeyed("rt2victim", "RT2VICTIM")
    fill(User.objects, UsernameSkeleton.objects)
    [warning] = lookalike_usernames_check(None, databases=["default"])
    assert isinstance(warning, CheckWarning)
    assert warning.id == "accounts.W001"
    assert warning.msg.startswith("Users of the database 'default' without a lookalike key: 1.")
