"""scripts/backup_restore_check against the test database: a real pg_dump, pg_restore and row counts."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from django.db import connection

from tests.coinlink.procs import ROOT

SCRIPT = ROOT / "scripts/backup_restore_check"

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump is not installed"),
]


def _url(name: str | None = None) -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name or db['NAME']}"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=240)


@pytest.mark.django_db(transaction=True)
def test_it_restores_a_backup_with_every_row_of_every_table(owner, other_user, tmp_path):
    from accounts.models import User

    users = User.objects.count()
    assert users >= 2
    dump = tmp_path / "kept.dump"
    result = subprocess.run(
        [str(SCRIPT), _url()], capture_output=True, text=True, timeout=240, env={"KEEP_DUMP": str(dump), **_env()}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("backup/restore check passed: ")
    tables = int(result.stdout.split(": ")[1].split(" tables")[0])
    assert tables >= 10
    assert dump.stat().st_size > 0
    listing = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True)
    assert "TABLE DATA public accounts_user" in listing.stdout


@pytest.mark.django_db(transaction=True)
def test_it_names_the_tables_whose_counts_differ(owner):
    scratch = "coinlink_ops_compare_scratch"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        cursor.execute(f'CREATE DATABASE "{scratch}" TEMPLATE template0')
    try:
        # Same schema, no rows: every table with data must be reported.
        schema = subprocess.run(
            ["pg_dump", "--schema-only", "--no-owner", _url()], capture_output=True, text=True, check=True
        ).stdout
        subprocess.run(["psql", "-X", "-q", _url(scratch)], input=schema, text=True, capture_output=True, check=True)
        result = _run("--compare", _url(), _url(scratch))
        assert result.returncode == 1
        assert "accounts_user: " in result.stderr and "-> 0" in result.stderr
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{scratch}"')


def test_it_refuses_a_missing_or_non_postgres_url():
    assert _run("sqlite:///tmp/x.db").returncode == 2
    assert _run("--compare", "postgres://a@b/c").returncode == 2


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "PGPASSWORD", "LANG")}
