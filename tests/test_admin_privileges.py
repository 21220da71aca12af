"""No privilege escalation in the admin: staff grant and reach only what they hold themselves."""

from datetime import datetime

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Session
from tests.conftest import PASSWORD, bearer

USERS = reverse("admin:auth_user_changelist")
USER_PERMISSIONS = ("view_user", "add_user", "change_user", "delete_user")
NEW_PASSWORD = "a-brand-new-Passphrase-42"


def permission(name: str) -> Permission:
    """The permission `app_label.codename`."""
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


@pytest.fixture
def staff(make_user):
    """A staff user holding exactly the user permissions, and nothing else."""
    staff = make_user("helpdesk", is_staff=True)
    staff.user_permissions.set(
        Permission.objects.filter(content_type__app_label="auth", codename__in=USER_PERMISSIONS)
    )
    return staff


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def root(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


def change_url(user) -> str:
    return reverse("admin:auth_user_change", args=[user.pk])


def change_form_data(client, user, **changes) -> dict:
    """What the user's change page would post as it stands, with `changes` applied."""
    page = client.get(change_url(user))
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form.initial.get(name)
        if value is None or name == "password":
            continue
        if isinstance(value, datetime):
            local = timezone.localtime(value)
            data[f"{name}_0"], data[f"{name}_1"] = f"{local:%Y-%m-%d}", f"{local:%H:%M:%S}"
        elif isinstance(value, list):
            data[name] = [getattr(item, "pk", item) for item in value]
        elif value is not False:
            data[name] = value
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        data.update({management.add_prefix(k): v for k, v in management.initial.items()})
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def save_user(client, user, **changes):
    return client.post(change_url(user), change_form_data(client, user, **changes))


def form_errors(response) -> dict:
    return response.context["adminform"].form.errors if response.context else {}


# --- superuser status ----------------------------------------------------------------------


@pytest.mark.parametrize("whose", ["own", "other"])
def test_staff_cannot_make_anyone_superuser(staff_client, staff, user, whose):
    target = staff if whose == "own" else user
    page = staff_client.get(change_url(target))
    assert "is_superuser" not in page.context["adminform"].form.fields

    response = save_user(staff_client, target, is_superuser="on", first_name="Changed")

    assert response.status_code == 302, form_errors(response)
    target.refresh_from_db()
    assert (target.first_name, target.is_superuser) == ("Changed", False)


def test_superuser_can_make_a_user_superuser(admin_client, user):
    response = save_user(admin_client, user, is_superuser="on")

    assert response.status_code == 302, form_errors(response)
    user.refresh_from_db()
    assert user.is_superuser


# --- permissions and groups ------------------------------------------------------------------


@pytest.mark.parametrize("whose", ["own", "other"])
def test_staff_cannot_grant_a_permission_they_do_not_hold(staff_client, staff, user, whose):
    target = staff if whose == "own" else user
    before = set(target.user_permissions.all())
    lacking = permission("accounts.change_session")
    offered = staff_client.get(change_url(target)).context["adminform"].form
    assert lacking not in offered.fields["user_permissions"].queryset

    held = [p.pk for p in before]
    response = save_user(staff_client, target, user_permissions=[*held, lacking.pk])

    assert response.status_code == 200
    assert "user_permissions" in form_errors(response)
    assert set(target.user_permissions.all()) == before


def test_staff_can_grant_a_permission_they_hold(staff_client, user):
    response = save_user(staff_client, user, user_permissions=[permission("auth.view_user").pk])

    assert response.status_code == 302, form_errors(response)
    assert list(user.user_permissions.all()) == [permission("auth.view_user")]


@pytest.mark.parametrize("whose", ["own", "other"])
def test_staff_cannot_join_a_group_with_a_permission_they_do_not_hold(
    staff_client, staff, user, whose
):
    target = staff if whose == "own" else user
    operators = Group.objects.create(name="operators")
    operators.permissions.set([permission("auth.view_user"), permission("accounts.change_session")])

    response = save_user(staff_client, target, groups=[operators.pk])

    assert response.status_code == 200
    assert "groups" in form_errors(response)
    assert not target.groups.exists()


def test_staff_can_grant_a_group_whose_permissions_they_hold(staff_client, user):
    readers = Group.objects.create(name="readers")
    readers.permissions.set([permission("auth.view_user")])

    response = save_user(staff_client, user, groups=[readers.pk])

    assert response.status_code == 302, form_errors(response)
    assert list(user.groups.all()) == [readers]


def test_superuser_can_grant_any_permission_and_group(admin_client, user):
    operators = Group.objects.create(name="operators")
    operators.permissions.set([permission("accounts.change_session")])

    response = save_user(
        admin_client,
        user,
        user_permissions=[permission("accounts.delete_session").pk],
        groups=[operators.pk],
    )

    assert response.status_code == 302, form_errors(response)
    assert list(user.user_permissions.all()) == [permission("accounts.delete_session")]
    assert list(user.groups.all()) == [operators]


def test_staff_cannot_give_a_group_a_permission_they_do_not_hold(staff):
    staff.user_permissions.add(permission("auth.change_group"), permission("auth.view_group"))
    client = Client()
    client.force_login(staff)
    readers = Group.objects.create(name="readers")
    url = reverse("admin:auth_group_change", args=[readers.pk])

    refused = client.post(
        url, {"name": "readers", "permissions": [permission("accounts.change_session").pk]}
    )
    allowed = client.post(
        url, {"name": "readers", "permissions": [permission("auth.view_user").pk]}
    )

    assert refused.status_code == 200
    assert "permissions" in refused.context["adminform"].form.errors
    assert allowed.status_code == 302
    assert list(readers.permissions.all()) == [permission("auth.view_user")]


def test_staff_cannot_change_a_group_that_grants_more_than_they_hold(staff):
    staff.user_permissions.add(permission("auth.change_group"), permission("auth.view_group"))
    client = Client()
    client.force_login(staff)
    operators = Group.objects.create(name="operators")
    operators.permissions.set([permission("auth.view_user"), permission("accounts.change_session")])
    url = reverse("admin:auth_group_change", args=[operators.pk])

    response = client.post(
        url, {"name": "renamed", "permissions": [permission("auth.view_user").pk]}
    )

    assert response.status_code == 403
    operators.refresh_from_db()
    assert operators.name == "operators"
    assert set(operators.permissions.all()) == {
        permission("auth.view_user"),
        permission("accounts.change_session"),
    }


def test_superuser_can_give_a_group_any_permission(admin_client):
    readers = Group.objects.create(name="readers")
    url = reverse("admin:auth_group_change", args=[readers.pk])

    response = admin_client.post(
        url, {"name": "readers", "permissions": [permission("accounts.change_session").pk]}
    )

    assert response.status_code == 302
    assert list(readers.permissions.all()) == [permission("accounts.change_session")]


# --- accounts that hold more: superusers, and staff with permissions the operator lacks ------


@pytest.fixture
def stronger(make_user):
    """A staff user (not superuser) holding a permission the helpdesk lacks."""
    stronger = make_user("security", is_staff=True)
    stronger.user_permissions.add(permission("accounts.change_session"))
    return stronger


@pytest.mark.parametrize("target", ["root", "stronger", "inactive stronger"])
def test_staff_cannot_change_an_account_that_holds_more(staff_client, root, stronger, target):
    victim = root if target == "root" else stronger
    if target == "inactive stronger":
        victim.is_active = False
        victim.save()
    before = (victim.username, victim.password)

    page = staff_client.get(change_url(victim))
    assert page.status_code == 200  # shown read-only
    assert page.context["has_change_permission"] is False
    assert 'name="_save"' not in page.content.decode()
    forged = staff_client.post(change_url(victim), {"username": "renamed", "is_active": "on"})

    assert forged.status_code == 403
    victim.refresh_from_db()
    assert (victim.username, victim.password) == before


@pytest.mark.parametrize("target", ["root", "stronger"])
def test_staff_cannot_set_the_password_of_an_account_that_holds_more(
    staff_client, root, stronger, target
):
    victim = root if target == "root" else stronger
    url = reverse("admin:auth_user_password_change", args=[victim.pk])

    page = staff_client.get(url)
    forged = staff_client.post(
        url, {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    assert (page.status_code, forged.status_code) == (403, 403)
    victim.refresh_from_db()
    assert victim.check_password(PASSWORD)
    assert not Client().login(username=victim.username, password=NEW_PASSWORD)


def test_staff_cannot_deactivate_a_superuser(staff_client, root, user, api_client, login):
    tokens = login(root)

    response = staff_client.post(
        USERS, {"action": "deactivate_users", "_selected_action": [root.pk, user.pk]}, follow=True
    )

    messages = [str(m) for m in response.context["messages"]]
    assert messages == [
        "Nothing changed: only a superuser may change a superuser, or an account holding "
        "permissions you do not hold."
    ]
    root.refresh_from_db()
    user.refresh_from_db()
    assert root.is_active and user.is_active
    assert api_client.get("/todos", **bearer(tokens["access_token"])).status_code == 200


def test_staff_can_still_deactivate_an_ordinary_user(staff_client, user):
    staff_client.post(USERS, {"action": "deactivate_users", "_selected_action": [user.pk]})

    user.refresh_from_db()
    assert not user.is_active


def test_staff_cannot_delete_a_superuser(staff_client, root):
    delete = reverse("admin:auth_user_delete", args=[root.pk])

    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    staff_client.post(
        USERS, {"action": "delete_selected", "_selected_action": [root.pk], "post": "yes"}
    )

    assert type(root).objects.filter(pk=root.pk).exists()


def test_superuser_can_change_deactivate_and_reset_a_superuser(admin_client, root, login):
    login(root)
    password = reverse("admin:auth_user_password_change", args=[root.pk])

    saved = save_user(admin_client, root, first_name="Root")
    reset = admin_client.post(
        password, {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    admin_client.post(USERS, {"action": "deactivate_users", "_selected_action": [root.pk]})

    assert (saved.status_code, reset.status_code) == (302, 302)
    root.refresh_from_db()
    assert root.first_name == "Root" and root.check_password(NEW_PASSWORD)
    assert not root.is_active
    assert list(Session.objects.filter(user=root).values_list("revoked_reason", flat=True)) == [
        "password_change"
    ]
