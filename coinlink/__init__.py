"""CoinLink: the project package (settings, URLs, ASGI/WSGI, Celery app, middleware)."""

from coinlink.celery import app as celery_app

__all__ = ("celery_app",)
