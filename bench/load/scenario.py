"""What one simulated person does: a REST user (with their own WebSocket) and a WebSocket-only viewer.

REST user: signs up or signs in, then loops with think time over a read-heavy SPA mix (ticker,
prices, assets, history, stats, movers, notifications, alerts created and deleted, profile,
preferences), refreshes its tokens about once a minute and now and then logs out and signs in
again. It keeps one WebSocket open, authenticated with its access token; a logout must close that
socket with 4001 (measured as `ws.revoke_close`), and the user reconnects after the next sign-in.

Viewer: opens /ws, half of them subscribe to a few symbols, and stays connected to the end,
measuring feed delivery on every `crypto_ticker_update` frame that is not a snapshot.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import datetime
from urllib.parse import urlsplit

from bench.load import http
from bench.load.stats import Recorder
from bench.wsraw import RawWebSocket

SYMBOLS = ["BTC", "ETH", "XRP", "SOL", "ADA", "DOGE", "TRX", "LINK", "AVAX", "DOT", "LTC", "BCH"]
CONDITIONS = ["above", "below", "crosses_above", "crosses_below", "change_pct_24h_above", "change_pct_24h_below"]
TICKER_PREFIX = '{"type":"crypto_ticker_update",'
PASSWORD = "bench-Passw0rd-ok!"  # the load users' password; BCRYPT_ROUNDS is low for the run

# (weight, action name); the REST mix of a signed-in SPA user.
MIX = [
    (22, "market.ticker"),
    (12, "market.price"),
    (4, "legacy.bitcoin_price"),
    (5, "market.assets"),
    (4, "market.stats"),
    (4, "market.movers"),
    (4, "market.history"),
    (8, "notifications.list"),
    (8, "notifications.unread_count"),
    (2, "notifications.read"),
    (5, "alerts.list"),
    (4, "alerts.create"),
    (4, "alerts.delete"),
    (3, "user.profile"),
    (3, "user.preferences"),
    (2, "auth.verify"),
    (2, "health"),
]
_ACTIONS = [name for _, name in MIX]
_WEIGHTS = [w for w, _ in MIX]


def parse_iso(value: str) -> float | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError):
        return None


def ticker_frame_tail(raw: str) -> tuple[int, float | None]:
    """`seq` and `timestamp` (epoch) of a crypto_ticker_update frame, read from its tail.

    realtime.events encodes them after `data`, so the tickers need not be parsed; any other layout
    falls back to a full parse.
    """
    tail = raw[raw.rfind(',"timestamp":"') :]
    try:
        seq = int(tail[tail.rindex(',"seq":') + 7 : -1])
        return seq, parse_iso(tail[14 : tail.index('"', 14)])
    except ValueError:
        frame = json.loads(raw)
        return int(frame.get("seq", 0)), parse_iso(frame.get("timestamp", ""))


class Shared:
    """What every simulated person in one worker process shares: targets, the clock, the recorder."""

    def __init__(self, cfg: dict, recorder: Recorder):
        self.cfg = cfg
        self.rec = recorder
        self.http_host = cfg["http_host"]
        self.http_port = cfg["http_port"]
        self.ws_url = cfg["ws_url"]
        self.origin = cfg["origin"]
        self.stop_at = cfg["stop_at"]
        self.think = cfg["think_seconds"]
        self.timeout = cfg.get("request_timeout", 30.0)
        self.extra_headers = dict(cfg.get("extra_headers", {}))
        self.ws_open = 0
        self.rest_active = 0
        self.source_ips = cfg.get("source_ips") or [None]

    def running(self) -> bool:
        return time.time() < self.stop_at

    async def call(
        self,
        conn: http.Connection,
        name: str,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body=None,
        expect=(200,),
    ) -> http.Response | None:
        headers = dict(self.extra_headers)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        at = time.time()
        try:
            resp = await conn.request(method, path, headers=headers, body=body, timeout=self.timeout)
        except (OSError, TimeoutError, http.HttpError, asyncio.IncompleteReadError, ValueError) as exc:
            ms = (time.time() - at) * 1000.0
            kind = type(exc).__name__
            self.rec.record(name, at, ms if isinstance(exc, TimeoutError) else None, kind, False, f"{kind}: {exc}")
            return None
        ok = resp.status in expect
        detail = "" if ok else f"{method} {path} -> {resp.status} {resp.body[:200]!r}"
        self.rec.record(name, at, resp.elapsed_ms, str(resp.status), ok, detail)
        return resp if ok else None


class FeedTrack:
    """One socket's view of the feed: `seq` gaps, and a delivery sample per new update cycle."""

    def __init__(self, rec: Recorder, label: str):
        self.rec, self.label = rec, label
        self.last_seq = 0
        self.max_ts: float | None = None

    def frame(self, raw: str, now: float) -> None:
        # The feed's bulk: read `timestamp` and `seq` from the tail (realtime.events encodes them
        # after `data`) instead of parsing every ticker, to keep the generator light.
        seq, ts = ticker_frame_tail(raw)
        if self.last_seq and seq != self.last_seq + 1:
            self.rec.record("ws.seq_gap", now, None, "gap", False, f"{self.label}: {self.last_seq} -> {seq}")
        self.last_seq = seq
        # `timestamp` is when the ingest got the upstream answer (realtime.hub: contract.timestamp_at(observed_at)).
        # Snapshots (after connect / subscribe) repeat the last cycle's time: only a newer timestamp
        # is a fresh update cycle, and only those are delivery samples.
        if ts is None:
            return
        if self.max_ts is None:
            self.max_ts = ts
        elif ts > self.max_ts:
            self.max_ts = ts
            self.rec.record("feed.delivery", ts, max(0.0, (now - ts) * 1000.0), "ok", True)


class WsClient:
    """A REST user's own WebSocket (the `websockets` client: it authenticates and must see the 4001
    close); records connect time, feed delivery, notifications, closes. Viewers use `FeedReader`."""

    def __init__(self, shared: Shared, *, label: str, source_ip: str | None):
        self.s = shared
        self.label = label
        self.source_ip = source_ip
        self.ws = None
        self.close_code: int | None = None
        self.closed = asyncio.Event()
        self.authenticated = asyncio.Event()
        self.expect_revoke_at: float | None = None
        self.feed = FeedTrack(shared.rec, label)
        self.auth_sent = 0.0

    async def run(self, *, token: str | None = None) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake

        at = time.time()
        kwargs = {"local_addr": (self.source_ip, 0)} if self.source_ip else {}
        try:
            self.ws = await connect(
                self.s.ws_url,
                origin=self.s.origin,
                compression=None,
                ping_interval=None,  # the server pings (every WS_PING_SECONDS); we answer those
                open_timeout=self.s.timeout,
                max_size=2**22,
                proxy=None,
                **kwargs,
            )
            first = json.loads(await asyncio.wait_for(self.ws.recv(), self.s.timeout))
        except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed, ValueError) as exc:
            self.s.rec.record("ws.connect", at, None, type(exc).__name__, False, f"{self.label}: {exc!r}")
            self.closed.set()
            return
        ok = first.get("type") == "connected"
        self.s.rec.record("ws.connect", at, (time.time() - at) * 1000.0, "connected" if ok else "bad_first", ok)
        self.s.ws_open += 1
        try:
            if token:
                await self.ws.send(json.dumps({"type": "authenticate", "token": token}))
                self.auth_sent = time.time()
            await self._receive_loop()
        except ConnectionClosed as exc:
            self._on_close(exc.rcvd.code if exc.rcvd else 1006)
        finally:
            self.s.ws_open -= 1
            self.closed.set()

    async def _receive_loop(self) -> None:
        ws = self.ws
        rec = self.s.rec
        async for raw in ws:
            now = time.time()
            if not self.s.running():
                break
            if raw.startswith(TICKER_PREFIX):
                self.feed.frame(raw, now)
                continue
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "crypto_ticker_update":
                continue
            elif kind == "ping":
                await ws.send('{"type":"pong"}')
            elif kind == "authenticated":
                rec.record("ws.authenticate", now, (now - self.auth_sent) * 1000.0, "ok", True)
                self.authenticated.set()
            elif kind == "notification":
                created = parse_iso(frame.get("data", {}).get("created_at", ""))
                rec.record("ws.notification", now, (now - created) * 1000.0 if created else None, "ok", True)
            elif kind == "error":
                rec.record("ws.error_frame", now, None, frame.get("code", "?"), False, f"{self.label}: {raw[:200]}")
        if not self.s.running():
            await ws.close()

    def _on_close(self, code: int) -> None:
        now = time.time()
        self.close_code = code
        if self.expect_revoke_at is not None and code == 4001:
            self.s.rec.record("ws.revoke_close", now, (now - self.expect_revoke_at) * 1000.0, "4001", True)
        elif self.s.running():
            self.s.rec.record("ws.unexpected_close", now, None, str(code), False, f"{self.label}: closed {code}")

    async def close(self) -> None:
        if self.ws is not None:
            try:
                await self.ws.close()
            except Exception:
                pass


class FeedReader(RawWebSocket):
    """A viewer's socket, on bench/wsraw.py's lean client: 5,000 of them share the generator's cores
    with the servers, and the `websockets` client's ~100-200 us per frame was the generator's own
    delay in every feed sample. Records the same as `WsClient`: connect time, feed, errors, closes."""

    def __init__(self, shared: Shared, *, label: str, symbols: list[str] | None):
        url = urlsplit(shared.ws_url)
        super().__init__(url.netloc, url.path or "/", shared.origin)
        self.s, self.label, self.symbols = shared, label, symbols
        self.feed = FeedTrack(shared.rec, label)
        self.started = time.time()
        self.counted = False

    def on_text(self, payload: bytes) -> None:
        now = time.time()
        raw = payload.decode()
        if raw.startswith(TICKER_PREFIX):
            self.feed.frame(raw, now)
            return
        frame = json.loads(raw)
        kind = frame.get("type")
        if not self.counted:
            self.counted = True
            self.s.ws_open += 1
            ok = kind == "connected"
            ms = (now - self.started) * 1000.0
            self.s.rec.record("ws.connect", self.started, ms, "connected" if ok else "bad_first", ok)
            if self.symbols:
                self.send_text(json.dumps({"type": "subscribe", "symbols": self.symbols}))
        elif kind == "ping":
            self.send_text('{"type":"pong"}')
        elif kind == "error":
            self.s.rec.record("ws.error_frame", now, None, frame.get("code", "?"), False, f"{self.label}: {raw[:200]}")

    def on_close(self, code: int) -> None:
        if self.counted:
            self.s.ws_open -= 1
        if self.s.running():
            self.s.rec.record(
                "ws.unexpected_close", time.time(), None, str(code), False, f"{self.label}: closed {code}"
            )


async def viewer(shared: Shared, index: int, start_at: float) -> None:
    await asyncio.sleep(max(0.0, start_at - time.time()))
    rng = random.Random(index)
    symbols = rng.sample(SYMBOLS, 4) if index % 2 else None
    ip = shared.source_ips[index % len(shared.source_ips)]
    url = urlsplit(shared.ws_url)
    loop = asyncio.get_running_loop()
    for attempt in range(3):  # bounded reconnects
        if not shared.running():
            return
        reader = FeedReader(shared, label=f"viewer{index}", symbols=symbols)
        try:
            async with asyncio.timeout(shared.timeout):
                await loop.create_connection(
                    lambda r=reader: r, url.hostname, url.port, local_addr=(ip, 0) if ip else None
                )
                await reader.opened
        except (OSError, TimeoutError) as exc:
            kind = type(exc).__name__
            shared.rec.record("ws.connect", reader.started, None, kind, False, f"viewer{index}: {exc!r}")
            if reader.transport is not None:
                reader.transport.close()
        else:
            # Held until the end of the run, or until the server closes it (then: reconnect).
            await asyncio.wait([reader.closed], timeout=max(0.0, shared.stop_at - time.time()))
            if not reader.closed.done():
                reader.close()
                return
        if not shared.running():
            return
        await asyncio.sleep(1.0 + attempt)


class RestUser:
    def __init__(self, shared: Shared, index: int, email: str, *, new: bool):
        self.s = shared
        self.index = index
        self.email = email
        self.new = new
        self.rng = random.Random(index * 7919)
        self.access: str | None = None
        self.refresh: str | None = None
        self.alerts: list[str] = []
        self.ws: WsClient | None = None
        self.ws_task: asyncio.Task | None = None
        # The user's browser tab: one keep-alive connection to the proxy for all its REST calls.
        self.conn = http.Connection(shared.http_host, shared.http_port)

    async def call(self, name: str, method: str, path: str, **kwargs) -> http.Response | None:
        return await self.s.call(self.conn, name, method, path, **kwargs)

    async def sign_in(self) -> bool:
        if self.new:
            self.new = False
            resp = await self.call(
                "auth.signup",
                "POST",
                "/api/v2/auth/signup",
                body={
                    "email": self.email,
                    "password": PASSWORD,
                    "first_name": "Load",
                    "last_name": f"User{self.index}",
                },
                expect=(201,),
            )
        else:
            resp = await self.call(
                "auth.login", "POST", "/api/v2/auth/login", body={"email": self.email, "password": PASSWORD}
            )
        if resp is None:
            return False
        tokens = resp.json()["tokens"]
        self.access, self.refresh = tokens["access_token"], tokens["refresh_token"]
        if self.s.cfg.get("user_ws", True):
            self.ws = WsClient(
                self.s,
                label=f"user{self.index}",
                source_ip=self.s.source_ips[self.index % len(self.s.source_ips)],
            )
            self.ws_task = asyncio.create_task(self.ws.run(token=self.access))
        return True

    async def do_refresh(self) -> None:
        resp = await self.call("auth.refresh", "POST", "/api/v2/auth/refresh", body={"refresh_token": self.refresh})
        if resp is not None:
            tokens = resp.json()["tokens"]
            self.access, self.refresh = tokens["access_token"], tokens["refresh_token"]

    async def logout(self) -> None:
        ws = self.ws
        if ws is not None and not ws.closed.is_set():
            ws.expect_revoke_at = time.time()
        await self.call(
            "auth.logout",
            "POST",
            "/api/v2/auth/logout",
            token=self.access,
            body={"refresh_token": self.refresh},
            expect=(204,),
        )
        if ws is not None and self.ws_task is not None:
            # The contract: the socket of that session is closed with 4001 "within a few seconds".
            try:
                await asyncio.wait_for(asyncio.shield(ws.closed.wait()), 10.0)
            except TimeoutError:
                self.s.rec.record("ws.revoke_close", time.time(), None, "not_closed", False, f"user{self.index}")
                await ws.close()
        self.access = self.refresh = None
        self.ws = self.ws_task = None

    async def action(self, name: str) -> None:
        call, tok, rng = self.call, self.access, self.rng
        sym = rng.choice(SYMBOLS)
        if name == "market.ticker":
            await call(name, "GET", "/api/v2/market/ticker?limit=20", token=tok)
        elif name == "market.price":
            await call(name, "GET", f"/api/v2/market/{sym}/price?vs={rng.choice(['usd', 'usd', 'eur'])}", token=tok)
        elif name == "legacy.bitcoin_price":
            await call(name, "GET", "/api/bitcoin/price", token=tok)
        elif name == "market.assets":
            await call(name, "GET", f"/api/v2/market/assets?page_size=20&page={rng.randint(1, 2)}", token=tok)
        elif name == "market.stats":
            await call(name, "GET", "/api/v2/market/stats", token=tok)
        elif name == "market.movers":
            await call(name, "GET", "/api/v2/market/movers?limit=5", token=tok)
        elif name == "market.history":
            interval, period = rng.choice([("1h", "7d"), ("1d", "30d"), ("5m", "1d")])
            await call(name, "GET", f"/api/v2/market/{sym}/history?interval={interval}&period={period}", token=tok)
        elif name == "notifications.list":
            await call(name, "GET", "/api/v2/notifications?page_size=20", token=tok)
        elif name == "notifications.unread_count":
            await call(name, "GET", "/api/v2/notifications/unread-count", token=tok)
        elif name == "notifications.read":
            resp = await call("notifications.list", "GET", "/api/v2/notifications?unread=true&page_size=5", token=tok)
            results = (resp.json() or {}).get("results", []) if resp is not None else []
            if results:
                await call(name, "POST", f"/api/v2/notifications/{results[0]['id']}/read", token=tok)
            else:
                await call("notifications.read_all", "POST", "/api/v2/notifications/read-all", token=tok)
        elif name == "alerts.list":
            await call(name, "GET", "/api/v2/alerts?page_size=20", token=tok)
        elif name == "alerts.create":
            if len(self.alerts) >= 20:
                name = "alerts.delete"
            else:
                condition = rng.choice(CONDITIONS)
                target = rng.uniform(-5, 5) if condition.startswith("change_pct") else None
                body = {"symbol": sym, "condition": condition, "repeat": rng.random() < 0.3, "cooldown_seconds": 300}
                if target is None:
                    body["target_value"] = round(rng.uniform(0.01, 100_000), 2)
                else:
                    body["target_value"] = round(target, 2)
                resp = await call(name, "POST", "/api/v2/alerts", token=tok, body=body, expect=(201,))
                if resp is not None:
                    self.alerts.append(resp.json()["id"])
                return
        if name == "alerts.delete":
            if self.alerts:
                alert_id = self.alerts.pop(rng.randrange(len(self.alerts)))
                await call(name, "DELETE", f"/api/v2/alerts/{alert_id}", token=tok, expect=(204,))
            else:
                await call("alerts.list", "GET", "/api/v2/alerts?page_size=20", token=tok)
        elif name == "user.profile":
            await call(name, "GET", "/api/v2/user/profile", token=tok)
        elif name == "user.preferences":
            await call(name, "GET", "/api/v2/user/preferences", token=tok)
        elif name == "auth.verify":
            await call(name, "GET", "/api/v2/auth/verify", token=tok)
        elif name == "health":
            await call(name, "GET", "/health")

    async def run(self, start_at: float) -> None:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        s, rng = self.s, self.rng
        refresh_every = s.cfg.get("refresh_every_seconds", 120.0)
        session_seconds = s.cfg.get("session_seconds", 240.0)
        s.rest_active += 1
        try:
            for _session in range(1000):
                if not s.running():
                    return
                if not await self.sign_in():
                    await asyncio.sleep(2.0 + rng.random() * 3)
                    continue
                now = time.time()
                next_refresh = now + rng.uniform(0.5, 1.0) * refresh_every
                session_end = now + rng.uniform(0.5, 1.5) * session_seconds
                for _ in range(100_000):
                    if not s.running() or time.time() >= session_end:
                        break
                    if time.time() >= next_refresh:
                        await self.do_refresh()
                        next_refresh = time.time() + refresh_every
                    else:
                        await self.action(rng.choices(_ACTIONS, _WEIGHTS)[0])
                    await asyncio.sleep(rng.expovariate(1.0 / s.think) if s.think > 0 else 0)
                if not s.running():
                    return
                await self.logout()
        finally:
            s.rest_active -= 1
            self.conn.close()
            if self.ws is not None:
                await self.ws.close()
