"""The security record: a row per event, written with the change it records, and a log line.

Rows are written in the caller's transaction, so a change that rolls back leaves no
event and one that commits always has its event. A failure that changes nothing (a
wrong password) is written on its own. Each event is also one JSON line on the
`security` logger once its transaction commits; lines for the kinds that are not
kept as rows (a routine rotation, a refused refresh) are logged only.
"""

import enum
import logging
from dataclasses import dataclass, field

from django.db import transaction

from accounts.clients import Client
from accounts.devices import device_label
from accounts.models import EventKind, SecurityEvent

logger = logging.getLogger("security")

# Alerting reads these: a stolen token, or someone guessing passwords.
WARNING_KINDS = frozenset({EventKind.REUSE_DETECTED, EventKind.LOCKED_OUT})


class LoggedOnly(enum.StrEnum):
    """Kinds written as a log line only: as rows they would double the table for no news."""

    REFRESH = "refresh"
    REFRESH_REFUSED = "refresh_refused"


@dataclass
class Event:
    """One security event before it is written; callers pass ids and reasons, never secrets.

    `kind` is an EventKind (kept as a row and logged) or a LoggedOnly kind: anything
    else, a plain string included, raises, so a misspelt kind cannot lose a row.
    """

    kind: EventKind | LoggedOnly
    user: object = None  # a user, or its primary key
    username: str = ""
    sid: object = None
    client: Client | None = None
    reason: str = ""
    actor: object = None
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, (EventKind, LoggedOnly)):
            raise ValueError(f"Not a security event kind: {self.kind!r}")

    @property
    def kept(self) -> bool:
        """Whether this event is a row of the record, not just a log line."""
        return isinstance(self.kind, EventKind)

    def row(self) -> SecurityEvent:
        client = self.client or Client()
        return SecurityEvent(
            kind=self.kind,
            user_id=getattr(self.user, "pk", self.user),
            username=(self.username or _username(self.user))[:150],
            session_id=self.sid,
            ip_address=client.ip,
            user_agent=client.user_agent,
            device=device_label(client.user_agent),
            actor_id=getattr(self.actor, "pk", self.actor),
            reason=self.reason,
            details=self.details,
        )

    def log(self) -> None:
        level = logging.WARNING if self.kind in WARNING_KINDS else logging.INFO
        security = {
            "event": str(self.kind),
            "user": getattr(self.user, "pk", self.user),
            "sid": str(self.sid) if self.sid else None,
            "ip": self.client.ip if self.client else None,
            "reason": self.reason or None,
            **({"actor": getattr(self.actor, "pk", self.actor)} if self.actor else {}),
            **self.details,
        }
        logger.log(level, str(self.kind), extra={"security": security})


def record(kind: EventKind | LoggedOnly, **fields) -> None:
    """Record one event (see Event for the fields; anything else goes into its details)."""
    known = {name: fields.pop(name) for name in list(fields) if name in Event.__annotations__}
    record_all([Event(kind, **known, details=fields)])


def record_all(events: list[Event]) -> None:
    """Record several events with one INSERT, e.g. every session a logout-all ends."""
    rows = [event.row() for event in events if event.kept]
    if rows:
        SecurityEvent.objects.bulk_create(rows)
    for event in events:
        transaction.on_commit(event.log)


def _username(user) -> str:
    get_username = getattr(user, "get_username", None)
    return get_username() if get_username else ""
