"""Serializer fields that refuse coercion: a wrong JSON type is a 400, not a guess."""

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
