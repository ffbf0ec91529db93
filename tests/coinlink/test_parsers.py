import io

import pytest
from rest_framework.exceptions import ParseError

from coinlink.parsers import MAX_DEPTH, StrictJSONParser


def parse(raw: bytes):
    return StrictJSONParser().parse(io.BytesIO(raw))


def test_it_parses_plain_json_with_exact_decimals():
    from decimal import Decimal

    assert parse(b'{"price": 0.1, "n": 3}') == {"price": Decimal("0.1"), "n": 3}


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": "\\u0000"}',
        b'{"a\\u0000": 1}',
        b"\xff\xfe{}",
        b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
        b"[" * 100_000,
        b'{"n": 1' + b"0" * 5000 + b"}",
    ],
)
def test_it_turns_hostile_bodies_into_parse_errors(raw):
    with pytest.raises(ParseError):
        parse(raw)


def test_an_empty_body_is_an_empty_object():
    assert parse(b"  ") == {}
