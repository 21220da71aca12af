"""Typed settings from the environment, collecting every problem so a failed start names all."""

import math
import os
import re

from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}
RATE = re.compile(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)")
# Django's own deploy check (security.W009) wants 50 characters, 5 of them distinct.
MIN_SECRET_LENGTH = 50
MIN_SECRET_DISTINCT = 5


class Env:
    """Reads variables; a missing or malformed one is noted, and the default used meanwhile."""

    def __init__(self, environ=os.environ) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        """Note one problem; check() raises them all together."""
        self.problems.append(text)

    def text(self, name: str, default: str = "") -> str:
        """A string, stripped; `default` when unset or empty."""
        return self.environ.get(name, "").strip() or default

    def boolean(self, name: str, default: bool) -> bool:
        """1/0, true/false, yes/no or on/off."""
        value = self.text(name).lower()
        if not value:
            return default
        if value not in TRUE | FALSE:
            self.problem(f"{name} must be one of 1/0, true/false, yes/no, on/off (got {value!r})")
            return default
        return value in TRUE

    def integer(
        self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        """A whole number of at least `minimum` and, if given, at most `maximum`."""
        value = self.text(name)
        if not value:
            return default
        whole = re.fullmatch(r"-?[0-9]+", value) is not None
        if not whole or int(value) < minimum or (maximum is not None and int(value) > maximum):
            rule = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            self.problem(f"{name} must be a whole number {rule} (got {value!r})")
            return default
        return int(value)

    def number(self, name: str, default: float, *, minimum: float = 0.01) -> float:
        """A positive decimal number of at least `minimum` (seconds, say)."""
        value = self.text(name)
        if not value:
            return default
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is None or not math.isfinite(number) or not number >= minimum:
            self.problem(f"{name} must be a number >= {minimum} (got {value!r})")
            return default
        return number

    def items(self, name: str, default: str = "") -> list[str]:
        """A comma-separated list."""
        return [item.strip() for item in self.environ.get(name, default).split(",") if item.strip()]

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        """One of `choices`, compared case-insensitively, returned as written there."""
        value = self.text(name, default)
        by_key = {choice.upper(): choice for choice in choices}
        if value.upper() not in by_key:
            self.problem(f"{name} must be one of {', '.join(choices)} (got {value!r})")
            return default
        return by_key[value.upper()]

    def rate(self, name: str, default: str) -> str:
        """A DRF throttle rate such as 5/minute, checked now rather than on the first request."""
        value = self.text(name, default)
        if not RATE.fullmatch(value):
            self.problem(f"{name} must look like 5/minute, 100/hour or 1000/day (got {value!r})")
            return default
        return value

    def secret(self, name: str, dev_default: str, *, required: bool) -> str:
        """A secret; when `required` it must be set, long, varied, and not the public default."""
        value = self.environ.get(name, "")
        if not required:
            return value or dev_default
        if not value:
            self.problem(f"{name} is not set")
        elif value == dev_default:
            self.problem(f"{name} is the public development default")
        elif len(value) < MIN_SECRET_LENGTH or len(set(value)) < MIN_SECRET_DISTINCT:
            self.problem(
                f"{name} is too weak: use a random value of at least {MIN_SECRET_LENGTH} characters"
            )
        return value

    def check(self, hint: str) -> None:
        """Refuse to start, naming every problem noted, if there is any."""
        if self.problems:
            raise ImproperlyConfigured(
                "Refusing to start with this configuration:\n  - "
                + "\n  - ".join(self.problems)
                + f"\n{hint}"
            )
