"""Market data: the asset catalogue, the latest ticker per asset and quote, candles, provider health."""

from __future__ import annotations

from typing import TypedDict

from django.db import models
from django.utils import timezone

from markets.vocabulary import QUOTES


class Digits(TypedDict):
    """A DecimalField's size, typed so `DecimalField(**PRICE)` is checked like the spelt-out call."""

    max_digits: int
    decimal_places: int


# Prices run from 1e-8 (memecoins) to 1e7; 24 digits with 12 decimals covers 1e-12 .. 1e12.
PRICE: Digits = {"max_digits": 24, "decimal_places": 12}
# Market caps and volumes up to 1e15 in the quote currency, with cents.
AMOUNT: Digits = {"max_digits": 22, "decimal_places": 2}
PERCENT: Digits = {"max_digits": 14, "decimal_places": 4}
# Candle volumes are in the base asset (Coinbase); fractional coins, and 1e13+ for tiny-priced tokens.
VOLUME: Digits = {"max_digits": 30, "decimal_places": 8}

QUOTE_CHOICES = [(q, q.upper()) for q in QUOTES]
INTERVAL_CHOICES = (("5m", "5 minutes"), ("1h", "1 hour"), ("1d", "1 day"))
PROVIDERS = (("coingecko", "CoinGecko"), ("coinbase", "Coinbase"))
# A ticker's source also names the live feed; provider health (ProviderStatus) stays per REST provider.
SOURCES = (*PROVIDERS, ("coinbase_stream", "Coinbase stream"))


class Asset(models.Model):
    """A tradable asset we track; the catalogue ships as markets/data/catalogue.json."""

    symbol = models.CharField(max_length=15, unique=True)
    name = models.CharField(max_length=100)
    coingecko_id = models.CharField(max_length=100, unique=True)
    coinbase_product = models.CharField(  # noqa: DJ001 - null means "not on Coinbase", as the API shows it
        max_length=30, null=True, blank=True, help_text="Coinbase Exchange USD product id, e.g. BTC-USD."
    )
    coinbase_quotes = models.CharField(
        max_length=20, default="usd", blank=True, help_text="Comma list of quotes Coinbase lists, e.g. usd,eur,gbp."
    )
    rank = models.PositiveIntegerField(default=1000, db_index=True)
    is_active = models.BooleanField(default=True)
    is_stablecoin = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("rank", "symbol")

    def __str__(self) -> str:
        return f"{self.symbol} ({self.name})"

    def coinbase_product_for(self, quote: str) -> str | None:
        """The Coinbase product quoting this asset in `quote`, when Coinbase really lists it."""
        if not self.coinbase_product:
            return None
        quotes = {q.strip() for q in (self.coinbase_quotes or "").split(",") if q.strip()}
        if quote not in quotes:
            return None
        return f"{self.coinbase_product.rsplit('-', 1)[0]}-{quote.upper()}"


class Ticker(models.Model):
    """The latest accepted price of one asset in one quote currency."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="tickers")
    quote = models.CharField(max_length=3, choices=QUOTE_CHOICES)
    price = models.DecimalField(**PRICE)
    change_24h = models.DecimalField(**PRICE, null=True, blank=True)
    change_percent_24h = models.DecimalField(**PERCENT, null=True, blank=True)
    volume_24h = models.DecimalField(**AMOUNT, null=True, blank=True)
    market_cap = models.DecimalField(**AMOUNT, null=True, blank=True)
    bid = models.DecimalField(**PRICE, null=True, blank=True)
    ask = models.DecimalField(**PRICE, null=True, blank=True)
    source = models.CharField(max_length=20, choices=SOURCES)
    last_updated = models.DateTimeField(help_text="When the provider says the price was current.")
    fetched_at = models.DateTimeField(help_text="When our ingest received it; drives staleness.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=("asset", "quote"), name="markets_ticker_asset_quote")]

    def __str__(self) -> str:
        return f"{self.asset_id}/{self.quote} {self.price}"


class Candle(models.Model):
    """One OHLC(V) bar. Volume is null where the source has no per-interval volume."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="candles")
    quote = models.CharField(max_length=3, choices=QUOTE_CHOICES)
    interval = models.CharField(max_length=3, choices=INTERVAL_CHOICES)
    open_time = models.DateTimeField()
    open = models.DecimalField(**PRICE)
    high = models.DecimalField(**PRICE)
    low = models.DecimalField(**PRICE)
    close = models.DecimalField(**PRICE)
    volume = models.DecimalField(**VOLUME, null=True, blank=True, help_text="In the base asset.")
    source = models.CharField(max_length=20)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("asset", "quote", "interval", "open_time"), name="markets_candle_asset_quote_interval_time"
            )
        ]

    def __str__(self) -> str:
        return f"{self.asset_id}/{self.quote} {self.interval} {self.open_time:%Y-%m-%d %H:%M}"


class ProviderStatus(models.Model):
    """Health of one upstream provider as the ingest last saw it (mirrors the shared breaker)."""

    class Breaker(models.TextChoices):
        CLOSED = "closed", "closed"
        OPEN = "open", "open"
        HALF_OPEN = "half_open", "half-open"

    provider = models.CharField(max_length=20, choices=PROVIDERS, unique=True)
    last_success = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    breaker_state = models.CharField(max_length=10, choices=Breaker.choices, default=Breaker.CLOSED)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "provider statuses"

    def __str__(self) -> str:
        return f"{self.provider}: {self.breaker_state}"
