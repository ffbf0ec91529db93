"""`manage.py markets_stream`: the Coinbase feed streamer as its own asyncio process (production)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Stream live prices from the Coinbase Exchange feed; replicas elect one publisher through Redis."

    def add_arguments(self, parser):
        parser.add_argument("--health-file", type=Path, help="touched at every flush period while the loop runs")
        parser.add_argument("--url", help="feed URL (default COINBASE_STREAM_URL)")

    def handle(self, *args, health_file: Path | None, url: str | None, **options):
        if not settings.MARKET_STREAM_ENABLED:
            self.stderr.write("MARKET_STREAM_ENABLED is false: not streaming")
            return
        port = settings.CONFIG.market_stream_metrics_port
        if port:
            from coinlink.metrics import metrics_http_serve

            # Inside the container network only; Prometheus scrapes it there. nosec: bandit B104 is intended.
            metrics_http_serve(port, os.environ.get("MARKET_STREAM_METRICS_ADDR", "0.0.0.0"))  # noqa: S104  # nosec B104
        asyncio.run(_main(url=url, health_file=health_file))


async def _main(*, url: str | None, health_file: Path | None) -> None:
    from markets.stream.runner import stream_main

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stream_main(url=url, health_file=health_file, stop=stop)
