"""Security events: one JSON object per line on the `security` logger."""

import json
import logging

logger = logging.getLogger("security")

_EVENT_FIELDS = ("event", "user", "sid", "ip", "reason")


def security_event(event: str, *, user=None, sid=None, ip=None, reason="", **extra) -> None:
    """Log one security event; callers pass ids and reasons, never tokens or passwords."""
    logger.info(
        event,
        extra={
            "security": {
                "event": event,
                "user": getattr(user, "pk", user),
                "sid": str(sid) if sid else None,
                "ip": ip,
                "reason": reason or None,
                **extra,
            }
        },
    )


class JSONFormatter(logging.Formatter):
    """Render a record as a single JSON line, with its security fields on top."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            **getattr(record, "security", {"event": record.getMessage()}),
        }
        return json.dumps(payload, default=str)
