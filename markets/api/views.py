"""Market endpoints. Public (no authentication, so a bad token never 401s public data).

The ticker and price endpoints are the hot path: they serve pre-encoded bytes from the snapshot
with an ETag computed at ingest, bypassing DRF's request wrapping and rendering (`BytesView`);
they stay APIView subclasses only so drf-spectacular documents them.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotModified
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from coinlink.contract import error_responses
from coinlink.errors import DomainError, NotFound, ServiceUnavailable, json_error, response_for_exception
from markets import selectors, snapshot
from markets.api import params
from markets.api.serializers import (
    AssetPageSerializer,
    HistorySerializer,
    LegacyBitcoinSerializer,
    MoversSerializer,
    StatsSerializer,
    TickerListSerializer,
    TickerSerializer,
)
from markets.history import history_get
from markets.vocabulary import DEFAULT_QUOTE, INTERVALS, PERIODS, QUOTES

MAX_TICKER_LIMIT = 250
MAX_MOVERS_LIMIT = 50

VS = OpenApiParameter("vs", str, enum=list(QUOTES), default=DEFAULT_QUOTE, description="Quote currency.")
IF_NONE_MATCH = OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, required=False)


_ERRORS = {
    304: "Not modified (the If-None-Match ETag still matches).",
    400: "Invalid parameter.",
    404: "Unknown symbol.",
    429: "Too many requests (see Retry-After).",
    503: "No price received yet for this asset.",
}
_errors = functools.partial(error_responses, _ERRORS)


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def cached_response(request, body: bytes, etag: str | None = None) -> HttpResponse:
    """JSON bytes with ETag and Cache-Control; 304 when If-None-Match matches."""
    if etag is None:
        etag = '"' + hashlib.blake2b(body, digest_size=10).hexdigest() + '"'
    header = request.META.get("HTTP_IF_NONE_MATCH")
    response: HttpResponse
    if header is not None and _etag_matches(header, etag):
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={settings.MARKET_POLL_SECONDS}"
    return response


def json_bytes(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class BytesView(APIView):
    """A documented APIView whose requests skip DRF: plain Django request in, HttpResponse out."""

    authentication_classes = []
    permission_classes = [AllowAny]
    get: Callable[..., HttpResponse]  # every BytesView defines it

    def dispatch(self, request, *args, **kwargs):
        self.args, self.kwargs, self.request = args, kwargs, request
        if request.method in ("GET", "HEAD"):
            try:
                return self.get(request, *args, **kwargs)
            except Exception as exc:
                error = response_for_exception(exc)
                if error is None:
                    raise
                return error
        if request.method == "OPTIONS":
            response = HttpResponse(status=200)
        else:
            response = json_error(405, f'Method "{request.method}" not allowed.', "method_not_allowed")
        response["Allow"] = "GET, HEAD, OPTIONS"
        return response


class TickerView(BytesView):
    @extend_schema(
        tags=["market"],
        summary="Latest tickers, ordered by rank",
        parameters=[
            OpenApiParameter("symbols", str, description="Comma list, e.g. BTC,ETH (at most 100)."),
            OpenApiParameter("limit", int, description=f"1-{MAX_TICKER_LIMIT}."),
            VS,
            IF_NONE_MATCH,
        ],
        responses={200: TickerListSerializer, **_errors(304, 400, 429)},
    )
    def get(self, request):
        query = request.GET
        quote = params.quote(query) if query else "usd"
        symbols = params.symbols(query) if query else None
        limit = params.limit(query, default=None, maximum=MAX_TICKER_LIMIT) if query else None
        entry = snapshot.snapshot_get(quote=quote)
        stale = snapshot.stale_symbols(entry)
        if symbols is None and limit is None and not stale:
            return cached_response(request, entry["body"], entry["etag"])
        order = selectors.ticker_order(entry=entry, symbols=symbols, limit=limit)
        return cached_response(request, snapshot.list_body(entry, order, stale)[0])


class PriceView(BytesView):
    @extend_schema(
        tags=["market"],
        summary="Ticker of one asset",
        parameters=[VS, IF_NONE_MATCH],
        responses={200: TickerSerializer, **_errors(304, 400, 404, 429, 503)},
    )
    def get(self, request, symbol: str):
        quote = params.quote(request.GET) if request.GET else "usd"
        wanted = params.path_symbol(symbol)
        entry = snapshot.snapshot_get(quote=quote)
        if wanted is None or wanted not in entry["frags"]:
            raise _missing(wanted)
        stale = snapshot.stale_symbols(entry)
        tag = entry["etags"][wanted] + ("-s" if wanted in stale else "")
        return cached_response(request, snapshot.fragment(entry, wanted, stale), f'"{tag}"')


def _missing(symbol: str | None) -> DomainError:
    if symbol is not None and selectors.symbols_known(symbols=[symbol]):
        return ServiceUnavailable(
            f"No price for {symbol} has been received yet.",
            code="market_data_unavailable",
            retry_after=settings.MARKET_POLL_SECONDS,
        )
    return NotFound("Unknown symbol.", code="unknown_symbol")


class HistoryView(BytesView):
    @extend_schema(
        tags=["market"],
        summary="OHLC candles of one asset, oldest first",
        description="Intervals 5m (periods 1d, 7d), 1h (1d to 90d) and 1d (7d to 1y); other combinations are 400. "
        "An empty series is never fetched in the request: a backfill is queued, and the answer (what is stored) "
        "carries `X-History-Backfill: pending` until it has run.",
        parameters=[
            OpenApiParameter("interval", str, enum=list(INTERVALS), default="1h"),
            OpenApiParameter("period", str, enum=list(PERIODS), default="7d"),
            VS,
            IF_NONE_MATCH,
            OpenApiParameter(
                "X-History-Backfill",
                str,
                OpenApiParameter.HEADER,
                enum=["pending"],
                response=[200],
                description="Present while a backfill of this empty series is queued or running.",
            ),
        ],
        responses={200: HistorySerializer, **_errors(304, 400, 404, 429)},
    )
    def get(self, request, symbol: str):
        query = request.GET
        quote = params.quote(query)
        interval = params.choice(query, "interval", INTERVALS, "1h")
        period = params.choice(query, "period", PERIODS, "7d")
        wanted = params.path_symbol(symbol)
        asset = selectors.asset_active_get(symbol=wanted) if wanted else None
        if asset is None:
            raise NotFound("Unknown symbol.", code="unknown_symbol")
        body, etag, pending = history_get(asset=asset, quote=quote, interval=interval, period=period)
        response = cached_response(request, body, etag)
        if pending:
            response["X-History-Backfill"] = "pending"
        return response


class StatsView(BytesView):
    @extend_schema(
        tags=["market"],
        summary="Market totals",
        parameters=[VS, IF_NONE_MATCH],
        responses={200: StatsSerializer, **_errors(304, 400, 429)},
    )
    def get(self, request):
        return cached_response(request, json_bytes(selectors.market_stats(quote=params.quote(request.GET))))


class MoversView(BytesView):
    @extend_schema(
        tags=["market"],
        summary="Biggest 24 h gainers and losers",
        parameters=[OpenApiParameter("limit", int, default=5, description=f"1-{MAX_MOVERS_LIMIT}."), VS, IF_NONE_MATCH],
        responses={200: MoversSerializer, **_errors(304, 400, 429)},
    )
    def get(self, request):
        quote = params.quote(request.GET)
        limit = params.limit(request.GET, default=5, maximum=MAX_MOVERS_LIMIT)
        return cached_response(request, json_bytes(selectors.market_movers(quote=quote, limit=limit)))


class AssetsView(APIView):
    """The catalogue with each asset's ticker; paginated through DRF (not a hot path)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["market"],
        summary="Tracked assets with their tickers",
        parameters=[
            OpenApiParameter("search", str, description="Matches symbol, name or CoinGecko id."),
            OpenApiParameter("ordering", str, enum=list(selectors.ASSET_ORDERINGS), default="rank"),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int, description="At most 100."),
            VS,
            IF_NONE_MATCH,
        ],
        responses={200: AssetPageSerializer, **_errors(304, 400, 404, 429)},
    )
    def get(self, request):
        query = request.query_params
        quote = params.quote(query)
        ordering = params.choice(query, "ordering", tuple(selectors.ASSET_ORDERINGS), "rank")
        search = query.get("search", "").strip()
        if len(search) > 50:
            raise params.invalid("search", "at most 50 characters.")
        assets = selectors.asset_list(quote=quote, search=search, ordering=ordering)
        page = self.paginator.paginate_queryset(assets, request, view=self)
        results = [selectors.asset_dict(asset=a, quote=quote) for a in page]
        body = json_bytes(self.paginator.get_paginated_response(results).data)
        return cached_response(request, body)

    @property
    def paginator(self):
        if not hasattr(self, "_paginator"):
            from coinlink.pagination import PageNumberPagination

            self._paginator = PageNumberPagination()
        return self._paginator


class LegacyBitcoinPriceView(BytesView):
    @extend_schema(
        tags=["market"],
        summary="Legacy BTC price for the SPA",
        description="`change_24h` is the percent change (legacy naming); prefer /api/v2/market/BTC/price.",
        parameters=[IF_NONE_MATCH],
        responses={200: LegacyBitcoinSerializer, **_errors(304, 429, 503)},
    )
    def get(self, request):
        from_cache = snapshot.snapshot_cached(quote="usd")
        entry = snapshot.snapshot_get(quote="usd")
        if "BTC" not in entry["tickers"]:
            raise _missing("BTC")
        ticker, extra = entry["tickers"]["BTC"], entry["extra"]["BTC"]
        body = {
            "data": {
                "symbol": "BTC",
                "price": ticker["price"],
                "change_24h": ticker["change_percent_24h"],
                "volume": ticker["volume_24h"],
                "timestamp": ticker["last_updated"],
                "bid": extra["bid"],
                "ask": extra["ask"],
            },
            "timestamp": entry["timestamp"],
            "cached": from_cache,
        }
        return cached_response(request, json_bytes(body))
