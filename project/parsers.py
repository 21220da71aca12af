"""The API's only parser: JSON of valid Unicode, with a bound on the body it will read."""

import io
import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from project.exceptions import PayloadTooLarge


class BoundedJSONParser(JSONParser):
    """Parse JSON bodies, refusing any larger than API_MAX_BODY_BYTES with 413.

    Django refuses a body whose Content-Length passes DATA_UPLOAD_MAX_MEMORY_SIZE
    (set to the same bound) before reading it; this check holds if that is changed.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        """Read at most one byte past the limit, then parse and check the strings."""
        limit = settings.API_MAX_BODY_BYTES
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge()
        data = super().parse(io.BytesIO(body), media_type, parser_context)
        try:
            # JSON may escape a lone surrogate ("\ud800"): valid JSON, but not text
            # any database, hash or log can take. Refuse it here, once for every field.
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise ParseError("Strings must be valid Unicode.", code="invalid_unicode") from None
        return data
