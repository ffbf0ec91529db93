"""Settings of the floor project: no apps, no middleware, one DRF view (bench/floor/urls.py).

Read from the environment that bench/api_cpu.py gives it: DATABASE_URL (PostgreSQL), REDIS_URL,
FLOOR_JWT_KEY (the HS256 key).
"""

from __future__ import annotations

import os

import dj_database_url

SECRET_KEY = os.environ.get("FLOOR_SECRET_KEY", "bench-floor-only-never-deployed")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.floor.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
USE_TZ = True
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=None)}
REDIS_URL = os.environ["REDIS_URL"]
JWT_KEY = os.environ["FLOOR_JWT_KEY"]
JWT_ISSUER = "floor"
JWT_AUDIENCE = "floor-api"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],  # the view names its own (bench/floor/urls.py)
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
