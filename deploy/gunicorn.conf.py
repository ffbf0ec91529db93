"""gunicorn settings for the HTTP API (`web`): sync workers, Prometheus multiprocess bookkeeping.

Every value can be overridden from the environment (GUNICORN_CMD_ARGS or the variables below).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from pathlib import Path

_host = os.environ.get("HOST", "0.0.0.0")  # noqa: S104 - inside a container
bind = [f"{_host}:{os.environ.get('PORT', '8000')}"]
# PROBE_PORT: a second listener for health probes (the proxy's /health, /livez, /readyz and the
# container's healthcheck). A sync worker takes one connection from each ready listener in turn, so
# a probe waits for the next free worker instead of behind the whole API backlog when the API is
# saturated (docs/performance.md, "Mixed workload"). Same app, same routes: keep the port internal.
if os.environ.get("PROBE_PORT"):
    bind.append(f"{_host}:{os.environ['PROBE_PORT']}")
# CPUs + 1, not gunicorn's usual 2 x CPUs + 1: a request here is mostly CPU with short waits on a
# nearby PostgreSQL and Redis, and on one host that shares its cores with them (compose), extra
# workers only add switching. Measured at 2 cores: 3 workers served ~5 % more requests per minute
# than 5, at ~10 % less CPU each and 180 MB less memory (docs/performance.md, runs V0-V10). With the
# database across a network, workers wait longer: raise WEB_CONCURRENCY towards 2 x CPUs + 1.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak never becomes an outage. Not too often: a new worker
# imports Django (~1 s of CPU); at 5,000 a worker serving the cached ticker lived ~12 s.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "50000"))
max_requests_jitter = max_requests // 10
# Our RequestIdMiddleware writes the access log (JSON, with request id and duration).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Heartbeat files on tmpfs, not on the (possibly slow) container overlay.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - tmpfs, by design
# The app reads the client address itself from X-Forwarded-For, trusting only TRUSTED_PROXIES.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    """Start from an empty multiprocess directory: files of a previous master would be summed in."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        path = Path(directory)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)


def child_exit(server, worker):
    """A dead worker's live gauges must stop counting; its counters and histograms stay summed."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
