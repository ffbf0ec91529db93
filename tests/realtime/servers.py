"""Real server processes for the cross-process and browser tests: uvicorn, or `manage.py serve` (what
scripts/run starts)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from django.conf import settings

BASE_DIR = Path(__file__).resolve().parents[2]
# The `ws` role of deploy/docker-entrypoint.sh (and deploy/systemd/coinlink-ws.service), one process.
PRODUCTION_WS_FLAGS = ["--ws", "websockets-sansio", "--ws-per-message-deflate", "false",
                       "--ws-ping-interval", "60", "--ws-ping-timeout", "30"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_of_tests() -> str:
    """The database pytest-django created, so the server sees what the test committed."""
    from django.db import connection

    db = connection.settings_dict  # pytest-django renames the test database here, not in settings
    auth = db.get("USER") or "postgres"
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class ServerProcess:
    """`kind`: "uvicorn" (its defaults), "uvicorn-production" (production's `/ws` flags) or "serve"."""

    def __init__(self, kind: str = "uvicorn", **env: str):
        self.kind, self.port = kind, free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.http_url, self.ws_url = self.origin, f"ws://127.0.0.1:{self.port}/ws"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url_of_tests(),
            "REDIS_URL": settings.CONFIG.redis_url,
            "WS_ALLOWED_ORIGINS": f"{self.origin},http://127.0.0.1:8000",
            "LOG_LEVEL": "warning",
            **env,
        }
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix=f"coinlink-{kind}-", suffix=".log")  # noqa: SIM115

    def output(self) -> str:
        """What the server wrote to stdout and stderr so far."""
        return Path(self.log.name).read_text(errors="replace")

    def command(self) -> list[str]:
        uvicorn = [sys.executable, "-m", "uvicorn", "coinlink.asgi:application", "--host", "127.0.0.1",
                   "--port", str(self.port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
        if self.kind == "uvicorn":
            return uvicorn
        if self.kind == "uvicorn-production":
            return [*uvicorn, *PRODUCTION_WS_FLAGS, "--ws-max-size", self.env.get("WS_MAX_FRAME_BYTES", "65536")]
        return [sys.executable, "manage.py", "serve", "--no-scheduler", "--host", "127.0.0.1", "--port", str(self.port)]

    def __enter__(self) -> ServerProcess:
        self.process = subprocess.Popen(
            self.command(), cwd=BASE_DIR, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited: {self.output()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.http_url}/health", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"{self.kind} did not answer /health on port {self.port}")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()


class EmbeddedServer(ServerProcess):
    """`manage.py serve` with its in-process schedule, as a first-time user runs it (pass REDIS_URL="")."""

    def command(self) -> list[str]:
        return [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
