"""The API's JSON parser: DRF's, with the nesting depth bounded before the JSON decoder runs.

``'[' * 1000 + ']' * 1000`` made Python's json decoder raise RecursionError, which DRF does not
catch: a 500 HTML page instead of the API's JSON error. No Winback body is nested more than a few
levels, so anything deeper than ``MAX_DEPTH`` is refused as a parse error (400) by a linear scan of
the text, before the decoder sees it.

Kept apart from ``winback.api``: DRF imports its default parser classes while its own views module
is being imported, and ``winback.api`` imports those views.
"""

from __future__ import annotations

import re
from itertools import accumulate

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json

MAX_DEPTH = 32

# A JSON string, its escapes included. Removed left to right, this finds the strings the decoder
# finds up to the first invalid character (where the decoder stops anyway). An unterminated string
# runs to the end of the text, so every match succeeds at its first try and the scan stays linear
# (no retry from each escaped quote of a string that never closes).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """How deep ``text`` nests arrays and objects (brackets inside strings do not count).

    Every step runs in C (regular expressions, ``accumulate``): 2.5 MB of ``[],`` take ~0.35 s
    here, a third of what decoding them takes; 2.5 MB of strings ~0.01 s."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def json_depth_check(text: str, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``ParseError`` if ``text`` nests arrays and objects deeper than ``max_depth``."""
    if text.count("[") + text.count("{") <= max_depth:
        return  # too few brackets to be too deep: every ordinary body
    if json_depth(text) > max_depth:
        raise ParseError(f"JSON parse error - nested deeper than {max_depth} levels.")


class BoundedJSONParser(JSONParser):
    """``application/json`` with at most ``MAX_DEPTH`` levels of arrays and objects."""

    max_depth = MAX_DEPTH

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        json_depth_check(text, max_depth=self.max_depth)
        try:
            return json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
