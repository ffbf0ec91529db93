"""The embedded default's in-process schedule: a daemon thread that runs the beat entries, and the
tasks handed to it with `task_submit`.

Only for one-machine runs without Redis; with REDIS_URL set, Celery beat alone schedules.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from django.conf import settings

logger = logging.getLogger("coinlink.embedded_scheduler")


# Tasks submitted in the embedded default, run by the scheduler thread between its jobs.
_submitted: queue.SimpleQueue[tuple[str, dict]] = queue.SimpleQueue()


def task_submit(task, *, kwargs: dict, expires: float) -> None:
    """Run `task` later, off the caller's thread: through the broker, or in the embedded default on the
    in-process scheduler (there Celery is eager and `delay()` would run it right here, in the request)."""
    if settings.EMBEDDED:
        _submitted.put((task.name, kwargs))
    else:
        task.apply_async(kwargs=kwargs, expires=expires)


class InProcessScheduler(threading.Thread):
    def __init__(self, schedule: dict, *, first_delay: float = 1.0):
        super().__init__(name="coinlink-scheduler", daemon=True)
        now = time.monotonic()
        self.entries = {name: dict(entry, next_run=now + first_delay) for name, entry in schedule.items()}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            now = time.monotonic()
            for name, entry in self.entries.items():
                if now >= entry["next_run"]:
                    entry["next_run"] = now + entry["schedule"]
                    self._run(name, entry)
            self._run_submitted()
            self.stopped.wait(0.5)

    def _run_submitted(self) -> None:
        """One submitted task per turn, so a burst of them never holds the scheduled jobs back."""
        try:
            task, kwargs = _submitted.get_nowait()
        except queue.Empty:
            return
        self._run(task, {"task": task, "kwargs": kwargs})

    def _run(self, name: str, entry: dict) -> None:
        from coinlink.celery import app

        task = app.tasks.get(entry["task"])
        if task is None:
            logger.warning("scheduled task %s is not registered", entry["task"])
            return
        try:
            task.apply(kwargs=entry.get("kwargs", {}))
        except Exception:
            logger.exception("scheduled job %s failed", name)

    def stop(self) -> None:
        self.stopped.set()


def start_embedded_scheduler() -> InProcessScheduler | None:
    if not settings.EMBEDDED:
        logger.info("REDIS_URL is set: Celery beat owns the schedule, the in-process scheduler stays off")
        return None
    from coinlink.beat_schedule import beat_schedule
    from coinlink.celery import app

    app.loader.import_default_modules()
    scheduler = InProcessScheduler(beat_schedule())
    scheduler.start()
    logger.info("in-process scheduler started with %d jobs", len(scheduler.entries))
    return scheduler
