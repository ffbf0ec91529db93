"""The WebSocket side of `coinlink.asgi`: Origin check -> per-IP cap -> `/ws` (also `/ws/`)."""

from channels.routing import URLRouter
from django.urls import path, re_path

from realtime.consumers import FeedConsumer
from realtime.middleware import AllowedOriginValidator, ClientLimitMiddleware, deny

feed = FeedConsumer.as_asgi()

websocket_application = AllowedOriginValidator(
    ClientLimitMiddleware(
        URLRouter(
            [
                path("ws", feed, name="ws-feed"),
                path("ws/", feed),
                re_path(r"", deny),  # type: ignore[arg-type, list-item]  # an ASGI app: Channels routes those
            ]
        )
    )
)
