"""bench/floor: the floor bench/api_cpu.py divides by really signs in, reads Redis and queries; it times nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

WORKER = Path(__file__).resolve().parents[2] / "bench" / "floor" / "worker.py"


@pytest.mark.postgres  # the floor is measured on PostgreSQL and Redis, as production runs
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_floor_worker_answers_the_cpu_of_each_signed_in_call_it_made():
    database_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]
    env = dict(os.environ, DATABASE_URL=database_url, FLOOR_JWT_KEY="k" * 48)
    env.pop("DJANGO_SETTINGS_MODULE", None)

    # The worker exits with the view's answer if any call is not a 200 (bad token, no session, no row).
    done = subprocess.run(
        [sys.executable, str(WORKER)], input="3\n2\n", env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr[-2000:]
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [len(a) for a in answers] == [3, 2]
    assert all(0 < seconds < 1 for a in answers for seconds in a)
    with connection.cursor() as cursor:  # its table goes with it
        cursor.execute("SELECT to_regclass('bench_floor_account')")
        assert cursor.fetchone()[0] is None
