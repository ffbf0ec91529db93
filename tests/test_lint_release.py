"""scripts/lint-release (a CI step): actionlint on every workflow, shellcheck on the release scripts,
with the pinned binaries. The shipped files pass; a broken workflow fails. Run on a copy."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.coinlink.procs import ROOT, child_env

VENV_BIN = str(Path(sys.executable).parent)


@pytest.fixture
def tree(tmp_path) -> Path:
    for part in (".github/workflows", "scripts"):
        shutil.copytree(ROOT / part, tmp_path / part)
    return tmp_path


def lint(tree: Path) -> tuple[int, str]:
    completed = subprocess.run(
        [str(tree / "scripts/lint-release")],
        env=child_env(VENV_BIN=VENV_BIN, PATH="/usr/bin:/bin"),  # no shellcheck but the pinned one
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return completed.returncode, completed.stdout + completed.stderr


def test_the_shipped_workflows_and_release_scripts_pass(tree):
    assert lint(tree) == (0, "")


@pytest.mark.parametrize(
    ("change", "found"),
    [
        # an output the build job does not have
        (("${{ needs.build.outputs.image }}", "${{ needs.build.outputs.imagee }}"), "imagee"),
        # shell in a run: step (shellcheck, through actionlint)
        (('scripts/release deploy "$SHA"', "scripts/release deploy $SHA"), "SC2086"),
        # a job that needs a job that does not exist
        (("needs: [build, staging]", "needs: [build, stagign]"), "stagign"),
    ],
)
def test_a_broken_deploy_workflow_fails(tree, change, found):
    workflow = tree / ".github/workflows/deploy.yml"
    text = workflow.read_text()
    assert change[0] in text
    workflow.write_text(text.replace(change[0], change[1], 1))
    status, output = lint(tree)
    assert status == 1
    assert found in output


def test_a_shell_mistake_in_scripts_deploy_fails(tree):
    script = tree / "scripts/deploy"
    script.write_text(script.read_text().replace('"${compose[@]}" exec -T proxy', "${compose[@]} exec -T proxy", 1))
    status, output = lint(tree)
    assert status == 1
    assert "SC2068" in output
