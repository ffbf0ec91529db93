"""Token claims on the WebSocket of a real uvicorn: a token naming another user's session is refused,
and any spelling of a session id is that session, so its revocation closes the socket."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from asgiref.sync import sync_to_async

from tests.realtime.servers import ServerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


async def _frame(ws, frame_type: str, timeout: float = 10) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] in (frame_type, "error"):
                return frame


def _with_sid(access_token: str, sid: str) -> str:
    from accounts.tokens import SessionAccessToken

    token = SessionAccessToken(access_token)
    token["sid"] = sid
    return str(token)


async def test_a_real_server_refuses_a_token_naming_another_users_session(store_prices, owner, other_user):
    from tests.factories import tokens_for

    await store_prices({"BTC": "100"})
    mine, theirs = await sync_to_async(tokens_for)(owner), await sync_to_async(tokens_for)(other_user)
    forged = await sync_to_async(_with_sid)(mine["access_token"], theirs["session_id"])
    with ServerProcess("uvicorn") as server:
        async with websockets.connect(server.ws_url, origin=server.origin) as ws:
            await _frame(ws, "connected")
            await ws.send(json.dumps({"type": "authenticate", "token": forged}))
            answer = await _frame(ws, "authenticated")

    assert answer["type"] == "error" and answer["code"] == "invalid_token"


async def test_revoking_a_session_closes_a_socket_signed_in_with_another_spelling_of_its_id(store_prices, owner):
    from accounts.services import user_session_revoke
    from tests.factories import tokens_for

    await store_prices({"BTC": "100"})
    issued = await sync_to_async(tokens_for)(owner)
    respelled = await sync_to_async(_with_sid)(issued["access_token"], issued["session_id"].upper())
    with ServerProcess("uvicorn") as server:
        async with websockets.connect(server.ws_url, origin=server.origin) as ws:
            await _frame(ws, "connected")
            await ws.send(json.dumps({"type": "authenticate", "token": respelled}))
            assert (await _frame(ws, "authenticated"))["type"] == "authenticated"

            await sync_to_async(user_session_revoke)(user=owner, session_id=issued["session_id"])
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await _frame(ws, "never", timeout=10)

    assert closed.value.rcvd.code == 4001
