"""Serializer fields that refuse coercion, and one text for a wrong query parameter."""

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A string field that accepts only JSON strings (lone surrogates stop at the parser)."""

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A boolean field that accepts only JSON true and false."""

    default_error_messages = {"invalid": "Must be a boolean (true or false)."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def query_errors(name: str, rule: str) -> dict:
    """error_messages giving one text for every way a query parameter can be wrong."""
    text = f"Invalid query parameter '{name}': {rule}."
    codes = ("invalid", "invalid_choice", "max_value", "min_value", "max_length", "blank")
    return dict.fromkeys((*codes, "max_string_length"), text)
