"""`manage.py serve`: daphne on one port for HTTP and WebSocket, plus the embedded schedule."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve HTTP and WebSocket with daphne; in the embedded default also run the periodic jobs."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-scheduler", action="store_true", help="no in-process schedule or market stream")

    def handle(self, *args, host: str, port: int, no_scheduler: bool, **options):
        from daphne.cli import CommandLineInterface

        from coinlink.scheduler import start_embedded_scheduler
        from markets.stream.runner import start_embedded_stream

        mode = "embedded (SQLite, in-process cache, channel layer and schedule)" if settings.EMBEDDED else "services"
        self.stdout.write(
            f"CoinLink on http://{host}:{port}/  ·  API docs http://{host}:{port}/api/docs  ·  "
            f"admin http://{host}:{port}/admin/  ·  WebSocket ws://{host}:{port}/ws  ·  mode: {mode}"
        )
        if not no_scheduler:
            start_embedded_scheduler()
            start_embedded_stream()
        CommandLineInterface().run(["-v", "0", "-b", host, "-p", str(port), "coinlink.asgi:application"])
