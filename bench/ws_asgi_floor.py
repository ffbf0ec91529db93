"""A second floor for bench/ws_fanout.py: the cheapest ASGI app uvicorn can run for the same feed.

No Django, no hub, no per-socket task: one Redis subscription, each cycle encoded once, then
`await send(...)` for every socket in a loop. What CoinLink costs above this is CoinLink's; what this
costs above ws_baseline_server.py is the ASGI server's per-message path.

    uvicorn bench.ws_asgi_floor:app --port 8766 --ws-per-message-deflate false
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from urllib.parse import urlparse

import redis.asyncio as aioredis

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/4")
SENDS: set = set()
_started: list = []


async def _fan_out() -> None:
    db = urlparse(REDIS_URL).path.strip("/") or "0"
    client = aioredis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(f"coinlink:{db}:realtime")
    cycle = 1
    async for message in pubsub.listen():
        if message.get("type") != "message":
            continue
        event = json.loads(message["data"])
        if event.get("kind") != "tickers":
            continue
        cycle += 1
        stamp = datetime.fromtimestamp(event["observed_at"], UTC).isoformat(timespec="microseconds")
        frame = json.dumps(
            {
                "type": "crypto_ticker_update",
                "data": event["tickers"],
                "timestamp": stamp.replace("+00:00", "Z"),
                "stale": False,
                "seq": cycle,
            },
            separators=(",", ":"),
        )
        for send in list(SENDS):
            try:
                await send({"type": "websocket.send", "text": frame})
            except Exception:
                SENDS.discard(send)


async def app(scope, receive, send) -> None:
    if scope["type"] != "websocket":
        return
    if not _started:
        _started.append(asyncio.ensure_future(_fan_out()))
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": '{"type":"connected"}'})
    SENDS.add(send)
    try:
        while (await receive())["type"] != "websocket.disconnect":
            pass
    finally:
        SENDS.discard(send)
