from django.conf import settings
from django.contrib import admin

from markets import snapshot
from markets.models import Asset, Candle, ProviderStatus, Ticker
from markets.providers.breaker import CircuitBreaker
from markets.selectors import active_symbols_forget


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ("symbol", "name", "rank", "coingecko_id", "coinbase_product", "is_active", "is_stablecoin")
    list_filter = ("is_active", "is_stablecoin", ("coinbase_product", admin.EmptyFieldListFilter))
    list_editable = ("rank", "is_active")
    search_fields = ("symbol", "name", "coingecko_id")
    ordering = ("rank",)

    def save_model(self, request, obj, form, change):
        obj.symbol = obj.symbol.upper()
        super().save_model(request, obj, form, change)
        _catalogue_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        _catalogue_changed()


def _catalogue_changed() -> None:
    """A disabled asset leaves the served tickers now, not at the next ingest."""
    active_symbols_forget()
    for quote in settings.MARKET_QUOTES:
        snapshot.snapshot_build(quote=quote)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Ticker)
class TickerAdmin(ReadOnlyAdmin):
    list_display = ("asset", "quote", "price", "change_percent_24h", "source", "last_updated", "fetched_at")
    list_filter = ("quote", "source")
    search_fields = ("asset__symbol",)
    list_select_related = ("asset",)


@admin.register(Candle)
class CandleAdmin(ReadOnlyAdmin):
    list_display = ("asset", "quote", "interval", "open_time", "open", "high", "low", "close", "volume", "source")
    list_filter = ("interval", "quote", "source")
    search_fields = ("asset__symbol",)
    list_select_related = ("asset",)
    date_hierarchy = "open_time"


@admin.register(ProviderStatus)
class ProviderStatusAdmin(ReadOnlyAdmin):
    list_display = (
        "provider", "breaker_now", "last_success", "last_error_at", "consecutive_failures", "short_error",
    )  # fmt: skip
    readonly_fields = (
        "provider", "breaker_now", "breaker_state", "last_success", "last_error", "last_error_at",
        "consecutive_failures", "updated_at",
    )  # fmt: skip

    @admin.display(description="breaker (live)")
    def breaker_now(self, obj):
        return CircuitBreaker(obj.provider).state()

    @admin.display(description="last error")
    def short_error(self, obj):
        return obj.last_error[:120]
