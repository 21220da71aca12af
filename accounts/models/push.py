"""The outbox of session events: what each resource server is told, and how delivery went.

The transaction that ends a session writes one PushNotice (accounts.push), so a
revocation that rolls back tells nobody, and one that commits is told to every
receiver: the worker (accounts.tasks) fans the notice out into an OutboxEvent per
receiver, and sends those at least once, in order per receiver.
"""

from django.db import models
from django.utils import timezone

from accounts.models.servers import ResourceServer


class PushKind(models.TextChoices):
    """The Security Event Token's event type (RFC 8417; OpenID CAEP and SSF)."""

    SESSION_REVOKED = "session_revoked", "Session revoked (CAEP)"
    CREDENTIAL_CHANGE = "credential_change", "Credential change (CAEP)"
    # The heartbeat: queued behind everything not yet delivered, so it proves the rest arrived.
    VERIFICATION = "verification", "Heartbeat (SSF verification)"


class PushState(models.TextChoices):
    """Where an event's delivery stands."""

    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    # Refused by the receiver as malformed (RFC 8935 400), or past the retry period.
    FAILED = "failed", "Failed"


class OutboxEvent(models.Model):
    """One Security Event Token for one receiver, signed when it is sent."""

    receiver = models.ForeignKey(ResourceServer, on_delete=models.CASCADE, related_name="outbox")
    kind = models.CharField(max_length=32, choices=PushKind.choices)
    # The SET's `jti`: the same on every retry, so the receiver de-duplicates by it.
    jti = models.CharField(max_length=64, unique=True)
    # The SET's claims (its `iat` is when the event happened, not when it is sent).
    claims = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=16, choices=PushState.choices, default=PushState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        verbose_name = "pushed session event"
        indexes = [
            # Each receiver's queue, in order: what the worker reads.
            models.Index(fields=["receiver", "state", "id"], name="outbox_queue"),
            models.Index(fields=["state", "next_attempt_at"], name="outbox_due"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.receiver}: {self.get_state_display()}"


class PushNotice(models.Model):
    """What one revocation (or credential change, or heartbeat) tells every receiver, not yet
    fanned out.

    The revoking transaction writes this one row, whatever the number of receivers, and
    reads none of them: registering receivers does not slow it. The worker turns it into
    an OutboxEvent per enabled receiver per subject, in the order the notices were
    written, and deletes it (accounts.push.fan_out).
    """

    kind = models.CharField(max_length=32, choices=PushKind.choices)
    # Each event's subject (the SET's `sub_id`): an ended session, or the changed user.
    subjects = models.JSONField()
    # What each event says besides its timestamp: who ended the session, and why.
    details = models.JSONField()
    # When it happened: the events' `iat`, and where their retry period starts.
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("id",)
        verbose_name = "session event not yet fanned out"
        verbose_name_plural = "session events not yet fanned out"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M:%S}"
