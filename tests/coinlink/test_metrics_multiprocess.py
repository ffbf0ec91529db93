"""/metrics under gunicorn with several worker processes: one scrape sees every worker's counts."""

from __future__ import annotations

import re
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.coinlink.procs import child_env, free_port, http_get, start_gunicorn, stop, wait_until

pytestmark = pytest.mark.slow

_HEALTH_COUNT = re.compile(
    r'^coinlink_http_request_duration_seconds_count\{[^}]*view="health"[^}]*\} ([0-9.e+]+)$', re.M
)


def _health_requests_counted(base: str) -> float:
    status, body = http_get(f"{base}/metrics")
    assert status == 200
    return sum(float(v) for v in _HEALTH_COUNT.findall(body.decode()))


@pytest.fixture
def gunicorn_two_workers(tmp_path):
    port = free_port()
    metrics_dir = tmp_path / "prom"
    env = child_env(
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        WEB_CONCURRENCY="2",
        PORT=str(port),
        HOST="127.0.0.1",
        METRICS_TOKEN=None,
        METRICS_ALLOWED_NETWORKS=None,
        LOG_LEVEL="warning",
    )
    process = start_gunicorn(env, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_get(f"{base}/health")[0] == 200, timeout=30)
        yield base, metrics_dir, process
    finally:
        stop(process)


def _worker_pids(master: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True, check=False)
    return {int(pid) for pid in out.stdout.split()}


def test_it_adds_up_counters_from_every_gunicorn_worker(gunicorn_two_workers):
    base, metrics_dir, _process = gunicorn_two_workers
    before = _health_requests_counted(base)
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: http_get(f"{base}/health")[0], range(200)))
    assert statuses == [200] * 200

    # Both workers served requests and wrote their own files ...
    writers = {path.stem.rsplit("_", 1)[-1] for path in metrics_dir.glob("histogram_*.db")}
    assert len(writers) >= 2, writers
    # ... and every scrape, whichever worker answers it, reports the same total.
    totals = {_health_requests_counted(base) - before for _ in range(6)}
    assert totals == {200.0}


def test_it_keeps_a_dead_workers_counts_and_gunicorn_replaces_the_worker(gunicorn_two_workers):
    base, _metrics_dir, process = gunicorn_two_workers
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: http_get(f"{base}/health"), range(100)))
    counted = _health_requests_counted(base)
    victims = _worker_pids(process.pid)
    assert len(victims) == 2
    victim = victims.pop()
    subprocess.run(["kill", f"-{signal.SIGKILL.value}", str(victim)], check=True)
    wait_until(lambda: len(_worker_pids(process.pid) - {victim}) == 2, timeout=30)

    assert _health_requests_counted(base) >= counted
    assert process.poll() is None
