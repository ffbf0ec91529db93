from django.urls import include, path

from markets.api import views

# Grouped under their common prefix, so a path of another app fails one prefix instead of each route
# (URL resolution tries every pattern in order; docs/performance.md).
urlpatterns = [
    path(
        "v2/market/",
        include(
            [
                path("ticker", views.TickerView.as_view(), name="market-ticker"),
                path("assets", views.AssetsView.as_view(), name="market-assets"),
                path("stats", views.StatsView.as_view(), name="market-stats"),
                path("movers", views.MoversView.as_view(), name="market-movers"),
                path("<str:symbol>/price", views.PriceView.as_view(), name="market-price"),
                path("<str:symbol>/history", views.HistoryView.as_view(), name="market-history"),
            ]
        ),
    ),
    path("bitcoin/price", views.LegacyBitcoinPriceView.as_view(), name="legacy-bitcoin-price"),
]
