"""Two real server processes on one Redis: each delivers every cycle, notification and revocation to its own sockets."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from asgiref.sync import sync_to_async

from realtime import events
from tests.realtime.servers import ServerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


NOTIFICATION = {
    "id": "n1",
    "type": "system_alert",
    "title": "",
    "message": "Both processes",
    "priority": "low",
    "is_read": False,
    "created_at": "2026-11-25T15:00:00Z",
    "data": {},
}


async def _frame(ws, frame_type: str, timeout: float = 5) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == frame_type:
                return frame


async def test_it_delivers_cycles_notifications_and_revocations_from_two_processes(store_prices, owner):
    from accounts.services import user_session_revoke
    from tests.factories import tokens_for

    await store_prices({"BTC": "100", "ETH": "10"})
    issued = await sync_to_async(tokens_for)(owner)
    with ServerProcess("uvicorn") as first, ServerProcess("uvicorn") as second:
        async with (
            websockets.connect(first.ws_url, origin=first.origin) as a,
            websockets.connect(second.ws_url, origin=second.origin) as b,
        ):
            for ws in (a, b):
                assert (await _frame(ws, "connected"))["connection_id"]
                assert [t["price"] for t in (await _frame(ws, "crypto_ticker_update"))["data"]] == [100.0, 10.0]
                await ws.send(json.dumps({"type": "authenticate", "token": issued["access_token"]}))
                assert (await _frame(ws, "authenticated"))["user"]["email"] == "owner@example.com"

            for price in ("101", "102", "103"):
                await store_prices({"BTC": price})
            for ws in (a, b):
                frames = [await _frame(ws, "crypto_ticker_update") for _ in range(3)]
                assert [f["data"][0]["price"] for f in frames] == [101.0, 102.0, 103.0]
                assert [f["seq"] for f in frames] == [2, 3, 4]

            notification = dict(NOTIFICATION, title="Hello from either process")
            await sync_to_async(events.notification_push)(user_id=str(owner.pk), notification=notification)
            for ws in (a, b):
                assert (await _frame(ws, "notification"))["data"] == notification

            await sync_to_async(user_session_revoke)(user=owner, session_id=issued["session_id"])
            for ws in (a, b):
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await _frame(ws, "never", timeout=5)
                assert closed.value.rcvd.code == 4001


async def test_a_real_server_refuses_a_foreign_origin(store_prices):
    await store_prices({"BTC": "100"})
    with ServerProcess("uvicorn") as server:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(server.ws_url, origin="https://evil.example.com"):
                pass
        assert refused.value.response.status_code == 403
