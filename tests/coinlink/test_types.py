"""mypy with django-stubs runs on the apps (CI: `.ci/run`); it must catch a call with a wrong keyword."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.coinlink.procs import BIN, ROOT, child_env

pytestmark = pytest.mark.slow  # two mypy runs, a few seconds with the cache CI's mypy step leaves

CALLS = """
from accounts.models import User
from accounts.services import user_session_revoke
from markets.selectors import ticker_list


def revoke(user: User) -> None:
    user_session_revoke(user=user, sesion_id="d2a7c0de-0000-4000-8000-000000000000")


def untyped(quote):  # no annotations: checked too (check_untyped_defs)
    return ticker_list(quote=quote, limitt=20)
"""


def _mypy(tmp_path, source: str) -> subprocess.CompletedProcess:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(source)
    # The project's configuration (pyproject.toml: plugins, settings module), its cache, on one file.
    return subprocess.run(
        [str(BIN / "mypy"), "--config-file", str(ROOT / "pyproject.toml"), str(snippet)],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_mypy_catches_a_wrong_keyword_to_a_service_even_in_an_unannotated_function(tmp_path):
    assert shutil.which(str(BIN / "mypy")), "mypy is a dev requirement"

    result = _mypy(tmp_path, CALLS)

    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Unexpected keyword argument "sesion_id" for "user_session_revoke"' in result.stdout
    assert 'Unexpected keyword argument "limitt" for "ticker_list"' in result.stdout


def test_mypy_accepts_the_same_calls_spelt_right(tmp_path):
    result = _mypy(tmp_path, CALLS.replace("sesion_id", "session_id").replace("limitt", "limit"))

    assert result.returncode == 0, result.stdout + result.stderr
