"""The PostgreSQL backend (coinlink.db.postgresql): persistent connections are checked before each
request's first query without a round trip, and one the server has ended is replaced, not failed on."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from tests.coinlink.procs import child_env, free_port, http_fetch, start_gunicorn, stop, wait_until

pytestmark = [pytest.mark.postgres]


def _terminate(pids: list[int]) -> None:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])


def _alive(pids: list[int]) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [pids])
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_a_connection_is_usable_until_the_server_ends_it():
    connection.ensure_connection()
    assert connection.is_usable()
    _terminate([connection.connection.info.backend_pid])
    wait_until(lambda: not connection.is_usable(), timeout=5)
    connection.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_request_after_the_database_dropped_the_servers_connection_is_answered_not_failed():
    """PostgreSQL restarted (or an admin ended the backends): gunicorn's worker still holds its old
    connection; the next request must get a new one instead of a 503."""
    from tests.realtime.servers import database_url_of_tests

    port = free_port()
    env = child_env(LOG_LEVEL="warning", PROMETHEUS_MULTIPROC_DIR=None, DATABASE_URL=database_url_of_tests())
    web = start_gunicorn({**env, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1"})
    readyz = f"http://127.0.0.1:{port}/readyz"
    try:
        wait_until(lambda: http_fetch(readyz)[0] == 200, timeout=30)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            servers = [row[0] for row in cursor.fetchall()]
        assert servers, "the worker keeps its connection between requests (DB_CONN_MAX_AGE)"
        _terminate(servers)
        # pg_terminate_backend only signals: wait until those backends have exited (and so have told
        # their clients), as after a restart. A request racing the signal itself fails anywhere.
        wait_until(lambda: not _alive(servers), timeout=10)

        status, _, body = http_fetch(readyz)
        assert status == 200, body
    finally:
        stop(web)
