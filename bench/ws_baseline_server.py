"""The physical baseline for bench/ws_fanout.py: the least a Python WebSocket server can do per cycle.

One `websockets` server, one Redis subscription on the same channel as CoinLink's hub; each published
cycle is encoded ONCE and written to every socket with `websockets.broadcast` (no per-socket task,
no per-socket seq, no Django). Same frames on the wire as CoinLink except that `seq` is the cycle
number.

    python -m bench.ws_baseline_server --port 8765 --redis redis://127.0.0.1:6379/4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import redis.asyncio as aioredis
from websockets.asyncio.server import broadcast, serve

from coinlink.contract import timestamp_at  # the frames' timestamp format
from realtime.bus import channel_name  # the channel's name only; Django is never set up here

CONNECTIONS: set = set()


async def handler(ws) -> None:
    CONNECTIONS.add(ws)
    try:
        await ws.send(
            json.dumps({"type": "connected", "connection_id": str(id(ws)), "timestamp": timestamp_at(time.time())})
        )
        async for _ in ws:
            pass
    finally:
        CONNECTIONS.discard(ws)


async def cycle_frames(redis_url: str):
    """Each published price cycle, encoded once as the frame every client gets (`seq` = cycle number)."""
    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel_name(redis_url=redis_url))
    cycle = 1
    async for message in pubsub.listen():
        if message.get("type") != "message":
            continue
        event = json.loads(message["data"])
        if event.get("kind") != "tickers":
            continue
        cycle += 1
        yield json.dumps(
            {
                "type": "crypto_ticker_update",
                "data": event["tickers"],
                "timestamp": timestamp_at(event["observed_at"]),
                "stale": False,
                "seq": cycle,
            },
            separators=(",", ":"),
        )


async def fan_out(redis_url: str) -> None:
    async for frame in cycle_frames(redis_url):
        broadcast(CONNECTIONS, frame)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/4")
    args = parser.parse_args()
    async with serve(handler, args.host, args.port, compression=None, ping_interval=20, backlog=4096):
        await fan_out(args.redis)


if __name__ == "__main__":
    asyncio.run(main())
