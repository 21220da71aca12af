"""Revoking sessions from the admin: the permission, the revocation, both logs."""

from django.contrib import messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_permission_codename
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.clients import client_of
from accounts.models import RevokeReason, Session

REVOKED_CHANGE_MESSAGE = "Revoked the session."


def can_revoke(user) -> bool:
    """Revoking a session changes it, so the session change permission allows it."""
    return user.has_perm(f"accounts.{get_permission_codename('change', Session._meta)}")


class RevokePermissionMixin:
    """Gives a ModelAdmin the `revoke` permission that its actions and buttons require."""

    def has_revoke_permission(self, request, obj=None) -> bool:
        return can_revoke(request.user)


def revoke_and_log(request, sessions: QuerySet) -> int:
    """Revoke `sessions` as this operator (`by`), and write each to the admin's own log.

    The revocation blacklists the refresh tokens and writes the security record; access
    tokens die on their next request. Sessions already revoked are skipped, so
    repeating this is harmless. Returns how many this call ended.
    """
    # Snapshot the targets first: the selection may be filtered on the very state
    # this changes (e.g. "status: active"), and re-reading it afterwards misses them.
    targets = Session.objects.filter(
        pk__in=list(
            sessions.filter(revoked_at__isnull=True).order_by().values_list("pk", flat=True)
        )
    )
    started = timezone.now()
    with transaction.atomic():
        revoked = targets.revoke(RevokeReason.ADMIN, by=request.user, client=client_of(request))
        if revoked:
            # Only the sessions this call ended: one that a logout revoked meanwhile keeps
            # its own reason and gets no admin entry.
            LogEntry.objects.log_actions(
                user_id=request.user.pk,
                queryset=targets.filter(revoked_reason=RevokeReason.ADMIN, revoked_at__gte=started),
                action_flag=CHANGE,
                change_message=REVOKED_CHANGE_MESSAGE,
            )
    return revoked


def report_revoked(model_admin, request, revoked: int) -> None:
    """Tell the operator how many sessions ended, including when none needed to."""
    if not revoked:
        text = "No session revoked: the selected ones were already revoked."
        model_admin.message_user(request, text, messages.INFO)
        return
    noun, whose = ("session", "its") if revoked == 1 else ("sessions", "their")
    text = f"Revoked {revoked} {noun}: {whose} access and refresh tokens are refused now."
    model_admin.message_user(request, text, messages.SUCCESS)
