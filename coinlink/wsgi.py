"""WSGI entrypoint: gunicorn serves the HTTP API in production (see docs/performance.md for why)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coinlink.settings")
django_wsgi_app = get_wsgi_application()

from coinlink.bodylimit import BodyLimitWSGI  # noqa: E402

application = BodyLimitWSGI(django_wsgi_app)
