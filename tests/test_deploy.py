"""scripts/deploy for real, with tests/compose_standin.py in place of docker compose: releases are real
gunicorn and uvicorn processes behind the shipped nginx config, in production mode, and a release whose
smoke test fails is replaced by the recorded previous one without anyone stepping in."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.coinlink.procs import ROOT, free_port, http_get, production_env, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
]

STANDIN = f"{sys.executable} {ROOT / 'tests/compose_standin.py'}"


@dataclass
class Host:
    """One compose host: its state directory, its public URL and what scripts/deploy printed."""

    dir: Path
    base: str
    env: dict[str, str]
    logs: list[str] = field(default_factory=list)

    def deploy(self, *args: str) -> int:
        completed = subprocess.run(
            [str(ROOT / "scripts/deploy"), *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=400,
        )
        self.logs.append(completed.stdout)
        return completed.returncode

    @property
    def state(self) -> dict[str, str]:
        lines = (self.dir / "deploy-state").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines)

    @property
    def standin(self) -> dict:
        return json.loads((self.dir / "state.json").read_text())

    def serving(self) -> dict[str, list[str]]:
        """The release tag of every running replica, per service."""
        containers = self.standin["containers"].values()
        return {service: sorted(c["tag"] for c in containers if c["service"] == service) for service in ("web", "ws")}


@pytest.fixture
def host(tmp_path, settings):
    from tests.realtime.servers import database_url_of_tests

    proxy_port = free_port()
    base = f"http://127.0.0.1:{proxy_port}"
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    releases = {
        "v1": {},
        "v2": {"REDIS_URL": dead_redis},  # starts and answers /health, but is not ready: the smoke test fails
        "v3": {"GUNICORN_TIMEOUT": "soon"},  # migrates, but its web tier cannot start
        "v5": {"SECRET_KEY": "too-short"},  # cannot even migrate
        "v4": {},
    }
    (tmp_path / "releases.json").write_text(json.dumps(releases))
    env = production_env(
        DATABASE_URL=database_url_of_tests(),
        REDIS_URL=settings.CONFIG.redis_url,
        WS_ALLOWED_ORIGINS=base,
        COMPOSE=f"{STANDIN} compose",
        DOCKER=f"{STANDIN} docker",
        STANDIN_DIR=str(tmp_path),
        STANDIN_PROXY_PORT=str(proxy_port),
        COINLINK_IMAGE_REPO="ghcr.io/example/coinlink",
        SMOKE_URL=base,
        DEPLOY_STATE=str(tmp_path / "deploy-state"),
        HEALTH_TIMEOUT="90",
        PROXY_SETTLE="0.5",
    )
    yield Host(tmp_path, base, env)
    state = tmp_path / "state.json"
    if state.exists():
        standin = json.loads(state.read_text())
        for pid in [c["pid"] for c in standin["containers"].values()] + [standin["proxy"]]:
            if pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass


def publish_prices() -> None:
    from django.utils import timezone

    from markets import snapshot
    from markets.models import Asset, Ticker

    now = timezone.now()
    asset, _ = Asset.objects.get_or_create(
        symbol="BTC", defaults={"name": "Bitcoin", "coingecko_id": "bitcoin", "rank": 1, "is_active": True}
    )
    Ticker.objects.update_or_create(
        asset=asset,
        quote="usd",
        defaults={"price": 64000, "source": "coingecko", "last_updated": now, "fetched_at": now},
    )
    snapshot.snapshot_build(quote="usd")
    snapshot.last_success_mark(at=now.timestamp())


class HealthWatch:
    """GET /health through the proxy every 50 ms while a deploy runs; records every answer that is not 200."""

    def __init__(self, base: str):
        self.base, self.answers, self.failures = base, 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                status = http_get(f"{self.base}/health", timeout=10)[0]
            except OSError as error:
                status = repr(error)
            self.answers += 1
            if status != 200:
                self.failures.append(status)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(15)


def test_a_release_that_fails_its_smoke_test_is_replaced_by_the_previous_one(host):
    publish_prices()
    assert host.deploy("v1") == 0, host.logs[-1]
    assert host.state["current"] == "v1" and host.state["previous"] == ""
    assert host.serving() == {"web": ["v1"], "ws": ["v1"]}
    assert http_get(f"{host.base}/health")[0] == 200

    with HealthWatch(host.base) as watch:
        status = host.deploy("v2")
    assert status == 1, host.logs[-1]
    assert "v2 failed: rolling back to v1" in host.logs[-1]
    assert "FAIL readyz: HTTP 503, not ready: broker (" in host.logs[-1]  # the smoke test said why
    assert "rolled back: v1 serves again" in host.logs[-1]
    assert host.state == {**host.state, "current": "v1", "previous": "", "failed": "v2"}
    assert host.serving() == {"web": ["v1"], "ws": ["v1"]}
    # One replica at a time behind the proxy: it answered throughout, both ways.
    assert watch.answers > 20 and watch.failures == []
    events = host.standin["events"]
    v2_web = events.index(next(e for e in events if e.startswith("start web") and e.endswith(" v2")))
    first_web = next(e for e in events if e.startswith("start web")).split()[2]
    assert events.index(f"stop {first_web}") > v2_web  # the new replica came up before the old one left
    assert "migrate v2" in events


def test_a_release_that_cannot_migrate_or_start_leaves_the_previous_one_serving(host):
    publish_prices()
    assert host.deploy("v1") == 0, host.logs[-1]
    assert host.deploy("v5") == 1, host.logs[-1]
    assert "migrations of v5 failed; v1 keeps serving" in host.logs[-1]
    assert not any(e.endswith(" v5") and e.startswith("start") for e in host.standin["events"])

    assert host.deploy("v3") == 1, host.logs[-1]
    assert "web: the new replica did not become healthy; the old ones keep serving" in host.logs[-1]
    assert host.state["current"] == "v1" and host.state["failed"] == "v3"
    assert host.serving() == {"web": ["v1"], "ws": ["v1"]}
    assert not any(e.startswith("start ws") and e.endswith(" v3") for e in host.standin["events"])


def test_the_pipelines_rollback_brings_back_the_recorded_previous_tag(host):
    publish_prices()
    assert host.deploy("v1") == 0, host.logs[-1]
    assert host.deploy("v4") == 0, host.logs[-1]
    assert (host.state["current"], host.state["previous"]) == ("v4", "v1")
    assert host.deploy("--rollback") == 0, host.logs[-1]
    assert (host.state["current"], host.state["failed"]) == ("v1", "v4")
    assert host.serving() == {"web": ["v1"], "ws": ["v1"]}
    # Nothing older is recorded: a second rollback has nowhere to go, and says so.
    assert host.deploy("--rollback") == 3
    assert "no previous release recorded" in host.logs[-1]


def test_it_refuses_what_is_not_an_image_tag_and_a_second_deploy_at_once(host):
    assert host.deploy("v1;rm -rf /") == 2
    assert "not an image tag" in host.logs[-1]
    assert host.deploy("unknown-tag") == 1
    assert "cannot pull ghcr.io/example/coinlink:unknown-tag" in host.logs[-1]
    # A state file someone edited by hand: what is not a tag is not believed, let alone run.
    (host.dir / "deploy-state").write_text("current=$(touch pwned)\nprevious=v1 --rollback\n")
    assert host.deploy("unknown-tag") == 1
    assert "deploying unknown-tag (serving now: nothing recorded)" in host.logs[-1]
    assert not (ROOT / "pwned").exists() and not (host.dir / "pwned").exists()
    with open(host.dir / "deploy-state.lock", "w") as lock:
        holder = subprocess.Popen(["flock", str(lock.name), "sleep", "30"])
        try:
            wait_until(lambda: subprocess.run(["flock", "-n", lock.name, "true"]).returncode != 0, timeout=5)
            assert host.deploy("v1") == 2
            assert "another deploy is running" in host.logs[-1]
        finally:
            holder.kill()
            holder.wait()
