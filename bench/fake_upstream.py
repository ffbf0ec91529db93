"""A fake CoinGecko + Coinbase for load tests, served over HTTP on loopback (never the real APIs).

Every body is built from a recorded response in bench/fixtures/ (copied from the shared upstream
fixtures): the fixture gives the field set and order, the values come from a synthetic random walk
that takes one step every `--step-seconds`, so each ingest poll sees moved prices. Nothing here is
real market data; it only has the real shape.

    .venv/bin/python bench/fake_upstream.py --port 18099 [--step-seconds 1]

Routes (CoinGecko under /api/v3, Coinbase Exchange under /exchange):
  GET /api/v3/ping, /api/v3/simple/price, /api/v3/coins/markets, /api/v3/coins/{id}/ohlc,
      /api/v3/coins/{id}/market_chart
  GET /exchange/products/{BASE-QUOTE}/ticker | /stats | /candles
  GET /_bench/stats   hit counts per route (for the load report)
So: COINGECKO_BASE_URL=http://127.0.0.1:18099/api/v3 COINBASE_EXCHANGE_BASE_URL=http://127.0.0.1:18099/exchange
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
CATALOGUE = HERE.parent / "markets" / "data" / "catalogue.json"
# Fiat cross rates of the synthetic world (fixed; only the crypto prices walk).
FIAT = {"usd": 1.0, "eur": 0.92, "gbp": 0.79}
STEP_SIGMA = 0.002  # 0.2 % per step, so alerts near the price cross now and then


def _fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Market:
    """Prices of the catalogue's assets, a seeded random walk advanced lazily to the current step."""

    def __init__(self, *, step_seconds: float, seed: int = 7):
        self.step_seconds = step_seconds
        self.rng = random.Random(seed)
        assets = json.loads(CATALOGUE.read_text())["assets"]
        self.assets = sorted(assets, key=lambda a: a["rank"])
        self.by_id = {a["coingecko_id"]: a for a in self.assets}
        self.by_symbol = {a["symbol"]: a for a in self.assets}
        self.open_24h: dict[str, float] = {}
        self.price: dict[str, float] = {}
        for a in self.assets:
            if a.get("is_stablecoin"):
                base = 1.0
            else:
                # Log-spread over 0.05 .. 60,000 by rank: synthetic, only plausible in magnitude.
                base = 60_000 * math.exp(-0.27 * (a["rank"] - 1)) * self.rng.uniform(0.6, 1.4)
            self.open_24h[a["symbol"]] = base
            self.price[a["symbol"]] = base * self.rng.uniform(0.95, 1.05)
        self.step = self._step_now()
        self.stepped_at = time.time()

    def _step_now(self) -> int:
        return int(time.time() / self.step_seconds)

    def advance(self) -> None:
        now_step = self._step_now()
        steps = min(now_step - self.step, 100)
        for _ in range(max(0, steps)):
            for a in self.assets:
                sym = a["symbol"]
                if a.get("is_stablecoin"):
                    self.price[sym] = 1.0 + self.rng.uniform(-0.0005, 0.0005)
                else:
                    self.price[sym] *= math.exp(self.rng.gauss(0.0, STEP_SIGMA))
        if steps > 0:
            self.step = now_step
            self.stepped_at = time.time()

    def quote(self, symbol: str, vs: str) -> dict:
        self.advance()
        rate = FIAT[vs]
        price = self.price[symbol] * rate
        opened = self.open_24h[symbol] * rate
        rank = self.by_symbol[symbol]["rank"]
        # Market cap falls off with rank from ~1e12 (in USD); supply follows from it.
        supply = 1e12 * math.exp(-0.15 * (rank - 1)) / self.open_24h[symbol]
        return {
            "price": price,
            "open": opened,
            "change": price - opened,
            "change_pct": (price - opened) / opened * 100.0,
            "high": max(price, opened) * 1.01,
            "low": min(price, opened) * 0.99,
            "market_cap": price * supply,
            "volume": price * supply * 0.04,
            "supply": supply,
        }


class App:
    def __init__(self, market: Market):
        self.market = market
        self.hits: Counter[str] = Counter()
        self.coin_template = _fixture("coingecko_coins_markets_usd.json")[0]
        self.ticker_template = _fixture("coinbase_exchange_ticker.json")
        self.stats_template = _fixture("coinbase_exchange_stats.json")
        self.ping = _fixture("coingecko_ping.json")
        self.trade_id = int(self.ticker_template["trade_id"])

    # --- CoinGecko ------------------------------------------------------------------------------
    def coins_markets(self, q: dict) -> tuple[int, object]:
        vs = q.get("vs_currency", "").lower()
        if vs not in FIAT:
            return 422, {"error": "invalid vs_currency"}
        ids = [i.strip() for i in q.get("ids", "").split(",") if i.strip()]
        assets = [self.market.by_id[i] for i in ids if i in self.market.by_id] if ids else self.market.assets
        per_page = min(int(q.get("per_page", "100") or 100), 250)
        page = max(int(q.get("page", "1") or 1), 1)
        assets = assets[(page - 1) * per_page : page * per_page]
        now = _iso(time.time())
        out = []
        for a in assets:
            v = self.market.quote(a["symbol"], vs)
            coin = copy.copy(self.coin_template)
            coin.update(
                id=a["coingecko_id"],
                symbol=a["symbol"].lower(),
                name=a["name"],
                current_price=round(v["price"], 8),
                market_cap=round(v["market_cap"]),
                market_cap_rank=a["rank"],
                fully_diluted_valuation=round(v["market_cap"] * 1.1),
                total_volume=round(v["volume"]),
                high_24h=round(v["high"], 8),
                low_24h=round(v["low"], 8),
                price_change_24h=round(v["change"], 8),
                price_change_percentage_24h=round(v["change_pct"], 5),
                market_cap_change_24h=round(v["market_cap"] * v["change_pct"] / 100),
                market_cap_change_percentage_24h=round(v["change_pct"], 5),
                circulating_supply=round(v["supply"], 1),
                last_updated=now,
            )
            if "price_change_percentage_24h_in_currency" in q.get("price_change_percentage", ""):
                coin["price_change_percentage_24h_in_currency"] = round(v["change_pct"], 5)
            out.append(coin)
        return 200, out

    def simple_price(self, q: dict) -> tuple[int, object]:
        ids = [i for i in q.get("ids", "").split(",") if i]
        if not ids:
            return 422, {"error": "Missing parameter ids"}
        vss = [v.lower() for v in q.get("vs_currencies", "").split(",") if v]
        flag = {
            k: q.get(k, "false") == "true" for k in ("include_market_cap", "include_24hr_vol", "include_24hr_change")
        }
        out: dict = {}
        for coin_id in ids:
            a = self.market.by_id.get(coin_id)
            if a is None:
                continue
            row: dict = {}
            for vs in vss:
                if vs not in FIAT:
                    continue
                v = self.market.quote(a["symbol"], vs)
                row[vs] = round(v["price"], 8)
                if flag["include_market_cap"]:
                    row[f"{vs}_market_cap"] = v["market_cap"]
                if flag["include_24hr_vol"]:
                    row[f"{vs}_24h_vol"] = v["volume"]
                if flag["include_24hr_change"]:
                    row[f"{vs}_24h_change"] = v["change_pct"]
            if q.get("include_last_updated_at") == "true":
                row["last_updated_at"] = int(time.time())
            out[coin_id] = row
        return 200, out

    def _series(self, symbol: str, vs: str, days: float, step_s: int) -> list[tuple[int, float]]:
        """Deterministic synthetic history ending at the current price."""
        now = int(time.time() // step_s * step_s)
        n = max(2, min(int(days * 86400 // step_s), 2000))
        price = self.market.quote(symbol, vs)["price"]
        rng = random.Random(hash((symbol, vs, step_s, now // 86400)) & 0xFFFF)
        points = []
        for i in range(n):
            points.append((now - i * step_s, price))
            price /= math.exp(rng.gauss(0.0, 0.004))
        return list(reversed(points))

    def ohlc(self, coin_id: str, q: dict) -> tuple[int, object]:
        a = self.market.by_id.get(coin_id)
        vs = q.get("vs_currency", "").lower()
        if a is None or vs not in FIAT:
            return 404 if a is None else 422, {"error": "coin not found" if a is None else "invalid vs_currency"}
        days = float(q.get("days", "1") if q.get("days") != "max" else 365)
        step = 1800 if days <= 2 else 14400 if days <= 30 else 345600
        rows = []
        for t, p in self._series(a["symbol"], vs, days, step):
            rows.append([t * 1000, round(p * 0.998, 8), round(p * 1.004, 8), round(p * 0.995, 8), round(p, 8)])
        return 200, rows

    def market_chart(self, coin_id: str, q: dict) -> tuple[int, object]:
        a = self.market.by_id.get(coin_id)
        vs = q.get("vs_currency", "").lower()
        if a is None or vs not in FIAT:
            return 404 if a is None else 422, {"error": "coin not found" if a is None else "invalid vs_currency"}
        days = float(q.get("days", "1") if q.get("days") != "max" else 365)
        step = 300 if days <= 1 else 3600 if days <= 90 else 86400
        if q.get("interval") == "daily":
            step = 86400
        series = self._series(a["symbol"], vs, days, step)
        cap = self.market.quote(a["symbol"], vs)["supply"]
        return 200, {
            "prices": [[t * 1000, p] for t, p in series],
            "market_caps": [[t * 1000, p * cap] for t, p in series],
            "total_volumes": [[t * 1000, p * cap * 0.04] for t, p in series],
        }

    # --- Coinbase ------------------------------------------------------------------------------
    def _product(self, product: str) -> tuple[str, str] | None:
        base, _, quote = product.upper().partition("-")
        if base not in self.market.by_symbol or quote.lower() not in FIAT:
            return None
        return base, quote.lower()

    def cb_ticker(self, product: str) -> tuple[int, object]:
        found = self._product(product)
        if found is None:
            return 404, {"message": "NotFound"}
        v = self.market.quote(*found)
        self.trade_id += 1
        body = copy.copy(self.ticker_template)
        body.update(
            ask=f"{v['price'] * 1.0001:.8f}",
            bid=f"{v['price'] * 0.9999:.8f}",
            volume=f"{v['volume'] / v['price']:.8f}",
            trade_id=str(self.trade_id),
            price=f"{v['price']:.8f}",
            size="0.01",
            time=datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        )
        return 200, body

    def cb_stats(self, product: str) -> tuple[int, object]:
        found = self._product(product)
        if found is None:
            return 404, {"message": "NotFound"}
        v = self.market.quote(*found)
        body = copy.copy(self.stats_template)
        body.update(
            open=f"{v['open']:.8f}",
            high=f"{v['high']:.8f}",
            low=f"{v['low']:.8f}",
            last=f"{v['price']:.8f}",
            volume=f"{v['volume'] / v['price']:.8f}",
            volume_30day=f"{30 * v['volume'] / v['price']:.8f}",
        )
        return 200, body

    def cb_candles(self, product: str, q: dict) -> tuple[int, object]:
        found = self._product(product)
        if found is None:
            return 404, {"message": "NotFound"}
        gran = int(q.get("granularity", "3600") or 3600)
        series = self._series(found[0], found[1], gran * 300 / 86400, gran)
        rows = [
            [t, round(p * 0.995, 8), round(p * 1.004, 8), round(p * 0.998, 8), round(p, 8), 12.5] for t, p in series
        ]
        return 200, list(reversed(rows))[:300]

    # --- routing -------------------------------------------------------------------------------
    def route(self, path: str, q: dict) -> tuple[str, int, object]:
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v3"]:
            rest = parts[2:]
            if rest == ["ping"]:
                return "cg.ping", 200, self.ping
            if rest == ["simple", "price"]:
                return ("cg.simple_price", *self.simple_price(q))
            if rest == ["coins", "markets"]:
                return ("cg.coins_markets", *self.coins_markets(q))
            if len(rest) == 3 and rest[0] == "coins" and rest[2] == "ohlc":
                return ("cg.ohlc", *self.ohlc(rest[1], q))
            if len(rest) >= 3 and rest[0] == "coins" and rest[2] == "market_chart":
                return ("cg.market_chart", *self.market_chart(rest[1], q))
        if parts[:2] == ["exchange", "products"] and len(parts) == 4:
            handler = {"ticker": self.cb_ticker, "stats": self.cb_stats}.get(parts[3])
            if handler:
                return (f"cb.{parts[3]}", *handler(parts[2]))
            if parts[3] == "candles":
                return ("cb.candles", *self.cb_candles(parts[2], q))
        if parts == ["_bench", "stats"]:
            return "bench.stats", 200, {"hits": dict(self.hits), "step": self.market.step}
        return "unknown", 404, {"error": f"no fake for {path}"}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        raw = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        q = {k: v[-1] for k, v in raw.items()}
        try:
            name, status, body = self.route(scope["path"], q)
        except (ValueError, KeyError) as exc:
            name, status, body = "bad_request", 400, {"error": str(exc)}
        self.hits[name] += 1
        payload = json.dumps(body, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"cache-control", b"max-age=30, public")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18099)
    parser.add_argument("--step-seconds", type=float, default=1.0, help="prices take one random-walk step per period")
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("the fake upstream serves loopback only")
    import uvicorn

    uvicorn.run(App(Market(step_seconds=args.step_seconds)), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
