"""Signing a staff user in to the admin through its login form, and telling whether it is."""

from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from accounts.models import Session
from accounts.signins import SESSION_ID_KEY
from tests.conftest import PASSWORD, bearer

ADMIN = reverse("admin:index")
LOGIN = reverse("admin:login")
LOGGED_OUT = "You have been logged out. Please log in again."
FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


def make_staff(make_user, username: str = "staff"):
    """A staff user who may view users."""
    staff = make_user(username, is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_user"))
    return staff


def sign_in_to_admin(user, *, ip: str = "198.51.100.7", user_agent: str = FIREFOX) -> Client:
    """A browser signed in through the admin's own login form."""
    browser = Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=user_agent)
    response = browser.post(LOGIN, {"username": user.username, "password": PASSWORD, "next": ADMIN})
    assert response.status_code == 302, response.content
    assert response["Location"] == ADMIN
    return browser


def admin_session(browser) -> Session:
    return Session.objects.get(pk=browser.session[SESSION_ID_KEY])


def assert_signed_in(browser) -> None:
    assert browser.get(ADMIN).status_code == 200


def assert_signed_out(browser) -> None:
    """/admin/ sends the browser to the login page, and its Django session is gone."""
    response = browser.get(ADMIN)
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next={ADMIN}"
    assert "_auth_user_id" not in browser.session
    # It stays signed out: the next page is the login form, not the admin.
    assert browser.get(ADMIN).status_code == 302


def assert_tokens_dead(api_client, tokens) -> None:
    assert api_client.get("/todos", **bearer(tokens["access_token"])).json()["error"] in (
        LOGGED_OUT,
        "Invalid JWT token: User is inactive",
    )
    response = api_client.post(
        "/auth/refresh", {"refresh_token": tokens["refresh_token"]}, format="json"
    )
    assert response.status_code == 401
