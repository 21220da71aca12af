"""The API's only parser: JSON of valid Unicode, nested no deeper than any endpoint needs."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Every body the API takes is one flat object; this leaves ample room and stays far
# below Python's recursion limit, which a deeper document would otherwise hit.
MAX_JSON_DEPTH = 32


class JSONTooDeep(ParseError):
    """A body nested deeper than MAX_JSON_DEPTH."""

    default_detail = f"JSON is nested too deeply (at most {MAX_JSON_DEPTH} levels)."
    default_code = "json_too_deep"


class InvalidUnicode(ParseError):
    """A string with a lone surrogate: valid JSON, but no text a database or hash can take."""

    default_detail = "Strings must be valid Unicode."
    default_code = "invalid_unicode"


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing documents too deep to walk and strings that aren't text.

    The body's size is bounded before this runs: Django refuses a body larger than
    DATA_UPLOAD_MAX_MEMORY_SIZE with 413 (project.middleware).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        """Parse, then walk the result once without recursion, checking depth and strings."""
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            # json's C scanner gives up cleanly on a document deeper than the stack.
            raise JSONTooDeep() from None
        check(data)
        return data


def check(data) -> None:
    """Raise JSONTooDeep or InvalidUnicode for a parsed document that needs it."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise JSONTooDeep()
            items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
            for key, item in items:
                if key is not None:
                    _check_text(key)
                pending.append((item, depth + 1))


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise InvalidUnicode() from None
