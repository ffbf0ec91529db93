"""A minimal HTTP/1.1 client on asyncio streams, with keep-alive.

Each simulated REST user holds one `Connection` and sends its requests on it one after the other,
as a browser tab reuses its connection to the proxy; the connection is reopened when the server
closes it (`Connection: close`, a close-delimited body, or an idle connection dropped between two
requests, which is retried once on a new connection, as browsers do, when no byte of the answer
had arrived). `request()` is one request on a fresh connection (the /health probe).

Why not httpx/aiohttp: the load generator shares the machine's two cores with the server, so its
per-request cost is part of the measurement's noise; this client does the least work a correct
HTTP/1.1 exchange needs (Content-Length, chunked and close-delimited bodies).
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from dataclasses import dataclass


class HttpError(Exception):
    pass


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed_ms: float

    def json(self):
        body = self.body
        if body and self.headers.get("content-encoding") == "gzip":
            body = zlib.decompress(body, 31)
        return json.loads(body) if body else None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    for _ in range(100_000):
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            # trailers until an empty line
            for _ in range(100):
                if await reader.readuntil(b"\r\n") == b"\r\n":
                    break
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    raise HttpError("too many chunks")


def _encode(host: str, port: int, method: str, path: str, headers, body, *, close: bool) -> bytes:
    payload = b""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: application/json"]
    if close:
        lines.append("Connection: close")
    # Like a browser: compressed bodies are welcome (the server decides what is worth compressing).
    lines.append("Accept-Encoding: gzip")
    if body is not None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        lines.append("Content-Type: application/json")
    if payload or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(payload)}")
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


async def _read_response(reader: asyncio.StreamReader, method: str) -> tuple[int, dict[str, str], bytes, bool]:
    """(status, headers, body, reusable): whether the connection can carry another request."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise HttpError(f"bad status line {status_line[:80]!r}")
    status = int(parts[1])
    hdrs = {}
    for line in header_lines:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    reusable = hdrs.get("connection", "").lower() != "close" and parts[0] == "HTTP/1.1"
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        data = b""
    elif "content-length" in hdrs:
        data = await reader.readexactly(int(hdrs["content-length"]))
    elif "chunked" in hdrs.get("transfer-encoding", "").lower():
        data = await _read_chunked(reader)
    else:
        data, reusable = await reader.read(-1), False
    return status, hdrs, data, reusable


class Connection:
    """One connection to host:port, for one simulated user's requests in turn (keep-alive), or for a
    single request (`keep_alive=False`: `Connection: close`)."""

    def __init__(self, host: str, port: int, *, keep_alive: bool = True):
        self.host, self.port, self.keep_alive = host, port, keep_alive
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.opened = 0  # connections opened so far (the keep-alive's effect, for the tests)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: object | None = None,
        timeout: float = 30.0,
    ) -> Response:
        """Raises HttpError / OSError / TimeoutError on failure (and the connection is dropped)."""
        started = time.perf_counter()
        raw = _encode(self.host, self.port, method, path, headers, body, close=not self.keep_alive)
        try:
            async with asyncio.timeout(timeout):
                reused = self._writer is not None
                try:
                    return await self._exchange(raw, method, started)
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    # The server dropped an idle connection just as we reused it: nothing of the
                    # answer arrived, so the request was not served; send it again once, anew.
                    if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                        raise
                    self.close()
                return await self._exchange(raw, method, started)
        except BaseException:
            self.close()
            raise

    async def _exchange(self, raw: bytes, method: str, started: float) -> Response:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
            self.opened += 1
        self._writer.write(raw)
        status, hdrs, data, reusable = await _read_response(self._reader, method)
        if not reusable:
            self.close()
        return Response(status, hdrs, data, (time.perf_counter() - started) * 1000.0)


async def request(
    host: str,
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: object | None = None,
    timeout: float = 30.0,
) -> Response:
    """One request on a fresh connection. Raises HttpError / OSError / TimeoutError on failure."""
    conn = Connection(host, port, keep_alive=False)
    try:
        return await conn.request(method, path, headers=headers, body=body, timeout=timeout)
    finally:
        conn.close()
