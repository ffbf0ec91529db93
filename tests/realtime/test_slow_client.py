"""A client that stops reading, against a real uvicorn server: it is coalesced, the others are not delayed."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
import urllib.request

import pytest
import websockets
from asgiref.sync import sync_to_async

from realtime import events
from tests.realtime.servers import ServerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

SYMBOLS = ["BTC", "ETH", "USDT", "XRP", "BNB", "SOL", "USDC", "DOGE", "TRX", "ADA"]


def _tickers(cycle: int) -> list[dict]:
    return [
        {"symbol": s, "name": s.title() + " " + "x" * 1000, "price": 100.0 + cycle + i / 100, "change_24h": 1.0,
         "change_percent_24h": 0.1, "volume_24h": 1e9, "market_cap": 1e12, "rank": i + 1,
         "last_updated": "2026-11-25T15:00:00Z", "source": "coingecko", "stale": False}
        for i, s in enumerate(SYMBOLS)
    ]  # fmt: skip


def _dropped(server: ServerProcess) -> float:
    with urllib.request.urlopen(f"{server.http_url}/metrics", timeout=5) as response:  # noqa: S310
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('coinlink_ws_frames_dropped_total{type="crypto_ticker_update"}')
    )


class StalledReader:
    """A raw WebSocket client that completes the handshake, then reads nothing until told to."""

    def __init__(self, server: ServerProcess):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: no autotuning
        self.sock.connect(("127.0.0.1", server.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {server.origin}\r\n\r\n".encode()
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def frames(self, until) -> list[dict]:
        """Read and parse text frames until `until(frame)` is true."""
        self.sock.settimeout(30)
        out: list[dict] = []
        while True:
            while len(self.buf) >= 2:
                length, offset = self.buf[1] & 0x7F, 2
                if length == 126:
                    length, offset = int.from_bytes(self.buf[2:4], "big"), 4
                elif length == 127:
                    length, offset = int.from_bytes(self.buf[2:10], "big"), 10
                if len(self.buf) < offset + length:
                    break
                opcode, payload = self.buf[0] & 0x0F, self.buf[offset : offset + length]
                self.buf = self.buf[offset + length :]
                if opcode == 1:
                    out.append(json.loads(payload))
                    if until(out[-1]):
                        return out
            self.buf += self.sock.recv(1 << 16)


async def test_a_stalled_reader_is_coalesced_while_a_fast_one_gets_every_cycle(store_prices):
    await store_prices({"BTC": "1"})
    cycles = 1500
    newest = 100.0 + cycles - 1
    with ServerProcess("uvicorn") as server:
        stalled = await sync_to_async(StalledReader, thread_sensitive=False)(server)
        async with websockets.connect(server.ws_url, origin=server.origin, max_queue=None) as fast:
            await fast.recv()  # connected
            await fast.recv()  # snapshot

            async def publish():
                for cycle in range(cycles):
                    await sync_to_async(events.ticker_update_publish)(
                        quote="usd", tickers=_tickers(cycle), observed_at=time.time(), top=SYMBOLS
                    )  # the top symbols, as coinlink.wiring reads them for the ingest: what the stalled reader follows

            fast_frames = []

            async def read_fast():
                while len(fast_frames) < cycles:
                    fast_frames.append(json.loads(await fast.recv()))

            await asyncio.wait_for(asyncio.gather(publish(), read_fast()), 90)
        assert [f["seq"] for f in fast_frames] == list(range(2, cycles + 2))
        assert fast_frames[-1]["data"][0]["price"] == newest

        # The stalled client now reads: fewer, merged frames, no seq gap, ending on the newest prices.
        frames = await sync_to_async(stalled.frames, thread_sensitive=False)(
            lambda f: f.get("type") == "crypto_ticker_update" and f["data"] and f["data"][0]["price"] == newest
        )
        stalled.sock.close()
        tickers = [f for f in frames if f["type"] == "crypto_ticker_update"]
        assert [f["seq"] for f in tickers] == list(range(1, len(tickers) + 1))
        assert len(tickers) < cycles
        assert _dropped(server) >= 1
