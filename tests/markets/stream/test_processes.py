"""Real `manage.py markets_stream` processes on one Redis: one leader publishes, a standby takes over,
and an alert crossed by a tick fires exactly once however many streamers read the feed."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from tests.coinlink.procs import BIN, ROOT, stop
from tests.markets.stream.conftest import asnapshot_price, until
from tests.realtime.servers import database_url_of_tests

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

LEASE_SECONDS = 2.0


class Proc:
    """A child process whose output lines are collected as they come."""

    def __init__(self, command: list[str], env: dict[str, str]):
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)


@pytest.fixture
def spawn(feed):
    import os

    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_tests(),
        "REDIS_URL": settings.CONFIG.redis_url,
        "COINBASE_STREAM_URL": feed.url,
        "MARKET_STREAM_FLUSH_MS": "200",
        "MARKET_STREAM_IDLE_SECONDS": "3",
        "MARKET_STREAM_BACKOFF_MAX_SECONDS": "0.5",
        "MARKET_STREAM_LEASE_SECONDS": str(LEASE_SECONDS),
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "info",
    }
    started: list[Proc] = []

    def _spawn(command: list[str]) -> Proc:
        started.append(Proc(command, env))
        return started[-1]

    yield _spawn
    for proc in started:
        stop(proc.process)


def streamer(spawn, *options: str) -> Proc:
    return spawn([sys.executable, "manage.py", "markets_stream", *options])


async def _price_is(symbol: str, price: float) -> bool:
    ticker = await asnapshot_price(symbol)
    return ticker is not None and ticker["price"] == price


async def test_a_killed_leader_is_replaced_by_the_standby_within_one_lease_period(feed, spawn, store_prices, tmp_path):
    await store_prices({"BTC": "60000"})
    first = streamer(spawn)
    await until(lambda: first.said("is the leader"), timeout=30)
    alive = tmp_path / "alive"
    second = streamer(spawn, "--health-file", str(alive))
    await until(lambda: second.said("connected to") and second.said("standby"), timeout=30)
    await until(alive.exists)  # the container healthcheck's signal, from a standby too
    touched = alive.stat().st_mtime
    await until(lambda: alive.stat().st_mtime > touched)
    feed.tick("BTC-USD", "61000")
    await until(lambda: _price_is("BTC", 61000.0))

    first.process.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    await until(lambda: second.said("is the leader"), timeout=3 * LEASE_SECONDS + 10)
    took_over = time.monotonic() - killed
    feed.tick("BTC-USD", "62000")
    await until(lambda: _price_is("BTC", 62000.0))
    # The lease runs out at most one period after the leader's last renewal; slack for this machine.
    assert took_over < LEASE_SECONDS + 2.0
    assert not first.said("Traceback") and not second.said("Traceback")


async def test_an_alert_crossed_by_a_tick_fires_exactly_once_across_two_streamers(feed, spawn, store_prices, owner):
    from notifications.models import AlertTrigger
    from tests.notifications.factories import AlertFactory

    await store_prices({"BTC": "60000"})
    alert = await sync_to_async(AlertFactory)(user=owner, condition="crosses_above", target_value=64000, repeat=True,
                                              cooldown_seconds=0)  # fmt: skip
    worker = spawn([str(BIN / "celery"), "-A", "coinlink", "worker", "--pool", "solo", "--without-gossip",
                    "--without-mingle", "--without-heartbeat", "-n", "stream-alerts"])  # fmt: skip
    streamers = [streamer(spawn), streamer(spawn)]
    await until(lambda: worker.said("ready"), timeout=30)
    await until(lambda: all(s.said("connected to") for s in streamers), timeout=30)
    await until(lambda: any(s.said("is the leader") for s in streamers), timeout=30)

    fired = AlertTrigger.objects.filter(alert=alert)
    triggers = sync_to_async(lambda: list(fired.values_list("price", "previous_price")))
    feed.tick("BTC-USD", "65000")
    await until(triggers, timeout=20)
    for price in ("65500", "66000"):  # above the target already: nothing more is crossed
        feed.tick("BTC-USD", price)
        await until(lambda p=price: _price_is("BTC", float(p)))
    await asyncio.sleep(1.0)  # several flushes and task runs after the last tick
    assert await triggers() == [(65000, 60000)]  # once, with the previous flush's price as "previous"
