"""Post-deployment smoke test: does the release behind BASE_URL work, as a client sees it?

`scripts/smoke BASE_URL` (or `python -m coinlink.smoke`) checks /health, /readyz, fresh tickers, the
OpenAPI schema and a ticker frame on /ws; with SMOKE_EMAIL and SMOKE_PASSWORD set it also signs a
dedicated account in, refreshes and signs out. Nothing else writes. Exit status 0 when every check
passes, 1 with one line per failed check, 2 for bad usage. It imports no Django settings, so it runs
from any checkout or image without the deployment's secrets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import connect as websocket_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.typing import Origin

CONTRACT_PATHS = ("/api/v2/market/ticker", "/api/v2/auth/login", "/readyz")
REQUEST_TIMEOUT = 10.0


class CheckFailed(Exception):
    """A check's verdict, worded for the operator who reads it."""


@dataclass(frozen=True)
class Options:
    base_url: str
    origin: str
    timeout: float = 60.0
    max_age: float = 300.0
    ws_wait: float = 15.0
    email: str = ""
    password: str = ""


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: str
    duration_ms: float


Check = Callable[[httpx.AsyncClient, Options], Awaitable[str]]


def _error_summary(response: httpx.Response) -> str:
    """`HTTP 503 service_unavailable: CoinLink is unavailable...` from the contract's error shape, when it has one."""
    summary = f"HTTP {response.status_code}"
    if response.is_redirect:
        return f"{summary} to {response.headers.get('location', '?')} (smoke the final URL)"
    try:
        body = response.json()
    except ValueError:
        return summary
    if isinstance(body, dict) and body.get("code"):
        summary += f" {body['code']}: {str(body.get('detail', ''))[:120]}"
    return summary


def _json_of(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    if response.status_code != status:
        raise CheckFailed(_error_summary(response))
    try:
        body = response.json()
    except ValueError:
        raise CheckFailed(f"HTTP {status} but the body is not JSON") from None
    if not isinstance(body, dict):
        raise CheckFailed(f"HTTP {status} but the body is not a JSON object")
    return body


async def health_check(client: httpx.AsyncClient, options: Options) -> str:
    body = _json_of(await client.get("/health"))
    if body.get("status") != "ok":
        raise CheckFailed(f"status is {body.get('status')!r}, not 'ok'")
    return "ok"


def _failing_dependencies(body: dict[str, Any]) -> list[str]:
    checks = body.get("checks")
    if not isinstance(checks, dict):
        return []
    return [
        f"{name} ({check.get('error') or check.get('status')})"
        for name, check in sorted(checks.items())
        if isinstance(check, dict) and check.get("status") != "ok"
    ]


async def readiness_check(client: httpx.AsyncClient, options: Options) -> str:
    response = await client.get("/readyz")
    if response.status_code == 503:
        try:
            failing = _failing_dependencies(response.json())
        except ValueError:  # the proxy's 503, not the app's
            failing = []
        raise CheckFailed(f"HTTP 503, not ready: {', '.join(failing) or _error_summary(response)}")
    body = _json_of(response)
    failing = _failing_dependencies(body)
    return f"{body.get('status')}" + (f", degraded: {', '.join(failing)}" if failing else "")


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def tickers_check(client: httpx.AsyncClient, options: Options) -> str:
    body = _json_of(await client.get("/api/v2/market/ticker", params={"limit": 20}))
    data = [t for t in body.get("data") or [] if isinstance(t, dict)]
    if not data:
        raise CheckFailed("no tickers: no ingest has stored a price yet")
    stale = [str(t.get("symbol")) for t in data if t.get("stale") is not False]
    if stale:
        raise CheckFailed(
            f"stale prices for {', '.join(stale[:5])}{' ...' if len(stale) > 5 else ''}: the ingest is failing"
        )
    times = [moment for moment in (_timestamp(t.get("last_updated")) for t in data) if moment]
    if not times:
        raise CheckFailed("no ticker has a last_updated time")
    # The newest, not the oldest: upstreams date a quiet coin's price by its last trade, minutes back.
    age = (datetime.now(UTC) - max(times)).total_seconds()
    if age > options.max_age:
        raise CheckFailed(f"newest price is {age:.0f} s old, over the {options.max_age:g} s limit")
    return f"{len(data)} tickers, newest {max(age, 0):.0f} s old"


async def schema_check(client: httpx.AsyncClient, options: Options) -> str:
    body = _json_of(await client.get("/api/schema", params={"format": "json"}))
    version = str(body.get("openapi", ""))
    if not version.startswith("3."):
        raise CheckFailed(f"not an OpenAPI 3 document (openapi: {version!r})")
    paths = body.get("paths")
    if not isinstance(paths, dict):
        raise CheckFailed(f"OpenAPI {version} document without paths")
    missing = [path for path in CONTRACT_PATHS if path not in paths]
    if missing:
        raise CheckFailed(f"OpenAPI {version} lacks {', '.join(missing)}")
    return f"OpenAPI {version}, {len(paths)} paths"


def ws_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/ws"


async def websocket_check(client: httpx.AsyncClient, options: Options) -> str:
    started = time.monotonic()
    try:
        async with asyncio.timeout(options.ws_wait):
            async with websocket_connect(
                ws_url(options.base_url), origin=Origin(options.origin), open_timeout=None, close_timeout=2
            ) as socket:
                while True:
                    frame = json.loads(await socket.recv())
                    if isinstance(frame, dict) and frame.get("type") == "crypto_ticker_update" and frame.get("data"):
                        waited = time.monotonic() - started
                        return f"crypto_ticker_update with {len(frame['data'])} tickers after {waited:.1f} s"
    except InvalidStatus as refused:
        status = refused.response.status_code
        hint = f" (is {options.origin} in WS_ALLOWED_ORIGINS?)" if status == 403 else ""
        raise CheckFailed(f"handshake refused with HTTP {status}{hint}") from None
    except ConnectionClosed as closed:
        raise CheckFailed(
            f"closed before a ticker frame (code {closed.rcvd.code if closed.rcvd else 'none'})"
        ) from None
    except TimeoutError:
        raise CheckFailed(f"no crypto_ticker_update frame within {options.ws_wait:g} s") from None


async def auth_check(client: httpx.AsyncClient, options: Options) -> str:
    login = await client.post("/api/v2/auth/login", json={"email": options.email, "password": options.password})
    tokens = _json_of(login).get("tokens") or {}
    refreshed = await client.post("/api/v2/auth/refresh", json={"refresh_token": tokens.get("refresh_token")})
    if refreshed.status_code != 200:
        raise CheckFailed(f"login worked, refresh got {_error_summary(refreshed)}")
    tokens = _json_of(refreshed).get("tokens") or {}
    logout = await client.post(
        "/api/v2/auth/logout",
        json={"refresh_token": tokens.get("refresh_token")},
        headers={"Authorization": f"Bearer {tokens.get('access_token')}"},
    )
    if logout.status_code != 204:
        raise CheckFailed(f"login and refresh worked, logout got {_error_summary(logout)}")
    return "login, refresh and logout"


def smoke_checks(options: Options) -> list[tuple[str, Check]]:
    checks: list[tuple[str, Check]] = [
        ("health", health_check),
        ("readyz", readiness_check),
        ("tickers", tickers_check),
        ("schema", schema_check),
        ("websocket", websocket_check),
    ]
    if options.email and options.password:
        checks.append(("auth", auth_check))
    return checks


def _describe(error: Exception) -> str:
    if isinstance(error, httpx.TimeoutException):
        return f"timed out ({error.__class__.__name__})"
    return f"{error.__class__.__name__}: {str(error)[:200] or 'no detail'}"


async def smoke_run(*, options: Options) -> list[Result]:
    """Every check in turn, each failure caught and worded; the whole run ends within `options.timeout`."""
    deadline = time.monotonic() + options.timeout
    results: list[Result] = []
    timeout = httpx.Timeout(min(REQUEST_TIMEOUT, options.timeout))
    headers = {"User-Agent": "coinlink-smoke", "Accept": "application/json"}
    async with httpx.AsyncClient(base_url=options.base_url, timeout=timeout, headers=headers) as client:
        for name, check in smoke_checks(options):
            started = time.monotonic()
            remaining = deadline - started
            if remaining <= 0:
                results.append(Result(name, False, f"not run: the {options.timeout:g} s budget was spent", 0.0))
                continue
            try:
                async with asyncio.timeout(remaining):
                    ok, detail = True, await check(client, options)
            except CheckFailed as failed:
                ok, detail = False, str(failed)
            except TimeoutError:
                ok, detail = False, f"cut off when the {options.timeout:g} s budget ran out"
            except (httpx.HTTPError, WebSocketException, OSError, ValueError) as error:
                ok, detail = False, _describe(error)
            results.append(Result(name, ok, detail, round((time.monotonic() - started) * 1000, 1)))
    return results


def report_text(results: list[Result], base_url: str) -> str:
    lines = [f"{'ok  ' if r.ok else 'FAIL'} {r.name}: {r.detail} ({r.duration_ms:.0f} ms)" for r in results]
    failed = sum(not r.ok for r in results)
    verdict = "every check passed" if not failed else f"{failed} of {len(results)} checks failed"
    return "\n".join([*lines, f"smoke {base_url}: {verdict}"])


def report_json(results: list[Result], options: Options) -> str:
    return json.dumps(
        {
            "base_url": options.base_url,
            "origin": options.origin,
            "ok": all(r.ok for r in results),
            "checks": [asdict(r) for r in results],
        }
    )


def _base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(f"{value!r} is not an http(s) base URL like https://api.example.com")
    return value.rstrip("/")


def _seconds(value: str) -> float:
    number = float(value)
    if not 0 < number <= 3600:
        raise argparse.ArgumentTypeError(f"{value!r} must be between 0 and 3600 seconds")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/smoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", type=_base_url, help="where the release answers, e.g. https://api.example.com")
    parser.add_argument("--origin", help="Origin for /ws (default: SMOKE_ORIGIN, else BASE_URL's own origin)")
    parser.add_argument("--timeout", type=_seconds, default=60.0, help="the whole run's limit in seconds (60)")
    parser.add_argument("--max-age", type=_seconds, default=300.0, help="newest price at most this old (300 s)")
    parser.add_argument("--ws-wait", type=_seconds, default=15.0, help="wait this long for a ticker frame (15 s)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout instead of lines")
    return parser


def options_from(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> tuple[Options, bool]:
    environ = dict(os.environ) if environ is None else environ
    args = _parser().parse_args(argv)
    parts = urlsplit(args.base_url)
    origin = args.origin or environ.get("SMOKE_ORIGIN") or f"{parts.scheme}://{parts.netloc}"
    options = Options(
        base_url=args.base_url,
        origin=origin,
        timeout=args.timeout,
        max_age=args.max_age,
        ws_wait=min(args.ws_wait, args.timeout),
        email=environ.get("SMOKE_EMAIL", ""),
        password=environ.get("SMOKE_PASSWORD", ""),
    )
    return options, args.json


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    options, as_json = options_from(argv, environ)
    results = asyncio.run(smoke_run(options=options))
    print(report_json(results, options) if as_json else report_text(results, options.base_url))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
