"""The app's models, one module per job, all importable from accounts.models."""

from accounts.models.events import EventKind, SecurityEvent
from accounts.models.keys import KeyRotationError, KeyState, SigningKey, key_encryption_keys
from accounts.models.push import OutboxEvent, PushKind, PushNotice, PushState
from accounts.models.servers import ResourceServer
from accounts.models.sessions import (
    RevokeReason,
    Session,
    SessionKind,
    SessionManager,
    SessionQuerySet,
    SessionToken,
)
from accounts.models.usernames import UsernameSkeleton

__all__ = [
    "EventKind",
    "KeyRotationError",
    "KeyState",
    "OutboxEvent",
    "PushKind",
    "PushNotice",
    "PushState",
    "ResourceServer",
    "RevokeReason",
    "SecurityEvent",
    "Session",
    "SessionKind",
    "SessionManager",
    "SessionQuerySet",
    "SessionToken",
    "SigningKey",
    "UsernameSkeleton",
    "key_encryption_keys",
]
