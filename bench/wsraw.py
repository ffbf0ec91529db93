"""A minimal RFC 6455 client on asyncio.Protocol, for benchmarks that hold thousands of sockets on
the machine they measure.

The `websockets` client costs ~100-200 us of Python per received frame; with 5,000-10,000 sockets
on the same two cores as the server, that made the load generator, not the server, the bottleneck
and added its own delay to every latency it measured. This one does only what a feed reader needs:
the handshake, unfragmented text frames, ping -> pong, masked text frames out, and the close code.
Subclasses override `on_open`, `on_text` and `on_close`.
"""

from __future__ import annotations

import asyncio
import base64
import os

OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


class RawWebSocket(asyncio.Protocol):
    def __init__(self, host: str, path: str, origin: str):
        key = base64.b64encode(os.urandom(16)).decode()
        self._handshake = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
        ).encode()
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future = loop.create_future()  # True once upgraded, or the handshake's error
        self.closed: asyncio.Future = loop.create_future()  # the close code (1006: no close frame)
        self.open = False
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._close_code: int | None = None

    # --- hooks -------------------------------------------------------------------------------
    def on_open(self) -> None:
        """The upgrade succeeded."""

    def on_text(self, payload: bytes) -> None:
        """One text frame (the server never fragments them)."""

    def on_close(self, code: int) -> None:
        """The connection ended; `code` is the server's close code, 1006 if it sent none."""

    # --- sending -----------------------------------------------------------------------------
    def send_text(self, text: str) -> None:
        self._send(OP_TEXT, text.encode())

    def close(self, code: int = 1000) -> None:
        if self.open and self.transport is not None:
            self._send(OP_CLOSE, code.to_bytes(2, "big"))
            self.transport.close()

    def _send(self, opcode: int, payload: bytes) -> None:
        # Client frames are masked (RFC 6455 5.3); the payloads here are a few hundred bytes at most.
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        n = len(payload)
        length = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
        self.transport.write(bytes([0x80 | opcode]) + length + mask + masked)

    # --- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self._handshake)

    def connection_lost(self, exc) -> None:
        was_open, self.open = self.open, False
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during the handshake: {exc!r}"))
        if was_open and not self.closed.done():
            code = self._close_code or 1006
            self.closed.set_result(code)
            self.on_close(code)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                status = bytes(buf[: buf.find(b"\r\n")]).decode("latin-1")
                self.opened.set_exception(ConnectionError(f"handshake refused: {status}"))
                self.transport.close()
                return
            del buf[: end + 4]
            self.open = True
            self.opened.set_result(True)
            self.on_open()
        while len(buf) >= 2:
            opcode, length, offset = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, offset = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, offset = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < offset + length:
                return
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            if opcode == OP_TEXT:
                self.on_text(payload)
            elif opcode == OP_PING:
                self._send(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self._close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self._send(OP_CLOSE, payload[:2])
                self.transport.close()
                return
