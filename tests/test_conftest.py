"""The root conftest's service gates: a skipped test says what to set and where the README explains it."""

from __future__ import annotations

import dataclasses
import re

from tests.coinlink.procs import ROOT


def _readme_sections() -> list[str]:
    return re.findall(r"^#+ (.+?)\s*$", (ROOT / "README.md").read_text(), re.M)


def test_the_skip_reasons_point_at_a_readme_section_that_exists(settings, monkeypatch):
    import conftest

    monkeypatch.setitem(settings.DATABASES["default"], "ENGINE", "django.db.backends.sqlite3")
    settings.CONFIG = dataclasses.replace(settings.CONFIG, redis_url=None)

    reasons = [conftest._service_missing("postgres"), conftest._service_missing("redis")]

    sections = _readme_sections()
    for reason in reasons:
        named = re.search(r'see README, "([^"]+)"', reason)
        assert named and named.group(1) in sections, (reason, sections)
