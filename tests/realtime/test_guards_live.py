"""The feed's guards against the real servers we ship, through a real WebSocket client: `manage.py serve`
(what scripts/run starts) and uvicorn with production's `/ws` flags. The close code must reach the
client and the socket's per-address slot must be freed; a refused handshake is logged with its reason.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.realtime.servers import ServerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

LIMITS = {"WS_MAX_PER_IP": "1", "WS_MAX_FRAME_BYTES": "4096", "WS_MAX_FRAMES_PER_SECOND": "5"}


@pytest.fixture(scope="module", params=["serve", "uvicorn-production"])
def server(request, django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), ServerProcess(request.param, **LIMITS) as server:
        yield server


async def _close_code(ws, timeout: float = 10) -> int | None:
    """Read until the server closes the socket; the code it sent."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    return closed.value.rcvd.code if closed.value.rcvd else None


async def _connected(server: ServerProcess, origin: str | None = None):
    ws = await websockets.connect(server.ws_url, origin=origin or server.origin, max_size=None, open_timeout=10)
    assert json.loads(await ws.recv())["type"] == "connected"
    return ws


async def _slot_is_free(server: ServerProcess) -> bool:
    """With WS_MAX_PER_IP=1, a new socket is accepted once the closed one has given its slot back."""
    async with asyncio.timeout(10):
        while True:
            try:
                ws = await _connected(server)
            except websockets.InvalidStatus:
                await asyncio.sleep(0.1)
                continue
            await ws.close()
            return True


async def test_an_oversized_frame_closes_with_1009_and_frees_the_slot(server):
    ws = await _connected(server)
    with pytest.raises(websockets.InvalidStatus):  # the one slot of this address is taken
        await _connected(server)
    await ws.send(json.dumps({"type": "ping", "pad": "x" * 5000}))
    assert await _close_code(ws) == 1009
    assert await _slot_is_free(server)


async def test_a_flood_closes_with_1008_and_frees_the_slot(server):
    ws = await _connected(server)
    for _ in range(20):
        await ws.send('{"type": "pong"}')
    assert await _close_code(ws) == 1008
    assert await _slot_is_free(server)


async def test_a_refused_handshake_is_logged_with_its_reason(server):
    with pytest.raises(websockets.InvalidStatus) as refused:
        await _connected(server, origin="https://evil.example.com")
    assert refused.value.response.status_code == 403
    ws = await _connected(server)
    with pytest.raises(websockets.InvalidStatus):
        await _connected(server)
    await ws.close()

    def logged() -> list[str]:
        return [line for line in server.output().splitlines() if "WebSocket handshake" in line]

    async with asyncio.timeout(5):
        while len(logged()) < 2:
            await asyncio.sleep(0.1)
    origin_line, limit_line = logged()[-2:]
    assert "'https://evil.example.com' is not allowed" in origin_line and server.origin in origin_line
    assert "WS_MAX_PER_IP=1" in limit_line and "127.0.0.1" in limit_line


@pytest.mark.parametrize("kind", ["serve", "uvicorn"])
async def test_in_development_the_servers_own_page_may_connect_on_any_port(kind):
    # WS_ALLOWED_ORIGINS unset: the development defaults, which name port 8000 only.
    with ServerProcess(kind, WS_ALLOWED_ORIGINS="") as server:
        assert server.port != 8000
        for origin in (f"http://127.0.0.1:{server.port}", f"http://localhost:{server.port}"):
            await (await _connected(server, origin=origin)).close()
        for foreign in (f"http://127.0.0.1:{server.port + 1}", f"https://127.0.0.1:{server.port}"):
            with pytest.raises(websockets.InvalidStatus):
                await _connected(server, origin=foreign)
