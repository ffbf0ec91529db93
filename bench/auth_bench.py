"""The auth hot path and the auth endpoints' own cost, measured in-process.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/coinlink_accounts REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/auth_bench.py [--checks 20000] [--auths 5000] [--refreshes 300] [--logins 10]

Needs a migrated database (`manage.py migrate`). Times, per call:
- `session_is_active` with the cache warm (the per-request revocation check: one cache GET, no query),
  and with the cache key missing (the fallback: one indexed SELECT, then re-cached);
- `SessionJWTAuthentication.authenticate` (HS256 verify + session check + the user SELECT DRF needs);
- `session_refresh` (decode, the conditional UPDATE claim, signing the new pair);
- `user_login` at the configured BCRYPT_ROUNDS (bcrypt dominates, by design).
It creates one `auth-bench-*` user and deletes it (and its sessions) at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coinlink.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.test import APIRequestFactory  # noqa: E402

from accounts import services  # noqa: E402
from accounts.authentication import SessionJWTAuthentication  # noqa: E402
from accounts.models import User  # noqa: E402
from accounts.selectors import session_is_active  # noqa: E402
from accounts.session_cache import state_key  # noqa: E402

PASSWORD = "auth bench passphrase 2026"
CLIENT = services.ClientInfo(ip_address="198.51.100.10", user_agent="auth-bench/1")


def timed(n: int, fn) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    print(
        f"| {name} | {len(samples)} | {statistics.mean(samples) * 1000:.3f} | {p(0.5):.3f} | {p(0.95):.3f} | "
        f"{p(0.99):.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=20000)
    parser.add_argument("--auths", type=int, default=5000)
    parser.add_argument("--refreshes", type=int, default=300)
    parser.add_argument("--logins", type=int, default=10)
    args = parser.parse_args()

    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    print(f"database={db} cache={backend} bcrypt={settings.BCRYPT_ROUNDS}")
    user = User.objects.create_user(email=f"auth-bench-{uuid.uuid4().hex[:8]}@example.com", password=PASSWORD)
    try:
        tokens = services.session_start(user=user, client=CLIENT)
        sid = tokens.session_id
        auth = SessionJWTAuthentication()
        request = Request(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {tokens.access_token}"))

        print("| operation | n | mean ms | p50 ms | p95 ms | p99 ms |")
        print("|---|---|---|---|---|---|")
        report("session check, cache warm", timed(args.checks, lambda: session_is_active(session_id=sid)))

        def cold():
            cache.delete(state_key(sid))
            session_is_active(session_id=sid)

        report("session check, key missing (DB fallback)", timed(args.checks // 4, cold))
        report("authenticate() per request", timed(args.auths, lambda: auth.authenticate(request)))

        state = {"refresh": tokens.refresh_token}

        def refresh():
            state["refresh"] = services.session_refresh(refresh_token=state["refresh"]).refresh_token

        report("session_refresh (rotation)", timed(args.refreshes, refresh))
        report(
            f"user_login (bcrypt {settings.BCRYPT_ROUNDS} rounds)",
            timed(args.logins, lambda: services.user_login(email=user.email, password=PASSWORD, client=CLIENT)),
        )
    finally:
        User.objects.filter(pk=user.pk).delete()
        connection.close()


if __name__ == "__main__":
    main()
