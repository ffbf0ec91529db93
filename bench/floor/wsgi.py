"""The floor project as a WSGI application, for gunicorn (bench/stack.py `--floor`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.floor.settings")
application = get_wsgi_application()
