"""The `/ws` price feed: one `FeedConsumer` per socket (protocol in API.md, WebSocket section).

A plain ASGI consumer rather than a Channels generic consumer: those open a channel-layer channel
per socket, which is exactly the per-socket Redis work the hub exists to avoid. Reading runs in the
consumer's own task; writing runs in its outbox's task, so a slow reader never blocks the hub.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from urllib.parse import parse_qs

from django.conf import settings

from coinlink import metrics
from markets.vocabulary import DEFAULT_QUOTE, SYMBOL_ANY_CASE
from realtime import async_selectors, events
from realtime.hub import GroupKey, Hub, hub_current
from realtime.middleware import handshake_refused
from realtime.outbox import Outbox, TickerBatch

logger = logging.getLogger("realtime.consumers")

MAX_SYMBOLS = 100


class FeedConsumer:
    """One WebSocket connection: handshake, snapshot, client frames, and its registration in the hub."""

    def __init__(self, scope, receive, send):
        self.scope, self._receive, self._send = scope, receive, send
        self.connection_id = uuid.uuid4().hex
        self.quote = DEFAULT_QUOTE
        self.symbols: frozenset[str] | None = None  # None: the top 20 by rank
        self.user_id: str | None = None
        self.session_id: str | None = None
        self.outbox = Outbox(send)
        self.hub: Hub = hub_current()  # built inside the server's event loop (see as_asgi)
        self._tokens = float(settings.WS_MAX_FRAMES_PER_SECOND)
        self._tokens_at = time.monotonic()

    @classmethod
    def as_asgi(cls):
        async def app(scope, receive, send):
            await cls(scope, receive, send).run()

        return app

    @property
    def group_key(self) -> GroupKey:
        return (self.quote, self.symbols)

    # -- lifecycle ------------------------------------------------------------------------------
    async def run(self) -> None:
        if (await self._receive())["type"] != "websocket.connect":
            return
        quote = _query_quote(self.scope)
        if quote is None:
            metrics.WS_CLOSED.labels("bad_quote").inc()
            handshake_refused(self.scope, f"quote not in MARKET_QUOTES ({', '.join(settings.MARKET_QUOTES)})")
            await self._send({"type": "websocket.close"})
            return
        self.quote = quote
        await self.hub.start()
        await self._send({"type": "websocket.accept"})
        metrics.WS_OPEN.inc()
        self.hub.add(self)
        self.outbox.push_frame(events.connected_frame(connection_id=self.connection_id))
        writer = asyncio.ensure_future(self.outbox.run())
        try:
            await self._snapshot(self.symbols)
            await self._read()
        finally:
            writer.cancel()
            self.hub.remove(self)
            metrics.WS_OPEN.dec()
            if self.user_id:
                metrics.WS_AUTHENTICATED.dec()

    async def _read(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                return
            if message["type"] == "websocket.receive" and self.outbox.close_code is None:
                await self._on_frame(message.get("text"), message.get("bytes"))

    async def _snapshot(self, symbols: frozenset[str] | None) -> None:
        """Send the current tickers of `symbols` (None: top 20) ahead of any update held meanwhile."""
        self.outbox.holding = True
        try:
            batch = await self.hub.snapshot(quote=self.quote, symbols=symbols)
        except Exception:
            # The store is down: say so (empty and stale, nothing invented); live updates still flow.
            logger.warning("ticker snapshot unavailable", exc_info=True)
            batch = TickerBatch({}, events.now_iso(), True)
        self.outbox.offer_snapshot(batch)

    # -- client frames --------------------------------------------------------------------------
    async def _on_frame(self, text: str | None, raw: bytes | None) -> None:
        if not self._within_rate():
            self.outbox.close(1008, reason="flood")
            return
        size = len(raw) if raw is not None else _utf8_size(text or "")
        if size > settings.WS_MAX_FRAME_BYTES:
            self.outbox.close(1009, reason="frame_too_big")
            return
        if text is None:
            self._error("unsupported_frame", "Frames are JSON text, not binary.")
            return
        try:
            frame = json.loads(text)
        except (ValueError, RecursionError):
            self._error("invalid_json", "The frame is not valid JSON.")
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            self._error("invalid_frame", 'A frame is a JSON object with a string "type".')
            return
        handler = self._handlers.get(frame["type"])
        if handler is None:
            self._error("unknown_type", f"Unknown frame type {frame['type'][:40]!r}.")
            return
        try:
            await handler(self, frame)
        except Exception:
            # A backend (database, cache) failing must cost the client one error frame, not the socket.
            logger.exception("WebSocket %s frame failed", frame["type"])
            self._error("unavailable", "The server could not handle this frame right now; try again shortly.")

    def _within_rate(self) -> bool:
        """Token bucket: WS_MAX_FRAMES_PER_SECOND sustained, bursts up to the same number."""
        rate = float(settings.WS_MAX_FRAMES_PER_SECOND)
        now = time.monotonic()
        self._tokens = min(rate, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    async def _on_ping(self, frame: dict) -> None:
        self.outbox.push_frame(events.pong_frame())

    async def _on_pong(self, frame: dict) -> None:
        return None

    async def _on_subscribe(self, frame: dict) -> None:
        symbols = self._symbols_field(frame)
        if symbols is None:
            return
        known = await async_selectors.symbols_known(symbols=symbols)
        unknown = [s for s in symbols if s not in known]
        if unknown:
            self._error("unknown_symbols", f"Unknown symbols: {', '.join(unknown)}.", symbols=unknown)
        current = self.symbols or frozenset()
        fresh = frozenset(s for s in symbols if s in known) - current
        if not fresh:
            return
        if len(current | fresh) > MAX_SYMBOLS:
            self._error("too_many_symbols", f"A connection follows at most {MAX_SYMBOLS} symbols.")
            return
        self._follow(current | fresh)
        if fresh:
            await self._snapshot(fresh)

    async def _on_unsubscribe(self, frame: dict) -> None:
        symbols = self._symbols_field(frame)
        if symbols is None:
            return
        if self.symbols is None:
            top = self.hub.top.get(self.quote) or await async_selectors.symbols_top(limit=20)
            current = frozenset(top)
        else:
            current = self.symbols
        self._follow(current - set(symbols))

    async def _on_authenticate(self, frame: dict) -> None:
        from accounts.exceptions import InvalidToken

        token = frame.get("token")
        if not isinstance(token, str) or not token or len(token) > 4096:
            self._error("invalid_frame", '"token" must be an access token string.')
            return
        try:
            user_id, email, session_id = await async_selectors.token_identity(token=token)
        except InvalidToken:
            self._error("invalid_token", "Token is invalid or expired.")
            return
        except Exception:
            logger.exception("WebSocket authentication failed")
            self._error("unavailable", "Authentication is unavailable; try again shortly.")
            return
        if self.outbox.close_code is not None:
            return
        if self.user_id is None:
            metrics.WS_AUTHENTICATED.inc()
        self.hub.identify(self, user_id=user_id, session_id=session_id)
        self.user_id, self.session_id = user_id, session_id
        self.outbox.push_frame(events.authenticated_frame(user_id=user_id, email=email))

    _handlers = {
        "ping": _on_ping,
        "pong": _on_pong,
        "subscribe": _on_subscribe,
        "unsubscribe": _on_unsubscribe,
        "authenticate": _on_authenticate,
    }

    # -- helpers --------------------------------------------------------------------------------
    def _follow(self, symbols: frozenset[str]) -> None:
        old = self.group_key
        self.symbols = frozenset(symbols)
        self.hub.regroup(self, old)

    def _symbols_field(self, frame: dict) -> list[str] | None:
        symbols = frame.get("symbols")
        if (
            not isinstance(symbols, list)
            or not symbols
            or len(symbols) > MAX_SYMBOLS
            or not all(isinstance(s, str) and SYMBOL_ANY_CASE.match(s) for s in symbols)
        ):
            self._error("invalid_frame", f'"symbols" must be a list of 1 to {MAX_SYMBOLS} ticker symbols like "BTC".')
            return None
        return list(dict.fromkeys(s.upper() for s in symbols))

    def _error(self, code: str, detail: str, *, symbols: list[str] | None = None) -> None:
        self.outbox.push_frame(events.error_frame(code=code, detail=detail, symbols=symbols))


def _query_quote(scope) -> str | None:
    """`?vs=eur` picks the quote currency (default usd); one the deployment does not ingest is refused."""
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    quote = (query.get("vs") or [DEFAULT_QUOTE])[0].lower()
    return quote if quote in settings.MARKET_QUOTES else None


def _utf8_size(text: str) -> int:
    # A str of n characters is at most 4n bytes: skip the encode for the common small frame.
    return len(text) if len(text) * 4 <= settings.WS_MAX_FRAME_BYTES else len(text.encode("utf-8", "surrogatepass"))
