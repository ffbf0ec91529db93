"""A real `celery beat`, started as the README says: its schedule file goes to a state directory,
never into the directory it was started from (the checkout)."""

from __future__ import annotations

import subprocess

import pytest

from tests.coinlink.procs import BIN, ROOT, child_env, stop, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def _beat(cwd, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "celery"), "-A", "coinlink", "beat", "-l", "info", *args],
        cwd=cwd,
        env=child_env(PYTHONPATH=str(ROOT), **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _schedule_files(directory) -> list[str]:
    return sorted(p.name for p in directory.glob("celerybeat-schedule*")) if directory.is_dir() else []


def test_beat_as_the_readme_starts_it_keeps_its_schedule_in_the_state_directory(tmp_path):
    checkout, state = tmp_path / "checkout", tmp_path / "state"
    checkout.mkdir()
    beat = _beat(checkout, XDG_STATE_HOME=str(state), CELERY_BEAT_SCHEDULE_FILE=None)
    try:
        wait_until(lambda: _schedule_files(state / "coinlink"), timeout=60)
    finally:
        stop(beat)

    assert _schedule_files(checkout) == []
    assert _schedule_files(state / "coinlink")


def test_celery_beat_schedule_file_puts_it_where_it_says_creating_the_directory(tmp_path):
    checkout, elsewhere = tmp_path / "checkout", tmp_path / "beat-state" / "deep"
    checkout.mkdir()
    beat = _beat(checkout, CELERY_BEAT_SCHEDULE_FILE=str(elsewhere / "celerybeat-schedule"))
    try:
        wait_until(lambda: _schedule_files(elsewhere), timeout=60)
    finally:
        stop(beat)

    assert _schedule_files(checkout) == []
