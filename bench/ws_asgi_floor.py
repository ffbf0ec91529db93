"""A second floor for bench/ws_fanout.py: the cheapest ASGI app uvicorn can run for the same feed.

No Django, no hub, no per-socket task: one Redis subscription, each cycle encoded once, then
`await send(...)` for every socket in a loop. What CoinLink costs above this is CoinLink's; what this
costs above ws_baseline_server.py is the ASGI server's per-message path.

    uvicorn bench.ws_asgi_floor:app --port 8766 --ws-per-message-deflate false
"""

from __future__ import annotations

import asyncio
import os

from bench.ws_baseline_server import cycle_frames

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/4")
SENDS: set = set()
_started: list = []


async def _fan_out() -> None:
    async for frame in cycle_frames(REDIS_URL):
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
