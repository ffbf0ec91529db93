"""Project-wide HTTP middleware: request ids and access log, path normalisation, request guards."""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.functional import empty

from accounts.emails import email_limit_key
from coinlink import context, metrics
from coinlink.bodylimit import body_over_limit
from coinlink.errors import json_error, response_for_exception
from coinlink.net import client_ip
from coinlink.ratelimit import limit

access_log = logging.getLogger("coinlink.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
# Paths that answer the same with or without a trailing slash (the contract): resolved slash-less.
_SLASHLESS = re.compile(r"^/(api|health|livez|readyz|metrics)(/.*)?/$")
_QUIET_PATHS = ("/health", "/livez", "/metrics")
_PROBE = re.compile(r"^/(health|livez|readyz|metrics)$")
ADMIN_LOGIN_RATE = "10/m"  # as the API's sign-in (accounts.api.views.LOGIN_RATE_PER_IP)


class RequestIdMiddleware:
    """Gives every request an id (the client's if sane), logs one line per request, times it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        match = _TRACEPARENT.match(request.headers.get("traceparent", ""))
        tokens = (
            context.request_id.set(rid),
            context.trace_id.set(match.group(1) if match else rid),
            context.user_id.set(None),
        )
        request.request_id = rid
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = rid
            self._record(request, response.status_code, started)
            return response
        finally:
            context.request_id.reset(tokens[0])
            context.trace_id.reset(tokens[1])
            context.user_id.reset(tokens[2])

    def _record(self, request, status: int, started: float) -> None:
        duration = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match and match.view_name else "<unresolved>"
        metrics.HTTP_DURATION.labels(view=view, method=request.method, status=str(status)).observe(duration)
        if request.path_info in _QUIET_PATHS and status < 400:
            return
        access_log.info(
            "%s %s %s",
            request.method,
            request.path,
            status,
            extra={
                "method": request.method,
                "path": request.path,
                "status": status,
                "duration_ms": round(duration * 1000, 2),
                "user_id": _user_id(request),
                "client_ip": client_ip(request),
            },
        )


def _user_id(request) -> str | None:
    """The authenticated user's id, without loading a user nobody loaded: evaluating the lazy
    session user here would query the database after the response (and fail when it is down)."""
    user = getattr(request, "user", None)
    if user is None or getattr(user, "_wrapped", None) is empty:
        return context.user_id.get()
    try:
        return str(user.pk) if user.is_authenticated else None
    except Exception:  # an access log line must never turn a response into an error
        return None


class TrailingSlashMiddleware:
    """API and ops paths resolve the same with or without a trailing slash, never via a redirect.

    Probes also answer under any Host header: Prometheus and container health checks address a
    replica by its IP, which ALLOWED_HOSTS cannot list. What they return does not depend on the host.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _SLASHLESS.match(request.path_info):
            request.path_info = request.path_info.rstrip("/")
        if _PROBE.match(request.path_info):
            _allow_probe_host(request)
        return self.get_response(request)


def _allow_probe_host(request) -> None:
    allowed = [host for host in settings.ALLOWED_HOSTS if host != "*"]
    domain, _ = split_domain_port(request.META.get("HTTP_HOST", ""))
    if allowed and not (domain and validate_host(domain, allowed)):
        request.META["HTTP_HOST"] = allowed[0].lstrip(".")


# Above the proxy's client_max_body_size (2 MB, deploy/nginx/coinlink.conf): any body it passes on.
_DRAIN_MAX_BYTES = 4 * 1024 * 1024


def _drain(request, length: int) -> None:
    """Read and drop a refused body before answering. A server that answers and closes with unread
    bytes in its socket makes the kernel reset the connection; the proxy, still sending the body,
    can see that reset before the 413 and answer 502 instead. Bodies beyond what a proxy would pass
    on are not read: the connection is closed on them."""
    if length > _DRAIN_MAX_BYTES:
        return
    try:
        while request.read(64 * 1024):
            pass
    except OSError:  # the client went away; the 413 is still the answer
        pass


class RequestGuardMiddleware:
    """Refuses hostile requests before any view: oversized bodies, NUL bytes, floods (per IP)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refused = self._refuse(request)
        return refused if refused is not None else self.get_response(request)

    def _refuse(self, request):
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            return json_error(400, "NUL bytes are not allowed in the URL.", "invalid_characters")
        too_big = self._body_too_big(request)
        if too_big:
            return too_big
        if request.method == "POST" and request.path_info.rstrip("/") == "/admin/login":
            return self._limited(request, self._admin_login_limit)
        if not request.path.startswith("/api/"):
            return None
        return self._limited(request, self._rate_limit)

    @staticmethod
    def _limited(request, check):
        try:
            check(request)
        except Exception as exc:
            response = response_for_exception(exc)
            if response is None:
                raise
            return response
        return None

    @staticmethod
    def _admin_login_limit(request):
        # Staff passwords get the API sign-in's limits, per address and per account, failing closed:
        # without them the admin form is an unlimited password oracle (and a bcrypt hash per try).
        limit(request, group="admin-login", key="ip", rate=ADMIN_LOGIN_RATE, fail_open=False)
        limit(request, group="admin-login-user", key=_admin_username, rate=ADMIN_LOGIN_RATE, fail_open=False)

    @staticmethod
    def _body_too_big(request):
        limit_bytes = settings.MAX_REQUEST_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error(400, "Invalid Content-Length header.", "bad_request")
        if length > limit_bytes or body_over_limit(request):
            _drain(request, length)
            return json_error(413, f"Request body larger than {limit_bytes} bytes.", "payload_too_large")
        return None

    @staticmethod
    def _rate_limit(request):
        market_read = request.method in ("GET", "HEAD") and _is_market_path(request.path_info)
        limit(
            request,
            group="market" if market_read else "api",
            key="ip",
            rate=settings.RATELIMIT_MARKET if market_read else settings.RATELIMIT_DEFAULT,
            fail_open=True,
        )


def _admin_username(group, request) -> str:
    return email_limit_key(request.POST.get("username", ""))


def _is_market_path(path: str) -> bool:
    return path.startswith(("/api/v2/market", "/api/bitcoin"))
