"""Every upstream call goes through `Upstream.get_json`: timeouts, bounded retries with backoff and
jitter, Retry-After on 429, the shared circuit breaker, and metrics. It returns parsed JSON or
raises `UpstreamError`; it never sleeps past the caller's deadline."""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import cache

from coinlink import metrics
from markets.providers.breaker import BreakerOpen, CircuitBreaker

logger = logging.getLogger("markets.upstream")

MAX_ATTEMPTS = 3
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 120.0
MAX_BODY_BYTES = 5_000_000

sleep = time.sleep  # tests replace it to observe the waits


class UpstreamError(Exception):
    """A provider call that failed after its retries; `reason` is a metrics label."""

    def __init__(self, provider: str, reason: str, detail: str = ""):
        super().__init__(f"{provider}: {reason}{': ' + detail if detail else ''}")
        self.provider = provider
        self.reason = reason
        self.detail = detail

    @property
    def cause(self) -> str:
        """The failure in a few words fit for a public page: never a body, a host or an address."""
        if self.reason in ("connect", "timeout"):
            return self.detail  # the httpx exception's class name, e.g. ConnectError
        return CAUSES.get(self.reason, self.reason)


CAUSES = {
    "http_429": "rate limited (HTTP 429)",
    "http_5xx": "server error (HTTP 5xx)",
    "http_4xx": "request refused (HTTP 4xx)",
    "bad_payload": "unusable answer",
    "breaker_open": "paused after repeated failures",
    "deadline": "no answer within the poll period",
}


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None when absent or garbage."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt))."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))  # noqa: S311 - jitter, not crypto


def build_client() -> httpx.Client:
    timeout = httpx.Timeout(
        connect=settings.UPSTREAM_CONNECT_TIMEOUT,
        read=settings.UPSTREAM_READ_TIMEOUT,
        write=settings.UPSTREAM_READ_TIMEOUT,
        pool=settings.UPSTREAM_CONNECT_TIMEOUT,
    )
    return httpx.Client(
        timeout=timeout,
        headers={"Accept": "application/json", "User-Agent": "CoinLink/2 (+market data ingest)"},
        # Kept alive across polls (httpx's default drops an idle connection after 5 s, well inside the
        # 30 s default period), so the shared client does not open a new TLS session every poll.
        limits=httpx.Limits(
            max_connections=10,
            max_keepalive_connections=10,
            keepalive_expiry=max(60.0, 2.0 * settings.MARKET_POLL_SECONDS),
        ),
        follow_redirects=False,
    )


_shared: tuple[int, httpx.Client] | None = None
_shared_lock = threading.Lock()


def shared_client() -> httpx.Client:
    """This process's one pooled client, for every provider and every poll.

    Building a client costs an SSL context (about 40 ms of CPU on the 2026-11-26 benchmark guest),
    and a new client per poll also meant a new TCP and TLS handshake with the provider every poll.
    httpx's Client can be shared between threads. A forked child (Celery's prefork pool)
    builds its own: the parent's pooled sockets are not its to use.
    """
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():
            _shared = (os.getpid(), build_client())
        return _shared[1]


class Pacer:
    """Spaces call starts at least `interval` seconds apart, across threads (upstream rate limits)."""

    def __init__(self, interval: float):
        self.interval = interval
        self.lock = threading.Lock()
        self.next_at = 0.0

    def wait(self, *, deadline: float) -> None:
        """Sleep until this caller's turn, but never past `deadline` (the caller checks it next)."""
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + self.interval
        wait = min(start, deadline) - now
        if wait > 0:
            sleep(wait)


class SharedPacer:
    """At most one call start per `interval` seconds across every process (slots claimed in the shared cache)."""

    def __init__(self, name: str, interval: float):
        self.name, self.key, self.interval = name, f"markets:pace:{name}", interval

    def wait(self, *, deadline: float) -> None:
        """Return once this caller holds a slot; UpstreamError("deadline") if none is free in time."""
        while True:
            now = time.time()
            slot = int(now // self.interval)
            if cache.add(f"{self.key}:{slot}", 1, timeout=math.ceil(self.interval) + 1):
                return
            wait = (slot + 1) * self.interval - now
            if time.monotonic() + wait >= deadline:
                raise UpstreamError(self.name, "deadline", "no call slot before the deadline")
            time.sleep(wait)  # not the module's `sleep`: tests record that one, and this loop must really wait


class _Failure(Exception):
    def __init__(self, reason: str, detail: str = "", *, retry: bool = True, wait: float | None = None):
        super().__init__(detail)
        self.reason, self.detail, self.retry, self.wait = reason, detail, retry, wait


class Upstream:
    """`lane="history"` is for fetches the ingest must never pay for: they count failures and
    Retry-After in a breaker of their own, and are refused while the ingest's breaker is not closed
    (a failing or rate-limited provider, or a half-open trial that belongs to the ingest)."""

    def __init__(
        self, provider: str, base_url: str, *, headers: dict[str, str] | None = None, client=None, lane: str = "ingest"
    ):
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.headers = headers or {}
        self.client = client or shared_client()
        self.breaker = CircuitBreaker(provider if lane == "ingest" else f"{provider}-{lane}")
        self.ingest_breaker = None if lane == "ingest" else CircuitBreaker(provider)

    def get_json(self, path: str, params: dict | None = None, *, endpoint: str, deadline: float) -> Any:
        """GET base_url+path and return its JSON, or raise UpstreamError; `deadline` is time.monotonic()."""
        try:
            if self.ingest_breaker is not None and self.ingest_breaker.state() != "closed":
                raise BreakerOpen(self.provider, 0.0)
            self.breaker.before_call()
        except BreakerOpen as exc:
            metrics.UPSTREAM_ERRORS.labels(provider=self.provider, reason="breaker_open").inc()
            raise UpstreamError(self.provider, "breaker_open", str(exc)) from None
        failure: _Failure | None = None
        for attempt in range(MAX_ATTEMPTS):
            try:
                body = self._attempt(path, params, endpoint)
            except _Failure as exc:
                failure = exc
                metrics.UPSTREAM_ERRORS.labels(provider=self.provider, reason=exc.reason).inc()
                # Per attempt, so debug only: the ingest logs once when the providers become unreachable.
                logger.debug("%s %s failed (%s) %s", self.provider, endpoint, exc.reason, exc.detail[:200])
                if exc.wait is not None:
                    self.breaker.cool_down(min(exc.wait, RETRY_AFTER_CAP))
                wait = backoff(attempt) if exc.wait is None else exc.wait
                if not exc.retry or attempt == MAX_ATTEMPTS - 1 or wait > RETRY_AFTER_CAP:
                    break
                if time.monotonic() + wait >= deadline:
                    break  # never sleep past the poll period: the next run is due by then
                sleep(wait)
                continue
            self.breaker.record_success()
            return body
        assert failure is not None
        if failure.reason != "http_4xx":  # a 4xx is our request's fault, not a sign the provider is down
            self.breaker.record_failure()
        raise UpstreamError(self.provider, failure.reason, failure.detail)

    def _attempt(self, path: str, params: dict | None, endpoint: str) -> Any:
        started = time.perf_counter()
        try:
            response = self.client.get(self.base_url + path, params=params, headers=self.headers)
        except httpx.TimeoutException as exc:
            raise _Failure("timeout", exc.__class__.__name__) from None
        except httpx.HTTPError as exc:
            raise _Failure("connect", exc.__class__.__name__) from None
        finally:
            metrics.UPSTREAM_DURATION.labels(provider=self.provider, endpoint=endpoint).observe(
                time.perf_counter() - started
            )
        status = response.status_code
        if status == 429:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            raise _Failure("http_429", f"Retry-After {wait}", wait=wait if wait is not None else 5.0)
        if status >= 500:
            raise _Failure(f"http_{status // 100}xx", response.text[:200])
        if status != 200:
            # 4xx other than 429: our request is wrong; retrying will not help.
            raise _Failure("http_4xx", f"{status} {response.text[:200]}", retry=False)
        return self._json(response)

    def _json(self, response: httpx.Response) -> Any:
        content_type = response.headers.get("Content-Type", "")
        if "json" not in content_type and not content_type.startswith("text/plain"):
            raise _Failure("bad_payload", f"content-type {content_type!r}")
        if len(response.content) > MAX_BODY_BYTES:
            raise _Failure("bad_payload", "body too large", retry=False)
        if not response.content.strip():
            raise _Failure("bad_payload", "empty body")
        try:
            return response.json()
        except ValueError as exc:  # truncated or malformed JSON; json accepts NaN, checked by the parsers
            raise _Failure("bad_payload", f"invalid JSON: {exc}") from None
