"""Django's user admin, plus each user's sessions and a revoke-all action."""

import copy
import functools

from django.contrib import admin, messages
from django.contrib.auth import get_user_model

# Importing Django's UserAdmin registers it, so unregistering below always works.
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import (
    AdminPasswordChangeForm,
    AdminUserCreationForm,
    UserChangeForm,
)
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, IntegerField, Q, Value, When
from django.forms.models import BaseInlineFormSet
from django.utils import timezone

from accounts.admin.display import SESSION_COLUMNS, SessionColumns
from accounts.admin.events import events_link
from accounts.admin.privileges import NoEscalationUserAdmin
from accounts.admin.revoking import RevokePermissionMixin, report_revoked, revoke_and_log
from accounts.admin.selection import ValidSelectionMixin
from accounts.clients import client_of
from accounts.lookalikes import lookalike_taken
from accounts.models import Session
from accounts.users import deactivate, disable_password, set_password

User = get_user_model()
# Sessions listed on a user's page; the sessions list, searched by username, has all.
INLINE_ROWS = 50

admin.site.unregister(User)


class RefuseLookalikeUsername:
    """A form that refuses a new username that another account's differs from only in looks."""

    def clean_username(self):
        clean = getattr(super(), "clean_username", None)
        username = clean() if clean else self.cleaned_data.get("username")
        # An unchanged name is left alone: accounts made before lookalikes were refused
        # stay editable.
        checked = username and "username" in self.changed_data and not self.has_error("username")
        if checked and lookalike_taken(username, excluding=self.instance.pk):
            # Django's own text for a taken name: a lookalike is one too.
            message = User._meta.get_field(User.USERNAME_FIELD).error_messages["unique"]
            raise ValidationError(message, code="unique")
        return username


class LookalikeRefusingCreationForm(RefuseLookalikeUsername, AdminUserCreationForm):
    """The admin's add-user form."""


class LookalikeRefusingChangeForm(RefuseLookalikeUsername, UserChangeForm):
    """The admin's change-user form."""


class OperatorPasswordForm(AdminPasswordChangeForm):
    """The admin's password form for another user: saved through accounts.users, naming `by`.

    A new password, or password sign-in disabled, ends every session of the user, and
    the security record says which operator did it.
    """

    def __init__(self, user, *args, by=None, client=None, **kwargs):
        self.by, self.client = by, client
        super().__init__(user, *args, **kwargs)

    def save(self, commit=True):
        if self.cleaned_data["set_usable_password"]:
            password = self.cleaned_data["password1"]
            set_password(user=self.user, password=password, by=self.by, client=self.client)
        else:
            disable_password(user=self.user, by=self.by, client=self.client)
        return self.user


class RecentSessionsFormSet(BaseInlineFormSet):
    """The first INLINE_ROWS sessions only, however many a user has piled up."""

    def get_queryset(self):
        if not hasattr(self, "_recent"):
            self._recent = super().get_queryset()[:INLINE_ROWS]
        return self._recent


class SessionInline(SessionColumns, admin.TabularInline):
    """A user's sessions (API and admin sign-ins), active first, then newest first; read-only."""

    model = Session
    formset = RecentSessionsFormSet
    verbose_name_plural = f"Sessions: API and admin sign-ins (active first, at most {INLINE_ROWS})"
    fields = SESSION_COLUMNS
    readonly_fields = fields
    extra = 0
    can_delete = False
    # Each row's heading names the session and links to its page.
    show_change_link = True

    def get_queryset(self, request):
        now = timezone.now()
        active = Q(revoked_at__isnull=True, expires_at__gt=now)
        rank = Case(When(active, then=Value(0)), default=Value(1), output_field=IntegerField())
        sessions = super().get_queryset(request).select_related("user")  # each row's title
        return sessions.alias(rank=rank).order_by("rank", "-created_at")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(User)
class UserAdmin(ValidSelectionMixin, NoEscalationUserAdmin, RevokePermissionMixin, DjangoUserAdmin):
    """Django's UserAdmin, with the user's sessions and a way to end them all."""

    inlines = (*DjangoUserAdmin.inlines, SessionInline)
    add_form = LookalikeRefusingCreationForm
    form = LookalikeRefusingChangeForm
    actions = ("revoke_all_sessions", "deactivate_users")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Security", {"fields": ("security_record",)}))
    readonly_fields = ("security_record",)

    def user_change_password(self, request, id, form_url=""):
        """Django's password view for another user, saving through accounts.users as this operator.

        Django builds the form itself (`change_password_form(user, data)`), so the form
        that names the operator is bound to this request on a copy of this admin: the
        shared instance is never changed.
        """
        per_request = copy.copy(self)
        per_request.change_password_form = functools.partial(
            OperatorPasswordForm, by=request.user, client=client_of(request)
        )
        with transaction.atomic():
            return DjangoUserAdmin.user_change_password(per_request, request, id, form_url)

    def save_model(self, request, obj, form, change):
        """A deactivation through the change form ends every session, naming this operator."""
        if change and "is_active" in form.changed_data and not obj.is_active:
            deactivate(user=obj, by=request.user, client=client_of(request))
        super().save_model(request, obj, form, change)

    @admin.display(description="security record")
    def security_record(self, user) -> str:
        """Sign-ins, failures, revocations... of this user, in the security record."""
        return events_link("Security events of this user", user__id__exact=user.pk)

    @admin.action(description="Revoke all sessions of selected users", permissions=["revoke"])
    def revoke_all_sessions(self, request, queryset):
        sessions = Session.objects.filter(user__in=queryset.values("pk"))
        report_revoked(self, request, revoke_and_log(request, sessions))

    @admin.action(
        description="Deactivate selected users (ends their sessions)", permissions=["change"]
    )
    def deactivate_users(self, request, queryset):
        """Turn is_active off and end every session of each, naming this operator."""
        users = list(queryset.filter(is_active=True))
        if self.refuse_unmanageable(request, users):
            return
        for user in users:
            deactivate(user=user, by=request.user, client=client_of(request))
            self.log_change(request, user, "Deactivated; every session ended.")
        noun = "user" if len(users) == 1 else "users"
        self.message_user(request, f"Deactivated {len(users)} {noun}.", messages.SUCCESS)
