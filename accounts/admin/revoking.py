"""Revoking sessions from the admin: the permission, the service call, both logs."""

from django.contrib import messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_permission_codename
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.clients import client_of
from accounts.models import RevokeReason, Session
from accounts.services import sessions_revoke

# Sessions revoked per transaction: bounds row locks, and SQLite's variables per query.
REVOKE_BATCH = 500
REVOKED_CHANGE_MESSAGE = "Revoked the session."


def can_revoke(user) -> bool:
    """Revoking a session changes it, so the session change permission allows it."""
    return user.has_perm(f"accounts.{get_permission_codename('change', Session._meta)}")


class RevokePermissionMixin:
    """Gives a ModelAdmin the `revoke` permission that its actions and buttons require."""

    def has_revoke_permission(self, request, obj=None) -> bool:
        return can_revoke(request.user)


def revoke_sessions(request, sessions: QuerySet) -> int:
    """Revoke `sessions` through the session service and record each in the admin log.

    The service blacklists the refresh tokens and writes the security log; access
    tokens die on their next request because authentication reads the session.
    Sessions already revoked are skipped, so repeating this is harmless.
    """
    # Snapshot the targets first: the selection may be filtered on the very state
    # this changes (e.g. "status: active"), and re-reading it afterwards misses them.
    targets = list(
        Session.objects.filter(pk__in=sessions.values("pk"), revoked_at__isnull=True)
        .order_by()
        .values_list("pk", flat=True)
    )
    client = client_of(request)
    revoked = 0
    for start in range(0, len(targets), REVOKE_BATCH):
        batch = Session.objects.filter(pk__in=targets[start : start + REVOKE_BATCH])
        started = timezone.now()
        with transaction.atomic():
            count = sessions_revoke(
                sessions=batch, reason=RevokeReason.ADMIN, client=client, actor=request.user
            )
            if count:
                # Only the sessions this call ended: one that a logout revoked
                # meanwhile keeps its own reason and gets no admin entry.
                LogEntry.objects.log_actions(
                    user_id=request.user.pk,
                    queryset=batch.filter(
                        revoked_reason=RevokeReason.ADMIN, revoked_at__gte=started
                    ),
                    action_flag=CHANGE,
                    change_message=REVOKED_CHANGE_MESSAGE,
                )
        revoked += count
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
