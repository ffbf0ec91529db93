"""WSGI entrypoint: gunicorn serves the HTTP API in production (see docs/performance.md for why)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coinlink.settings")
application = get_wsgi_application()
