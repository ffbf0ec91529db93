"""The contract's one error shape, for DRF views, Django views and middleware alike.

`{"detail": str, "code": snake_case, "errors": {field: [msg]}?, "trace_id": request id}`
Services raise `DomainError` subclasses; nothing else builds error bodies by hand.
"""

from __future__ import annotations

import logging
import sys

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.utils.log import log_response
from django_ratelimit.exceptions import Ratelimited
from rest_framework import exceptions as drf
from rest_framework.response import Response

from coinlink import context, metrics

logger = logging.getLogger("coinlink.errors")


class DomainError(Exception):
    """A failure a client can act on; the exception handler renders it."""

    status_code = 400
    code = "bad_request"
    detail = "The request could not be processed."

    def __init__(self, detail: str | None = None, *, code: str | None = None, errors: dict | None = None):
        super().__init__(detail or self.detail)
        self.detail = detail or self.detail
        self.code = code or self.code
        self.errors = errors


class NotFound(DomainError):
    status_code = 404
    code = "not_found"
    detail = "Not found."


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"
    detail = "Too many requests. Try again later."

    def __init__(self, retry_after: int, detail: str | None = None):
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class ServiceUnavailable(DomainError):
    status_code = 503
    code = "service_unavailable"
    detail = "A service CoinLink depends on is unavailable. Try again shortly."

    def __init__(self, detail: str | None = None, *, retry_after: int = 5, code: str | None = None):
        super().__init__(detail, code=code)
        self.retry_after = retry_after


def error_body(status: int, detail: str, code: str, errors: dict | None = None) -> dict:
    body: dict = {"detail": detail, "code": code}
    if errors:
        body["errors"] = errors
    body["trace_id"] = context.request_id.get()
    return body


def _field_errors(detail) -> dict:
    if isinstance(detail, dict):
        return {str(k): _messages(v) for k, v in detail.items()}
    return {"non_field_errors": _messages(detail)}


def _messages(value) -> list[str]:
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            out.extend(_messages(item) if isinstance(item, list | dict) else [str(item)])
        return out
    if isinstance(value, dict):
        return [f"{k}: {m}" for k, v in value.items() for m in _messages(v)]
    return [str(value)]


def _first_message(errors: dict) -> str:
    for field, messages in errors.items():
        if messages:
            return messages[0] if field == "non_field_errors" else f"{field}: {messages[0]}"
    return "Invalid input."


def _translate(exc: Exception) -> tuple[int, dict, dict[str, str]] | None:
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, ServiceUnavailable):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, DomainError) and exc.status_code == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="api"'  # RFC 9110: every 401 names its scheme
    if isinstance(exc, DomainError):
        return exc.status_code, error_body(exc.status_code, exc.detail, exc.code, exc.errors), headers
    if isinstance(exc, Ratelimited):
        headers["Retry-After"] = "60"
        return 429, error_body(429, RateLimited.detail, "rate_limited"), headers
    if isinstance(exc, drf.ValidationError):
        errors = _field_errors(exc.detail)
        return 400, error_body(400, _first_message(errors), "validation_error", errors), headers
    if isinstance(exc, drf.Throttled):
        headers["Retry-After"] = str(int(exc.wait or 1))  # type: ignore[attr-defined]  # set in __init__; stubs omit it
        return 429, error_body(429, RateLimited.detail, "rate_limited"), headers
    if isinstance(exc, drf.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.default_detail)
        if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
        return exc.status_code, error_body(exc.status_code, str(detail), str(code)), headers
    if isinstance(exc, Http404):
        return 404, error_body(404, "Not found.", "not_found"), headers
    if isinstance(exc, PermissionDenied):
        return 403, error_body(403, "You do not have permission to perform this action.", "permission_denied"), headers
    if isinstance(exc, OperationalError | InterfaceError) or type(exc) is DatabaseError:
        logger.error("database unavailable: %s", exc.__class__.__name__)
        metrics.DEPENDENCY_ERRORS.labels(dependency="database").inc()
        headers["Retry-After"] = "5"
        return 503, error_body(503, ServiceUnavailable.detail, "database_unavailable"), headers
    if _is_redis_down(exc):
        logger.error("redis unavailable: %s", exc.__class__.__name__)
        metrics.DEPENDENCY_ERRORS.labels(dependency="redis").inc()
        headers["Retry-After"] = "5"
        return 503, error_body(503, ServiceUnavailable.detail, "cache_unavailable"), headers
    return None


def _is_redis_down(exc: Exception) -> bool:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is a hard dependency
        return False
    return isinstance(exc, RedisConnectionError | RedisTimeoutError)


def _log_foreseen(exc: Exception, response) -> None:
    """A DomainError's 5xx is a condition the service foresaw and explains to the client (no price yet,
    no store to count limits in): logged at INFO, through Django's log_response, which marks the
    response logged so that django.request does not log it again at ERROR. A real 500 stays ERROR."""
    if isinstance(exc, DomainError) and response.status_code >= 500:
        log_response("%s %s", exc.code, exc.detail, response=response, logger=logger, level="info")


def exception_handler(exc: Exception, ctx: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every error in the contract's shape; unknown errors fall to handler500."""
    translated = _translate(exc)
    if translated is None:
        return None
    status, body, headers = translated
    response = Response(body, status=status, headers=headers)
    _log_foreseen(exc, response)
    return response


def json_error(status: int, detail: str, code: str, headers: dict | None = None) -> JsonResponse:
    response = JsonResponse(error_body(status, detail, code), status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def response_for_exception(exc: Exception) -> JsonResponse | None:
    """For middleware: the contract-shaped response for a known exception, else None."""
    translated = _translate(exc)
    if translated is None:
        return None
    status, body, headers = translated
    response = JsonResponse(body, status=status)
    for name, value in headers.items():
        response[name] = value
    _log_foreseen(exc, response)
    return response


# Django's error views (urls.handler400 ...): JSON, never an HTML page.
def bad_request(request, exception=None):
    return json_error(400, "Bad request.", "bad_request")


def permission_denied(request, exception=None):
    if isinstance(exception, Ratelimited):
        return json_error(429, RateLimited.detail, "rate_limited", {"Retry-After": "60"})
    return json_error(403, "You do not have permission to perform this action.", "permission_denied")


def page_not_found(request, exception=None):
    return json_error(404, "Not found.", "not_found")


def server_error(request):
    """handler500, which Django calls inside its `except` block, for views and middleware alike: an outage
    of the database or Redis is a 503 the client may retry, not a 500."""
    exc = sys.exc_info()[1]
    if isinstance(exc, Exception) and (
        isinstance(exc, OperationalError | InterfaceError) or type(exc) is DatabaseError or _is_redis_down(exc)
    ):
        response = response_for_exception(exc)
        if response is not None:
            return response
    return json_error(500, "Internal server error. It has been logged; quote the trace_id.", "server_error")
