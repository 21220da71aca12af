"""Serializer fields that refuse coercion: a wrong JSON type is a 400, not a guess."""

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A string field that accepts only JSON strings of valid Unicode."""

    default_error_messages = {
        "invalid": "Not a valid string.",
        "surrogate": "Strings must be valid Unicode.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            # Lone surrogates parse from JSON but no database can store them.
            data.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("surrogate")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A boolean field that accepts only JSON true and false."""

    default_error_messages = {"invalid": "Must be a boolean (true or false)."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data
