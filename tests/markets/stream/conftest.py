"""Stream fixtures: the fake Coinbase feed (tests/fake_coinbase_feed.py), a streamer running on the
test's loop, and short flush, idle, backoff and lease periods."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time

import pytest
from asgiref.sync import sync_to_async

from tests.coinlink.procs import ROOT, free_port, http_get, stop, wait_until
from tests.fake_coinbase_feed import FakeCoinbaseFeed
from tests.realtime.conftest import _release_thread_connections, open_feed, store_prices  # noqa: F401 - shared fixtures
from tests.realtime.servers import database_url_of_tests

FLUSH_MS = 100


@pytest.fixture
def stream_settings(settings):
    settings.MARKET_STREAM_FLUSH_MS = FLUSH_MS
    settings.MARKET_STREAM_IDLE_SECONDS = 1.0
    settings.MARKET_STREAM_BACKOFF_MAX_SECONDS = 0.5
    settings.MARKET_STREAM_LEASE_SECONDS = 2.0
    return settings


@pytest.fixture
def products(transactional_db):
    """Every product the streamer subscribes to (the catalogue's Coinbase products in each quote)."""
    from markets.catalogue import catalogue_load
    from markets.stream.publish import stream_products

    catalogue_load()
    return stream_products()


@pytest.fixture
def feed(products):
    with FakeCoinbaseFeed(products=products, heartbeat_seconds=0.2) as fake:
        yield fake


@pytest.fixture
def streamer(stream_settings):
    """`async with streamer(url) as s:` runs a Streamer on this loop until the block ends."""
    from markets.stream.runner import Streamer

    @contextlib.asynccontextmanager
    async def _run(url: str):
        stop = asyncio.Event()
        running = Streamer(url=url)
        task = asyncio.create_task(running.run(stop))
        try:
            yield running
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)

    return _run


@pytest.fixture
def embedded_server(feed):
    """`manage.py serve` as scripts/run starts it, with no Redis (the embedded default), fed by `feed`."""
    port, closed = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # no Redis: the embedded default
    env.update(
        DATABASE_URL=database_url_of_tests(),
        COINBASE_STREAM_URL=feed.url,
        MARKET_STREAM_FLUSH_MS="200",
        # The poll runs too; offline here, so point it at a closed port to fail fast.
        COINGECKO_BASE_URL=f"http://127.0.0.1:{closed}/api/v3",
        COINBASE_EXCHANGE_BASE_URL=f"http://127.0.0.1:{closed}",
        WS_ALLOWED_ORIGINS=f"http://127.0.0.1:{port}",
        LOG_LEVEL="warning",
    )
    command = [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/health")[0] == 200, timeout=30)
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)


async def until(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll `predicate` (sync, run in a thread when it touches the database) until it is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")


def snapshot_price(symbol: str, quote: str = "usd") -> dict | None:
    """The ticker REST serves right now (the shared snapshot, not this process's copy)."""
    from markets.selectors import ticker_get
    from markets.snapshot import snapshot_forget

    snapshot_forget()
    return ticker_get(quote=quote, symbol=symbol)


asnapshot_price = sync_to_async(snapshot_price)
