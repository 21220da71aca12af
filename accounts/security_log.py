"""How security events are logged: one JSON object per line, with any JWT blanked out."""

import json
import logging
import re
from datetime import UTC, datetime

# Three base64url segments starting with an encoded '{"': the shape of any JWT.
JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
REDACTED = "[redacted-jwt]"


def redact(text: str) -> str:
    """Replace every JWT-shaped string in `text`."""
    return JWT_PATTERN.sub(REDACTED, text)


class RedactTokens(logging.Filter):
    """Blank out JWTs in any record, message, arguments and traceback alike.

    Nothing should log a token in the first place; this is the second line, for the
    day an exception message or a third-party log line carries one.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drop it."""
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if JWT_PATTERN.search(message) or JWT_PATTERN.search(record.exc_text or ""):
            record.msg, record.args = redact(message), None
            record.exc_text = redact(record.exc_text) if record.exc_text else record.exc_text
        security = getattr(record, "security", None)
        if security is not None:
            record.security = json.loads(redact(json.dumps(security, default=str)))
        return True


class JSONFormatter(logging.Formatter):
    """Render a record as a single JSON line, with its security fields on top."""

    def format(self, record: logging.LogRecord) -> str:
        """`{"time", "level", "event", "user", "sid", "ip", "reason", ...}` on one line."""
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            **getattr(record, "security", {"event": record.getMessage()}),
        }
        if record.exc_info or record.exc_text:
            payload["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(payload, default=str)
