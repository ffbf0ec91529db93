"""A configured PostgreSQL database that does not exist, said in one line instead of a traceback."""

from __future__ import annotations

import shlex

import psycopg
from django.db import connection


def database_missing_hint() -> str | None:
    """How to create the configured database when the server is reachable and lacks it; else None.

    Asked of the server's catalogue (through its `postgres` database), not read from the error text,
    which the server words in its own language.
    """
    if connection.vendor != "postgresql":
        return None
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    name = params.pop("dbname", None)
    params.setdefault("connect_timeout", 5)
    try:
        with psycopg.connect(**params, dbname="postgres") as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    except psycopg.Error:
        return None  # the server itself is unreachable or refuses us: the original error says more
    if exists:
        return None
    host, port, user = params.get("host") or "localhost", params.get("port") or 5432, params.get("user") or ""
    create = f"createdb -h {shlex.quote(str(host))} -p {port}" + (f" -U {shlex.quote(user)}" if user else "")
    create += f" {shlex.quote(name)}"
    return f'The database "{name}" in DATABASE_URL does not exist on {host}:{port}. Create it with: {create}'
