"""`manage.py serve`: uvicorn on one port for HTTP and WebSocket, plus the embedded schedule.

uvicorn, not daphne: daphne's WebSocket layer (autobahn) refuses to send the contract's close codes
1008 and 1009, and it reads a whole request body before the app can refuse it. Production's `/ws`
runs on uvicorn with the same WebSocket flags (deploy/docker-entrypoint.sh); docs/performance.md.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand


def uvicorn_options(*, host: str, port: int) -> dict:
    """Production's `/ws` flags, plus what one process serving everything directly needs."""
    return {
        "host": host,
        "port": port,
        "ws": "websockets-sansio",
        "ws_per_message_deflate": False,
        "ws_max_size": settings.WS_MAX_FRAME_BYTES,
        "ws_ping_interval": 60,
        "ws_ping_timeout": 30,
        "lifespan": "off",  # Channels' router has no lifespan protocol
        "log_config": None,  # Django's LOGGING already formats every logger
        "log_level": "warning",  # the banner says where it listens; a line per socket is noise
        "access_log": False,  # coinlink.middleware logs one line per request
        "proxy_headers": False,  # no proxy in front: X-Forwarded-For from a client is not believed
        "timeout_graceful_shutdown": 10,
    }


class Command(BaseCommand):
    help = "Serve HTTP and WebSocket with uvicorn; in the embedded default also run the periodic jobs."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-scheduler", action="store_true", help="no in-process schedule or market stream")

    def handle(self, *args, host: str, port: int, no_scheduler: bool, **options):
        import uvicorn

        from coinlink.embedded_scheduler import start_embedded_scheduler
        from markets.stream.runner import start_embedded_stream

        mode = "embedded (SQLite, in-process cache, feed and schedule)" if settings.EMBEDDED else "services"
        self.stdout.write(
            f"CoinLink on http://{host}:{port}/  ·  API docs http://{host}:{port}/api/docs  ·  "
            f"admin http://{host}:{port}/admin/  ·  WebSocket ws://{host}:{port}/ws  ·  mode: {mode}",
        )
        self.stdout.flush()
        if not no_scheduler:
            start_embedded_scheduler()
            start_embedded_stream()
        uvicorn.Server(uvicorn.Config("coinlink.asgi:application", **uvicorn_options(host=host, port=port))).run()
