"""One market vocabulary: the schema, the REST parameters, alerts and the feed agree on symbols and tickers."""

from __future__ import annotations

import json
import re

import pytest

from markets.vocabulary import SYMBOL_MAX_LENGTH, Ticker

pytestmark = pytest.mark.django_db


def test_the_schemas_ticker_names_exactly_the_fields_every_producer_renders(anon_client):
    schema = json.loads(anon_client.get("/api/schema?format=json").content)
    assert set(schema["components"]["schemas"]["Ticker"]["properties"]) == set(Ticker.__annotations__)


@pytest.mark.parametrize("symbol", ["B" * (SYMBOL_MAX_LENGTH + 1), "\u212a"])
def test_a_symbol_the_catalogue_cannot_hold_is_refused_by_the_ticker_list(anon_client, symbol):
    response = anon_client.get("/api/v2/market/ticker", {"symbols": symbol})
    assert response.status_code == 400 and list(response.json()["errors"]) == ["symbols"]


def test_the_longest_symbol_the_catalogue_holds_is_accepted(anon_client):
    assert anon_client.get("/api/v2/market/ticker", {"symbols": "B" * SYMBOL_MAX_LENGTH}).status_code == 200


def test_the_schemas_alert_symbol_pattern_admits_the_lower_case_symbols_the_api_takes(anon_client):
    schema = json.loads(anon_client.get("/api/schema?format=json").content)
    pattern = schema["components"]["schemas"]["AlertRequest"]["properties"]["symbol"]["pattern"]
    assert re.match(pattern, "btc") and not re.match(pattern, "B" * (SYMBOL_MAX_LENGTH + 1))
