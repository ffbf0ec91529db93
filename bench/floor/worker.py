"""Serves CPU measurements of the floor view to bench/api_cpu.py, which runs it as a subprocess.

One Django process cannot hold two projects' settings, so the floor runs in its own; each line
`N` on stdin answers one JSON line on stdout: the CPU seconds (`time.process_time`) of N calls of
the view through Django's WSGI handler, measured exactly as api_cpu.py measures CoinLink's calls.

`worker.py token` only creates the table, the account and its session, and prints the Bearer
token: bench/stack.py does that before it serves the floor with gunicorn (bench/floor/wsgi.py).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def setup(ttl: int = 3600) -> str:
    """Creates the table, one account row and its live session; returns a Bearer token for it."""
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.floor.settings"
    django.setup()
    import jwt
    from django.conf import settings
    from django.db import connection

    from bench.floor.urls import SESSION_KEY, TABLE, _redis

    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id uuid PRIMARY KEY, name text, unread int)")
        cursor.execute(f"INSERT INTO {TABLE} VALUES (%s, %s, %s)", [user_id, "floor", 3])
    _redis().set(SESSION_KEY.format(session_id), b"1", ex=ttl)
    now = int(time.time())
    claims = {
        "token_type": "access", "exp": now + ttl, "iat": now, "jti": secrets.token_hex(16),
        "sub": str(user_id), "sid": str(session_id), "iss": settings.JWT_ISSUER, "aud": settings.JWT_AUDIENCE,
    }  # fmt: skip
    return jwt.encode(claims, settings.JWT_KEY, algorithm="HS256")


def cleanup() -> None:
    from django.db import connection

    from bench.floor.urls import TABLE

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")


def main() -> None:
    if sys.argv[1:] == ["token"]:
        print(setup(ttl=6 * 3600))
        return
    from django.core.wsgi import get_wsgi_application

    from bench.api_cpu import wsgi_call

    token = setup()
    app = get_wsgi_application()
    try:
        for line in sys.stdin:
            spent = []
            for _ in range(int(line)):
                status, _body, cpu = wsgi_call(app, "GET", "/floor/account", token=token)
                if status != 200:
                    raise SystemExit(f"floor view answered {status}: {_body[:200]!r}")
                spent.append(cpu)
            print(json.dumps(spent), flush=True)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
