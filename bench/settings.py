"""The product's settings with the bench's own URLconf: `DJANGO_SETTINGS_MODULE=bench.settings`.

The product never routes a bench view; the bench serves its baseline view itself (bench/urls.py).
"""

from coinlink.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
