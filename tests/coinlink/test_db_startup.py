"""Services mode against a PostgreSQL that lacks the configured database: one line saying how to
create it, not a traceback."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.coinlink.procs import PYTHON, ROOT, child_env

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _exists(name: str) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cursor.fetchone() is not None


def test_migrate_names_the_missing_database_and_how_to_create_it_in_one_line():
    from tests.realtime.servers import database_url_of_tests

    missing = f"coinlink_missing_{uuid.uuid4().hex[:12]}"
    url = database_url_of_tests().rsplit("/", 1)[0] + f"/{missing}"

    run = subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=child_env(DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr[-2000:]
    assert lines[0].startswith(f'The database "{missing}" in DATABASE_URL does not exist on ')
    assert lines[0].endswith(f" {missing}") and "Create it with: createdb -h " in lines[0]
    assert not _exists(missing)  # said, not done: a mistyped name must not become a new, empty database


def test_a_database_that_exists_needs_no_hint():
    from coinlink.db.startup import database_missing_hint

    assert database_missing_hint() is None
