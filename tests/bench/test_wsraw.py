"""bench/wsraw.py, the lean WebSocket client the benchmarks hold thousands of sockets with, against a
real `websockets` server: what it reads and sends must be what a real peer sees."""

from __future__ import annotations

import asyncio

from websockets.asyncio.server import serve
from websockets.http11 import Response

from bench.wsraw import RawWebSocket

ORIGIN = "https://coinlink.bench"


class Recorder(RawWebSocket):
    def __init__(self, host: str):
        super().__init__(host, "/ws", ORIGIN)
        self.texts: list[bytes] = []
        self.codes: list[int] = []

    def on_text(self, payload: bytes) -> None:
        self.texts.append(payload)

    def on_close(self, code: int) -> None:
        self.codes.append(code)


async def _connect(port: int) -> Recorder:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: Recorder(f"127.0.0.1:{port}"), "127.0.0.1", port)
    await asyncio.wait_for(client.opened, 5)
    return client


async def test_it_reads_every_frame_size_answers_pings_sends_masked_text_and_reports_the_close_code():
    heard: list[str] = []
    origins: list[str | None] = []

    async def handler(ws):
        origins.append(ws.request.headers.get("Origin"))
        for size in (10, 300, 70_000):  # 7-bit, 16-bit and 64-bit payload lengths
            await ws.send("x" * size)
        await asyncio.wait_for(await ws.ping(b"hi"), 5)  # the client's pong resolves it
        heard.append(await ws.recv())
        await ws.close(4001, "session revoked")

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = await _connect(port)
        await asyncio.sleep(0.05)
        client.send_text('{"type":"subscribe","symbols":["BTC"]}')
        code = await asyncio.wait_for(client.closed, 5)

    assert [len(t) for t in client.texts] == [10, 300, 70_000]
    assert heard == ['{"type":"subscribe","symbols":["BTC"]}']
    assert origins == [ORIGIN]
    assert code == 4001 and client.codes == [4001]


async def test_a_refused_handshake_fails_the_open_and_is_not_reported_as_a_close():
    def refuse(connection, request):
        return Response(403, "Forbidden", request.headers.__class__(), b"")

    async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=refuse) as server:
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(lambda: Recorder(f"127.0.0.1:{port}"), "127.0.0.1", port)
        try:
            await asyncio.wait_for(client.opened, 5)
        except ConnectionError as exc:
            refused = str(exc)
        else:
            refused = ""
        await asyncio.sleep(0.05)

    assert "403" in refused
    assert client.codes == []
