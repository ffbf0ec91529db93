"""The Celery app: JSON only, time limits, the beat schedule from coinlink.beat_schedule."""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import Celery, signals
from celery.beat import PersistentScheduler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coinlink.settings")

app = Celery("coinlink")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class BeatScheduler(PersistentScheduler):
    """Celery's own persistent scheduler, creating its state file's directory first: the default file
    lives in a state directory (coinlink.config), not in whatever directory beat was started from."""

    def setup_schedule(self) -> None:
        filename = self.schedule_filename  # type: ignore[attr-defined]  # set by PersistentScheduler; not in celery-types
        Path(filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()


@app.on_after_finalize.connect
def _schedule(sender, **kwargs):
    from coinlink.beat_schedule import beat_schedule

    sender.conf.beat_schedule = beat_schedule()


@signals.setup_logging.connect
def _django_logging(**kwargs):
    """Workers and beat log through Django's LOGGING (JSON lines with request ids), not Celery's own format.

    Connecting this signal is what stops Celery from replacing the root logger's handlers.
    """
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.worker_init.connect
def _metrics_server(**kwargs):
    """With CELERY_METRICS_PORT set, the worker's main process serves every pool process's metrics."""
    from django.conf import settings

    port = settings.CONFIG.celery_metrics_port
    if not port:
        return
    from coinlink.metrics import metrics_http_serve

    # Inside the container network only; Prometheus scrapes it there. nosec: bandit B104 is intended.
    addr = os.environ.get("CELERY_METRICS_ADDR", "0.0.0.0")  # noqa: S104  # nosec B104
    metrics_http_serve(port, addr)


@signals.worker_process_shutdown.connect
def _pool_process_gone(pid=None, **kwargs):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


@signals.before_task_publish.connect
def _carry_request_id(headers=None, **kwargs):
    """Tasks log with the id of the request that enqueued them."""
    from coinlink import context

    if headers is not None and context.request_id.get():
        headers.setdefault("coinlink_request_id", context.request_id.get())


_started: dict[str, float] = {}


@signals.task_prerun.connect
def _task_started(task_id=None, task=None, **kwargs):
    from coinlink import context

    rid = None
    if task is not None:
        headers = getattr(task.request, "headers", None) or {}
        rid = getattr(task.request, "coinlink_request_id", None) or headers.get("coinlink_request_id")
    context.request_id.set(rid or task_id)
    context.trace_id.set(rid or task_id)
    _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, **kwargs):
    from coinlink import metrics

    started = _started.pop(task_id, None)
    if started is not None and task is not None:
        metrics.TASK_DURATION.labels(task=task.name).observe(time.perf_counter() - started)


@signals.task_failure.connect
def _task_failed(sender=None, **kwargs):
    from coinlink import metrics

    metrics.TASK_FAILURES.labels(task=getattr(sender, "name", "unknown")).inc()
