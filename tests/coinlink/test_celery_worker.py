"""A real `celery worker` against Redis: request ids reach task logs, a killed worker's task comes back."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid

import pytest

from tests.coinlink.procs import BIN, ROOT, child_env, stop, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def _worker(queue: str, *, pool: str = "solo", visibility_timeout: float | None = None, **env) -> subprocess.Popen:
    overrides = {"LOG_FORMAT": "json", "LOG_LEVEL": "info", **env}
    if visibility_timeout is not None:
        overrides["OPS_TEST_VISIBILITY_TIMEOUT"] = str(visibility_timeout)
    command = [str(BIN / "celery"), "-A", "tests.coinlink.ops_celery", "worker", "-Q", queue, "--pool", pool]
    command += ["--concurrency", "1", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", queue]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=child_env(**overrides),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.fixture
def redis():
    from coinlink.redis import get_redis

    return get_redis()


@pytest.fixture
def queue(redis):
    name = f"ops-test-{uuid.uuid4().hex[:10]}"
    yield name
    redis.delete(name)


def test_it_logs_a_task_with_the_request_id_that_enqueued_it(redis, queue):
    from coinlink import context
    from tests.coinlink.ops_celery import app

    worker = _worker(queue)
    key = f"ops:rid:{uuid.uuid4().hex}"
    token = context.request_id.set("req-ops-4242")
    try:
        app.send_task("tests.ops.log_request_id", args=[key], queue=queue)
    finally:
        context.request_id.reset(token)
    try:
        assert wait_until(lambda: redis.get(key), timeout=30) == b"req-ops-4242"
    finally:
        stop(worker)
    output = worker.stdout.read()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    ran = [line for line in lines if line.get("message") == "ops test task ran"]
    assert len(ran) == 1, output[-2000:]
    assert ran[0]["request_id"] == "req-ops-4242"
    assert ran[0]["trace_id"] == "req-ops-4242"
    assert ran[0]["level"] == "info" and "time" in ran[0]


def test_it_redelivers_the_task_of_a_worker_killed_mid_task_and_completes_it_once(redis, queue):
    from tests.coinlink.ops_celery import app

    key = f"ops:kill:{uuid.uuid4().hex}"
    first = _worker(queue, visibility_timeout=3)
    app.send_task("tests.ops.slow_idempotent", args=[key, 4.0], queue=queue)
    try:
        wait_until(lambda: redis.get(f"{key}:starts") == b"1", timeout=30)
    finally:
        # The whole worker dies without a chance to ack or requeue: a lost machine.
        stop(first, signal.SIGKILL)
    assert redis.get(f"{key}:done") is None

    second = _worker(queue, visibility_timeout=3)
    try:
        wait_until(lambda: redis.get(f"{key}:completions") == b"1", timeout=60)
        time.sleep(1)
    finally:
        stop(second)
    assert redis.get(f"{key}:starts") == b"2"
    assert redis.get(f"{key}:completions") == b"1"
    for suffix in ("starts", "done", "completions"):
        redis.delete(f"{key}:{suffix}")


def test_it_requeues_at_once_when_a_pool_process_dies_mid_task(redis, queue):
    """acks_late + reject_on_worker_lost: the parent worker sees its child die and requeues the task."""
    from tests.coinlink.ops_celery import app

    key = f"ops:child:{uuid.uuid4().hex}"
    worker = _worker(queue, pool="prefork")
    try:
        app.send_task("tests.ops.slow_idempotent", args=[key, 3.0], queue=queue)
        wait_until(lambda: redis.get(f"{key}:starts") == b"1", timeout=30)
        children = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 1
        subprocess.run(["kill", "-KILL", children[0]], check=True)
        wait_until(lambda: redis.get(f"{key}:completions") == b"1", timeout=60)
    finally:
        stop(worker)
    assert redis.get(f"{key}:starts") == b"2"
    for suffix in ("starts", "done", "completions"):
        redis.delete(f"{key}:{suffix}")


def test_it_serves_the_pool_processes_metrics_from_the_worker(redis, queue, tmp_path):
    from tests.coinlink.ops_celery import app
    from tests.coinlink.procs import free_port, http_get

    port = free_port()
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    worker = _worker(queue, pool="prefork", CELERY_METRICS_PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    key = f"ops:metrics:{uuid.uuid4().hex}"
    try:
        app.send_task("tests.ops.log_request_id", args=[key], queue=queue)
        wait_until(lambda: redis.get(key) is not None, timeout=30)

        def counted():
            status, body = http_get(f"http://127.0.0.1:{port}/metrics")
            line = 'coinlink_task_duration_seconds_count{task="tests.ops.log_request_id"} 1.0'
            return status == 200 and line in body.decode()

        assert wait_until(counted, timeout=15)
    finally:
        stop(worker)
    redis.delete(key)
