from django.urls import path

from markets.api import views

urlpatterns = [
    path("v2/market/ticker", views.TickerView.as_view(), name="market-ticker"),
    path("v2/market/assets", views.AssetsView.as_view(), name="market-assets"),
    path("v2/market/stats", views.StatsView.as_view(), name="market-stats"),
    path("v2/market/movers", views.MoversView.as_view(), name="market-movers"),
    path("v2/market/<str:symbol>/price", views.PriceView.as_view(), name="market-price"),
    path("v2/market/<str:symbol>/history", views.HistoryView.as_view(), name="market-history"),
    path("bitcoin/price", views.LegacyBitcoinPriceView.as_view(), name="legacy-bitcoin-price"),
]
