"""scripts/lint-migrations: a migration that would break the release still serving while it applies
fails CI; the expand steps of docs/operations.md pass; the one place for exceptions works. Each case
runs in a clone of this repository, so the working tree is never touched."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.coinlink.procs import ROOT, child_env

pytestmark = pytest.mark.postgres  # the linter reads the SQL PostgreSQL would run

PREVIOUS = "0002_preferences_knowndevice_session"


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lint") / "coinlink"
    subprocess.run(["git", "clone", "--quiet", "--shared", str(ROOT), str(path)], check=True)
    return path


@pytest.fixture
def migration(clone):
    """Writes accounts/migrations/0003_<name>.py with the given operations; removes it afterwards."""
    written: list[Path] = []

    def write(name: str, operations: str) -> Path:
        path = clone / f"accounts/migrations/0003_{name}.py"
        path.write_text(
            "from django.db import migrations, models\n\n\n"
            "class Migration(migrations.Migration):\n"
            f"    dependencies = [('accounts', '{PREVIOUS}')]\n"
            f"    operations = [{operations}]\n"
        )
        written.append(path)
        return path

    yield write
    for path in written:
        path.unlink(missing_ok=True)


def lint(tree: Path, **env: str) -> tuple[int, str]:
    completed = subprocess.run(
        [str(tree / "scripts/lint-migrations")],
        cwd=tree,
        env=child_env(PYTHON=sys.executable, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return completed.returncode, completed.stdout + completed.stderr


def test_the_committed_tree_passes():
    status, output = lint(ROOT)
    assert status == 0, output
    assert re.search(r"lint-migrations: \d+ migration\(s\) added since [0-9a-f]{7}", output)


@pytest.mark.parametrize(
    ("name", "operations", "why"),
    [
        ("drop_email_alerts", "migrations.RemoveField('preferences', 'email_alerts')", "DROPPING columns"),
        (
            "add_compact",
            "migrations.AddField('preferences', 'compact', models.BooleanField(default=False))",
            "NOT NULL constraint on columns",
        ),
        (
            "rename_email_alerts",
            "migrations.RenameField('preferences', 'email_alerts', 'mail_alerts')",
            "RENAMING columns",
        ),
    ],
)
def test_a_migration_the_running_release_cannot_live_with_fails(clone, migration, name, operations, why):
    migration(name, operations)
    status, output = lint(clone, MIGRATION_LINT_BASE="HEAD")
    assert status == 1, output
    assert f"(accounts, 0003_{name})... ERR" in output
    assert why in output


@pytest.mark.parametrize(
    ("name", "operations"),
    [
        ("add_nullable", "migrations.AddField('preferences', 'compact', models.BooleanField(null=True))"),
        (
            "add_with_db_default",
            "migrations.AddField('preferences', 'compact', models.BooleanField(default=False, db_default=False))",
        ),
        # docs/operations.md, the expand release of the unused preference switches: the database fills
        # the column for inserts that no longer name it, and the model stops naming it.
        (
            "forget_email_alerts",
            "migrations.AlterField('preferences', 'email_alerts',"
            " models.BooleanField(default=False, db_default=False)),"
            "migrations.SeparateDatabaseAndState("
            "state_operations=[migrations.RemoveField('preferences', 'email_alerts')])",
        ),
    ],
)
def test_a_migration_the_running_release_lives_with_passes(clone, migration, name, operations):
    migration(name, operations)
    status, output = lint(clone, MIGRATION_LINT_BASE="HEAD")
    assert status == 0, output
    assert f"(accounts, 0003_{name})... OK" in output


def test_a_contract_step_passes_only_once_listed_as_an_exception(clone, migration):
    drop = "migrations.RunSQL('ALTER TABLE accounts_preferences DROP COLUMN email_alerts', migrations.RunSQL.noop)"
    migration("drop_unused_preference_switches", drop)
    assert lint(clone, MIGRATION_LINT_BASE="HEAD")[0] == 1

    pyproject = clone / "pyproject.toml"
    original = pyproject.read_text()
    listed = original.replace(
        "ignore_name = [\n",
        "ignore_name = [\n    # contract: nothing has read the column since the release before\n"
        '    "0003_drop_unused_preference_switches",\n',
    )
    assert listed != original
    pyproject.write_text(listed)
    try:
        status, output = lint(clone, MIGRATION_LINT_BASE="HEAD")
    finally:
        pyproject.write_text(original)
    assert status == 0, output
    assert "(accounts, 0003_drop_unused_preference_switches)... IGNORE" in output


def test_the_newest_release_tag_is_the_base_when_there_is_one(clone, migration):
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", *args], cwd=clone, check=True)

    migration("drop_email_alerts", "migrations.RemoveField('preferences', 'email_alerts')")
    git("add", "accounts/migrations/0003_drop_email_alerts.py")
    git("commit", "--quiet", "-m", "a release that drops a column")
    try:
        # No release tag: the commit in deploy/release-base is the base, and the committed drop fails.
        status, output = lint(clone)
        assert status == 1 and "DROPPING columns" in output
        # Production accepted that commit (the deploy workflow tagged it): the drop is history now.
        git("tag", "release-2026-12-04-test")
        status, output = lint(clone)
        assert status == 0, output
        assert "0 migration(s) added since" in output
    finally:
        git("tag", "-d", "release-2026-12-04-test")
        git("reset", "--quiet", "--hard", "HEAD~1")


def test_a_base_outside_this_history_is_an_error_not_a_pass(clone):
    status, output = lint(clone, MIGRATION_LINT_BASE="0" * 40)
    assert status == 2
    assert "is not in the history of HEAD here" in output
