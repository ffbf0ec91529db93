"""ASGI entrypoint: WebSockets (and, in the embedded default, HTTP too)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coinlink.settings")
# Django must be set up before anything imports models (the Channels docs' order).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from coinlink.bodylimit import BodyLimitASGI  # noqa: E402
from realtime.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter({"http": BodyLimitASGI(django_asgi_app), "websocket": websocket_application})
