"""The shipped catalogue: loaded by the data migration, reloadable idempotently, staff-owned is_active."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from markets.catalogue import CATALOGUE_PATH
from markets.models import Asset

pytestmark = pytest.mark.django_db


def test_the_migration_loads_the_top_50_with_real_ids():
    assert Asset.objects.count() == 50
    btc, eth, usdt = (Asset.objects.get(symbol=s) for s in ("BTC", "ETH", "USDT"))
    assert (btc.coingecko_id, btc.coinbase_product, btc.rank) == ("bitcoin", "BTC-USD", 1)
    assert (eth.coingecko_id, eth.coinbase_product) == ("ethereum", "ETH-USD")
    assert (usdt.coingecko_id, usdt.coinbase_product, usdt.is_stablecoin) == ("tether", None, True)
    assert Asset.objects.get(symbol="AVAX").coingecko_id == "avalanche-2"


def test_the_catalogue_file_is_consistent():
    assets = json.loads(CATALOGUE_PATH.read_text())["assets"]
    assert len({a["symbol"] for a in assets}) == len({a["coingecko_id"] for a in assets}) == len(assets) == 50
    assert sorted(a["rank"] for a in assets) == list(range(1, 51))
    for a in assets:
        if a["coinbase_product"]:
            assert a["coinbase_product"] == f"{a['symbol']}-USD" and "usd" in a["coinbase_quotes"]


def test_coinbase_products_exist_only_for_listed_quotes():
    btc, avax, bnb = (Asset.objects.get(symbol=s) for s in ("BTC", "AVAX", "BNB"))
    assert [btc.coinbase_product_for(q) for q in ("usd", "eur", "gbp")] == ["BTC-USD", "BTC-EUR", "BTC-GBP"]
    assert [avax.coinbase_product_for(q) for q in ("usd", "eur")] == ["AVAX-USD", None]
    assert bnb.coinbase_product_for("usd") is None


def test_the_command_is_idempotent_and_keeps_staff_choices(capsys):
    Asset.objects.filter(symbol="DOGE").update(is_active=False, rank=99)
    Asset.objects.filter(symbol="FET").delete()
    call_command("markets_catalogue_load")
    assert "1 created, 0 updated, 50 assets" in capsys.readouterr().out
    call_command("markets_catalogue_load")
    assert "0 created, 0 updated" in capsys.readouterr().out
    doge = Asset.objects.get(symbol="DOGE")
    assert (doge.is_active, doge.rank) == (False, 99)
    call_command("markets_catalogue_load", "--update")
    doge.refresh_from_db()
    assert (doge.is_active, doge.rank) == (False, 8)  # ids and ranks refreshed, the staff's switch kept
