"""The admin site, with its login and password-change forms under the brute-force policy.

Not in accounts/admin/: Django builds the default site while it imports the module named
by AdminConfig.default_site, and a ModelAdmin registered during that import (as
accounts/admin/__init__.py registers them all) lands on an instance Django then
replaces. This module imports no ModelAdmin.
"""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm
from django.contrib.auth import authenticate
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.text import format_lazy
from rest_framework.exceptions import Throttled

from accounts.clients import client_of
from accounts.guard import ADMIN_LOGIN, ADMIN_PASSWORD_CHANGE, password_check
from accounts.signins import current_admin_session
from accounts.users import set_password

LOCKED_OUT = "Too many failed attempts. Try again in {} seconds."


def locked_out(refused: Throttled) -> ValidationError:
    """The form error for a refused attempt; it never says whether the password was right."""
    return ValidationError(format_lazy(LOCKED_OUT, refused.wait), code="locked_out")


class GuardedAuthenticationForm(AdminAuthenticationForm):
    """The admin login form, counted and limited like the API login."""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            try:
                self.user_cache = password_check(
                    door=ADMIN_LOGIN,
                    username=username,
                    client=client_of(self.request),
                    verify=lambda: authenticate(self.request, username=username, password=password),
                )
            except Throttled as refused:
                raise locked_out(refused) from None
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
            # The sign-in's session and its `login` event come with Django's login()
            # (accounts.signins), as for any login view.
        return self.cleaned_data


class GuardedPasswordChangeForm(AdminPasswordChangeForm):
    """The admin's "change my password" form: its old password is checked like a login."""

    def __init__(self, user, *args, request=None, **kwargs):
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        try:
            verified = password_check(
                door=ADMIN_PASSWORD_CHANGE,
                username=self.user.get_username(),
                client=client_of(self.request),
                verify=lambda: self.user if self.user.check_password(old_password) else None,
                user=self.user,
            )
        except Throttled as refused:
            raise locked_out(refused) from None
        if verified is None:
            raise ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old_password

    def save(self, commit=True):
        """Save the new password: this sign-in stays, every other session of the user ends.

        As the API's password change does (accounts.users.set_password); Django's view
        then keeps this browser signed in (update_session_auth_hash).
        """
        set_password(
            user=self.user,
            password=self.cleaned_data["new_password1"],
            keep=current_admin_session(self.request),
            client=client_of(self.request),
        )
        return self.user


class GuardedPasswordChangeView(PasswordChangeView):
    """Django's password change view, handing the request to the form for its address."""

    form_class = GuardedPasswordChangeForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}


class AdminSite(admin.AdminSite):
    """Django's admin site; every password it checks is rate-limited (accounts.guard)."""

    login_form = GuardedAuthenticationForm

    def password_change(self, request, extra_context=None):
        """Django's own view, with the guarded form (AdminSite has no setting for it)."""
        defaults = {
            "success_url": reverse("admin:password_change_done", current_app=self.name),
            "extra_context": {**self.each_context(request), **(extra_context or {})},
        }
        if self.password_change_template is not None:
            defaults["template_name"] = self.password_change_template
        request.current_app = self.name
        return GuardedPasswordChangeView.as_view(**defaults)(request)
