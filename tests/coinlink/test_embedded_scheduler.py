import threading
import time

from coinlink.celery import app
from coinlink.embedded_scheduler import InProcessScheduler, start_embedded_scheduler, task_submit

calls: list[dict] = []
ran = threading.Event()


@app.task(name="tests.scheduler_probe")
def scheduler_probe(**kwargs):
    calls.append({**kwargs, "thread": threading.current_thread().name})
    ran.set()


def test_it_runs_each_entry_on_its_period_in_a_background_thread():
    calls.clear()
    ran.clear()
    scheduler = InProcessScheduler(
        {"probe": {"task": "tests.scheduler_probe", "schedule": 60.0, "kwargs": {"n": 1}}}, first_delay=0
    )
    scheduler.start()
    try:
        assert ran.wait(5)
        time.sleep(0.7)
    finally:
        scheduler.stop()
        scheduler.join(5)
    assert calls == [{"n": 1, "thread": "coinlink-scheduler"}]  # once, not again before its 60 s period


def test_embedded_a_submitted_task_runs_on_the_scheduler_thread_not_in_the_caller(settings):
    settings.EMBEDDED = True
    calls.clear()
    ran.clear()
    task_submit(scheduler_probe, kwargs={"n": 2}, expires=60)
    assert calls == []  # eager Celery would have run it here, in a web request
    scheduler = InProcessScheduler({}, first_delay=0)
    scheduler.start()
    try:
        assert ran.wait(5)
    finally:
        scheduler.stop()
        scheduler.join(5)
    assert calls == [{"n": 2, "thread": "coinlink-scheduler"}]


def test_a_failing_job_does_not_stop_the_schedule():
    scheduler = InProcessScheduler({"missing": {"task": "tests.not_registered", "schedule": 1.0}}, first_delay=0)
    scheduler._run("missing", scheduler.entries["missing"])  # logs and returns
    assert scheduler.is_alive() is False


def test_it_stays_off_when_celery_beat_owns_the_schedule(settings):
    settings.EMBEDDED = False
    assert start_embedded_scheduler() is None


def test_the_beat_schedule_expires_each_ingest_before_the_next_is_due(settings):
    from coinlink.beat_schedule import beat_schedule

    settings.MARKET_POLL_SECONDS = 30
    entry = beat_schedule()["markets-ingest"]
    assert entry["schedule"] == 30.0
    assert entry["options"]["expires"] < 30
