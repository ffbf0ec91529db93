"""The project's Celery app plus test-only tasks, for ops tests that run a real `celery worker`.

`celery -A tests.coinlink.ops_celery worker` loads exactly the production app (signals, settings);
only the broker visibility timeout can be shortened (OPS_TEST_VISIBILITY_TIMEOUT) so a lost
message comes back within the test instead of after an hour.
"""

from __future__ import annotations

import logging
import os
import time

from coinlink import context
from coinlink.celery import app

if os.environ.get("OPS_TEST_VISIBILITY_TIMEOUT"):
    app.conf.broker_transport_options = {
        "visibility_timeout": float(os.environ["OPS_TEST_VISIBILITY_TIMEOUT"]),
        # kombu sweeps for expired unacked messages every interval x throttle seconds (100 s by default).
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }

logger = logging.getLogger("tests.ops")


def _redis():
    from coinlink.redis import get_redis

    return get_redis()


@app.task(name="tests.ops.log_request_id")
def log_request_id(key: str) -> None:
    """Logs a line and records the request id this task runs under."""
    logger.info("ops test task ran", extra={"probe": key})
    _redis().set(key, context.request_id.get() or "", ex=300)


@app.task(name="tests.ops.slow_idempotent")
def slow_idempotent(key: str, seconds: float) -> None:
    """Counts starts, sleeps, then completes once: a redelivered run finds the work done."""
    redis = _redis()
    redis.incr(f"{key}:starts")
    redis.expire(f"{key}:starts", 300)
    time.sleep(seconds)
    if redis.set(f"{key}:done", "1", nx=True, ex=300):
        redis.incr(f"{key}:completions")
        redis.expire(f"{key}:completions", 300)
