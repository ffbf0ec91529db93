"""Sentry: errors and (sampled) traces, with no personal data and no secrets."""

from __future__ import annotations

from coinlink.logging import scrub


def _before_send(event, hint):
    """Redact the whole event: request parts, exception messages, log entries, breadcrumbs, frame vars."""
    request = event.get("request") or {}
    if "cookies" in request:
        request["cookies"] = "[redacted]"
    headers = request.get("headers")
    if isinstance(headers, dict):
        for name in list(headers):
            if name.lower() in ("authorization", "cookie", "set-cookie", "x-api-key", "proxy-authorization"):
                headers[name] = "[redacted]"
    return scrub(event)


def sentry_init(config) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.redis import RedisIntegration

    sentry_sdk.init(
        dsn=config.sentry_dsn,
        environment=config.sentry_environment,
        release=config.release,
        traces_sample_rate=config.sentry_traces_sample_rate,
        send_default_pii=False,
        integrations=[DjangoIntegration(), CeleryIntegration(), RedisIntegration()],
        before_send=_before_send,
        before_send_transaction=_before_send,
    )
