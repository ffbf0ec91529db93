"""A minimal HTTP/1.1 client on asyncio streams: one connection per request, as a browser behind
the proxy looks to gunicorn's sync workers (which close every connection after the response).

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


async def request(
    host: str,
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: object | None = None,
    timeout: float = 30.0,
    local_addr: str | None = None,
) -> Response:
    """One request on a fresh connection. Raises HttpError / OSError / TimeoutError on failure."""
    started = time.perf_counter()
    payload = b""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close", "Accept: application/json"]
    # Like a browser: compressed bodies are welcome (the server decides what is worth compressing).
    lines.append("Accept-Encoding: gzip")
    if body is not None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        lines.append("Content-Type: application/json")
    if payload or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(payload)}")
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, local_addr=(local_addr, 0) if local_addr else None, limit=1 << 20
            )
            writer.write(raw)
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
            if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                data = b""
            elif "content-length" in hdrs:
                data = await reader.readexactly(int(hdrs["content-length"]))
            elif "chunked" in hdrs.get("transfer-encoding", "").lower():
                data = await _read_chunked(reader)
            else:
                data = await reader.read(-1)
    finally:
        if writer is not None:
            writer.close()
    return Response(status, hdrs, data, (time.perf_counter() - started) * 1000.0)
