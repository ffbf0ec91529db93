"""gunicorn's probe listener (PROBE_PORT, deploy/gunicorn.conf.py): when every worker is busy with a
backlog of API requests, a health probe on its own listener is answered by the next free worker
instead of after the whole backlog, so a liveness check does not fail because the API is busy."""

from __future__ import annotations

import json
import threading

import pytest

from tests.coinlink.procs import child_env, free_port, http_fetch, http_get, start_gunicorn, stop, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BACKLOG = 40


def test_a_probe_overtakes_a_backlog_of_api_requests():
    from tests.realtime.servers import database_url_of_tests

    port, probe_port = free_port(), free_port()
    env = child_env(
        LOG_LEVEL="warning",
        PROMETHEUS_MULTIPROC_DIR=None,
        DATABASE_URL=database_url_of_tests(),
        RATELIMIT_ENABLED="false",
        BCRYPT_ROUNDS="10",
    )
    # One worker, so "every worker is busy" is certain. The backlog is failed sign-ins: each hashes
    # the password once with bcrypt (tens of milliseconds), as a real one does.
    web = start_gunicorn(
        {**env, "HOST": "127.0.0.1", "PORT": str(port), "PROBE_PORT": str(probe_port), "WEB_CONCURRENCY": "1"}
    )
    finished: list[str] = []
    lock = threading.Lock()

    def call(name: str, url: str, data: bytes | None = None) -> None:
        headers = {"Content-Type": "application/json"} if data else {}
        http_fetch(url, headers, timeout=60, data=data)
        with lock:
            finished.append(name)

    login = json.dumps({"email": "nobody@example.com", "password": "not-the-password-1"}).encode()

    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{probe_port}/health")[0] == 200, timeout=30)
        api = [
            threading.Thread(target=call, args=(f"api{i}", f"http://127.0.0.1:{port}/api/v2/auth/login", login))
            for i in range(BACKLOG)
        ]
        for thread in api:
            thread.start()
        wait_until(lambda: len(finished) >= 1, timeout=30)  # the backlog is being worked through
        probe = threading.Thread(target=call, args=("probe", f"http://127.0.0.1:{probe_port}/health"))
        probe.start()
        for thread in [*api, probe]:
            thread.join(60)
    finally:
        stop(web)

    assert len(finished) == BACKLOG + 1
    # Through the API's own listener the probe would come after everything queued before it.
    assert finished.index("probe") < BACKLOG // 2, finished
