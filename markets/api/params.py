"""Query-parameter parsing for the market endpoints: strict, bounded, errors in the contract shape."""

from __future__ import annotations

import re
from typing import overload

from django.conf import settings

from coinlink.errors import DomainError
from markets.vocabulary import DEFAULT_QUOTE, SYMBOL, SYMBOL_MAX_LENGTH

MAX_SYMBOLS = 100
LIMIT = re.compile(r"^\d{1,6}$")


def invalid(field: str, message: str) -> DomainError:
    return DomainError(f"{field}: {message}", code="validation_error", errors={field: [message]})


def quote(params) -> str:
    value = params.get("vs", DEFAULT_QUOTE).strip().lower()
    if value not in settings.MARKET_QUOTES:
        raise invalid("vs", f"must be one of {', '.join(settings.MARKET_QUOTES)}.")
    return value


@overload
def limit(params, *, default: int, maximum: int, name: str = "limit") -> int: ...
@overload
def limit(params, *, default: None, maximum: int, name: str = "limit") -> int | None: ...
def limit(params, *, default: int | None, maximum: int, name: str = "limit") -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not LIMIT.match(raw) or not 1 <= int(raw) <= maximum:
        raise invalid(name, f"must be a whole number from 1 to {maximum}.")
    return int(raw)


def symbols(params) -> list[str] | None:
    raw = params.get("symbols")
    if raw is None:
        return None
    if len(raw) > MAX_SYMBOLS * (SYMBOL_MAX_LENGTH + 1):
        raise invalid("symbols", f"at most {MAX_SYMBOLS} symbols.")
    items = [s.strip().upper() for s in raw.split(",") if s.strip()]
    if not items:
        raise invalid("symbols", "give at least one symbol, e.g. BTC,ETH.")
    if len(items) > MAX_SYMBOLS:
        raise invalid("symbols", f"at most {MAX_SYMBOLS} symbols.")
    bad = [s for s in items if not SYMBOL.match(s)]
    if bad:
        raise invalid("symbols", f"symbols are 1-{SYMBOL_MAX_LENGTH} letters or digits, comma separated.")
    return list(dict.fromkeys(items))


def choice(params, name: str, choices: tuple[str, ...], default: str) -> str:
    value = params.get(name, default)
    if value not in choices:
        raise invalid(name, f"must be one of {', '.join(choices)}.")
    return value


def path_symbol(value: str) -> str | None:
    """The upper-cased symbol from the URL, or None when it cannot be a symbol (then: 404)."""
    upper = value.upper()
    return upper if SYMBOL.match(upper) else None
