"""The API's only parser: JSON, with a bound on the body it will read."""

import io

from django.conf import settings
from rest_framework.parsers import JSONParser

from project.exceptions import PayloadTooLarge


class BoundedJSONParser(JSONParser):
    """Parse JSON bodies, refusing any larger than API_MAX_BODY_BYTES with 413."""

    def parse(self, stream, media_type=None, parser_context=None):
        """Read at most one byte past the limit, so a huge body is never buffered."""
        limit = settings.API_MAX_BODY_BYTES
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge()
        return super().parse(io.BytesIO(body), media_type, parser_context)
