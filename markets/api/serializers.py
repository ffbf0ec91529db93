"""Response shapes of the market endpoints, for the OpenAPI schema (the hot path writes pre-encoded bytes)."""

from rest_framework import serializers

from markets.models import SOURCES
from markets.vocabulary import INTERVALS


class TickerSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    name = serializers.CharField()
    price = serializers.FloatField()
    change_24h = serializers.FloatField(allow_null=True, help_text="Absolute change in the quote currency.")
    change_percent_24h = serializers.FloatField(allow_null=True, help_text="Percent change over 24 h.")
    volume_24h = serializers.FloatField(allow_null=True, help_text="24 h volume in the quote currency.")
    market_cap = serializers.FloatField(allow_null=True)
    rank = serializers.IntegerField()
    last_updated = serializers.DateTimeField()
    source = serializers.ChoiceField(  # type: ignore[assignment]  # contract field name; DRF's metaclass takes it off the class
        choices=[name for name, _ in SOURCES], help_text="coinbase_stream: a live tick."
    )
    stale = serializers.BooleanField(help_text="True when this price is older than the staleness limit.")


class TickerListSerializer(serializers.Serializer):
    data = TickerSerializer(many=True)  # type: ignore[assignment]  # contract field name; DRF's metaclass takes it off the class
    timestamp = serializers.DateTimeField()
    stale = serializers.BooleanField()


class AssetSerializer(TickerSerializer):
    id = serializers.IntegerField()
    coingecko_id = serializers.CharField()
    coinbase_product = serializers.CharField(allow_null=True)
    is_active = serializers.BooleanField()
    price = serializers.FloatField(allow_null=True)
    last_updated = serializers.DateTimeField(allow_null=True)
    source = serializers.CharField(allow_null=True)  # type: ignore[assignment]  # contract field name; DRF's metaclass takes it off the class


class AssetPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AssetSerializer(many=True)


class CandleSerializer(serializers.Serializer):
    time = serializers.DateTimeField(help_text="Open time of the bar.")
    open = serializers.FloatField()
    high = serializers.FloatField()
    low = serializers.FloatField()
    close = serializers.FloatField()
    volume = serializers.FloatField(allow_null=True, help_text="Null where the source has no per-bar volume.")


class HistorySerializer(serializers.Serializer):
    symbol = serializers.CharField()
    interval = serializers.ChoiceField(choices=list(INTERVALS))
    vs = serializers.CharField()
    candles = CandleSerializer(many=True)


class StatsSerializer(serializers.Serializer):
    total_market_cap = serializers.FloatField(allow_null=True)
    total_volume_24h = serializers.FloatField(allow_null=True)
    btc_dominance = serializers.FloatField(allow_null=True, help_text="BTC market cap / total market cap, percent.")
    assets_tracked = serializers.IntegerField()
    last_updated = serializers.DateTimeField(allow_null=True)
    stale = serializers.BooleanField()


class MoversSerializer(serializers.Serializer):
    gainers = TickerSerializer(many=True)
    losers = TickerSerializer(many=True)


class LegacyBitcoinDataSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    price = serializers.FloatField()
    change_24h = serializers.FloatField(allow_null=True, help_text="Percent change over 24 h (legacy naming).")
    volume = serializers.FloatField(allow_null=True)
    timestamp = serializers.DateTimeField()
    bid = serializers.FloatField(allow_null=True)
    ask = serializers.FloatField(allow_null=True)


class LegacyBitcoinSerializer(serializers.Serializer):
    data = LegacyBitcoinDataSerializer()  # type: ignore[assignment]  # contract field name; DRF's metaclass takes it off the class
    timestamp = serializers.DateTimeField()
    cached = serializers.BooleanField()
