"""Upstream market-data providers, one module each; `providers_ordered()` puts the primary first."""

from __future__ import annotations

from django.conf import settings


def providers_ordered() -> list:
    from markets.providers.coinbase import Coinbase
    from markets.providers.coingecko import CoinGecko

    providers = [CoinGecko(), Coinbase()]
    if settings.MARKET_PRIMARY_PROVIDER == "coinbase":
        providers.reverse()
    return providers


def provider_serves(provider, asset, quote: str) -> bool:
    """Whether `provider` can price `asset` in `quote` (Coinbase only where the product exists)."""
    if provider.name == "coinbase":
        return asset.coinbase_product_for(quote) is not None
    return bool(asset.coingecko_id)
