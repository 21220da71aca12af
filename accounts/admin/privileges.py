"""No privilege escalation in the admin: a staff user grants and reaches only what they hold.

Stock Django lets anyone with `auth.change_user` tick "superuser" on themselves, hand out
any permission or group, or set a superuser's password and sign in as them. Here a staff
user who is not a superuser:

- cannot change anyone's superuser status (the field is read-only);
- can grant only permissions they hold, and only groups all of whose permissions they
  hold, to others or to themselves;
- cannot change, set the password of, deactivate or delete an account that holds more
  than they do: a superuser, or anyone with a permission they lack (so every account
  they may change holds only what they could grant it again), nor a group that does.
"""

import functools
import operator

from django.contrib import messages
from django.contrib.auth.models import Group, Permission
from django.db.models import Q, QuerySet


def held_permissions(user) -> QuerySet:
    """The permissions `user` holds (directly, through groups or any backend), as rows."""
    if user.is_active and user.is_superuser:
        return Permission.objects.all()
    names = [name.split(".", 1) for name in user.get_all_permissions()]
    if not names:
        return Permission.objects.none()
    held = (Q(content_type__app_label=app, codename=codename) for app, codename in names)
    return Permission.objects.filter(functools.reduce(operator.or_, held))


def grantable_groups(user) -> QuerySet:
    """The groups none of whose permissions `user` lacks."""
    lacking = Permission.objects.exclude(pk__in=held_permissions(user).values("pk"))
    return Group.objects.exclude(permissions__in=lacking)


def may_manage(operator_user, user) -> bool:
    """Whether `operator_user` may change `user`'s account: never one that holds more.

    The account's own permissions are read from the rows, whether it is active or not:
    an inactive account keeps them for the day it is reactivated.
    """
    if operator_user.is_superuser:
        return True
    if user.is_superuser:
        return False
    return holds_all(operator_user, Permission.objects.filter(Q(user=user) | Q(group__user=user)))


def holds_all(operator_user, permissions: QuerySet) -> bool:
    """Whether `operator_user` holds every one of `permissions`."""
    held = held_permissions(operator_user).values("pk")
    return not permissions.exclude(pk__in=held).exists()


def limit_choices(field, grantable: QuerySet) -> None:
    """Offer only what may be granted: anything else posted is "not a valid choice"."""
    if field is not None:
        field.queryset = field.queryset.filter(pk__in=grantable.values("pk"))


class NoEscalationUserAdmin:
    """For Django's UserAdmin: the rules above, on its change, password and delete pages."""

    def has_change_permission(self, request, obj=None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or may_manage(request.user, obj))

    def has_delete_permission(self, request, obj=None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or may_manage(request.user, obj))

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return fields if request.user.is_superuser else (*fields, "is_superuser")

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if request.user.is_superuser:
            return form
        staff = request.user

        class GrantsLimitedForm(form):
            """The user form, offering only the permissions and groups `staff` may grant."""

            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                limit_choices(self.fields.get("user_permissions"), held_permissions(staff))
                limit_choices(self.fields.get("groups"), grantable_groups(staff))

        return GrantsLimitedForm

    def refuse_unmanageable(self, request, users) -> bool:
        """For an action on `users`: True, and says so, if any holds more than the operator."""
        if all(may_manage(request.user, user) for user in users):
            return False
        self.message_user(
            request,
            "Nothing changed: only a superuser may change a superuser, or an account "
            "holding permissions you do not hold.",
            messages.ERROR,
        )
        return True


class NoEscalationGroupAdmin:
    """For Django's GroupAdmin: a group gets only permissions the staff user holds.

    A group that grants more than they hold is theirs to read, not to change or delete:
    saving it with the permissions they may offer would quietly strip the others.
    """

    def has_change_permission(self, request, obj=None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or holds_all(request.user, obj.permissions.all()))

    def has_delete_permission(self, request, obj=None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or holds_all(request.user, obj.permissions.all()))

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if request.user.is_superuser:
            return form
        staff = request.user

        class GrantsLimitedForm(form):
            """The group form, offering only the permissions `staff` holds."""

            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                limit_choices(self.fields.get("permissions"), held_permissions(staff))

        return GrantsLimitedForm
