"""A JSON parser that turns hostile bodies into 400s instead of 500s."""

from __future__ import annotations

import json
from decimal import Decimal

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _check(value) -> None:
    """Depth and NUL checks without recursion, so a deep body cannot blow the stack."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.")
        if isinstance(item, str):
            if "\x00" in item:
                raise ParseError("NUL characters are not allowed.")
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    raise ParseError("NUL characters are not allowed.")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


class StrictJSONParser(JSONParser):
    """Strict UTF-8, no NaN/Infinity, decimals kept exact, bounded depth, no NUL characters."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("Request body is not valid UTF-8.") from None
        if not text.strip():
            return {}
        try:
            data = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
        except RecursionError:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.") from None
        except ValueError as exc:
            raise ParseError(f"Malformed JSON: {exc}") from None
        _check(data)
        return data
