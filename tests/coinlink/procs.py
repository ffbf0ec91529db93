"""Real helper processes for ops tests: free ports, a private redis-server, waiting for HTTP."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, headers: dict | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    status, _, body = http_fetch(url, headers, timeout)
    return status, body


def http_fetch(
    url: str, headers: dict | None = None, timeout: float = 5.0, data: bytes | None = None, method: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-cased names) and body of a GET, or of a POST of `data`, or of `method`."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)  # noqa: S310 - loopback only
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except Exception:  # not up yet
            result = None
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")


def start_gunicorn(env: dict[str, str], stderr=subprocess.DEVNULL) -> subprocess.Popen:
    """The HTTP API as production's `web` runs it: gunicorn with deploy/gunicorn.conf.py."""
    command = [str(BIN / "gunicorn"), "coinlink.wsgi:application", "--config", str(ROOT / "deploy/gunicorn.conf.py")]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def start_serve(env: dict[str, str], port: int, stderr=subprocess.DEVNULL) -> subprocess.Popen:
    """The one-machine runner as scripts/run starts it (`manage.py serve`), without its schedule."""
    command = [PYTHON, "manage.py", "serve", "--no-scheduler", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


@contextlib.contextmanager
def gunicorn_on_test_database(**env: str | None):
    """A gunicorn (one worker unless `WEB_CONCURRENCY` says) on a free port, serving the migrated test
    database; yields the port once /health answers, stops it after."""
    from tests.realtime.servers import database_url_of_tests

    port = free_port()
    overrides = {"WEB_CONCURRENCY": "1", "PROMETHEUS_MULTIPROC_DIR": None, "LOG_LEVEL": "warning", **env}
    process = start_gunicorn(
        child_env(DATABASE_URL=database_url_of_tests(), HOST="127.0.0.1", PORT=str(port), **overrides)
    )
    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/health")[0] == 200, timeout=30)
        yield port
    finally:
        stop(process)


def start_uvicorn(env: dict[str, str], stderr=subprocess.DEVNULL) -> subprocess.Popen:
    """The ws tier as deploy/docker-entrypoint.sh runs it (one worker), on 127.0.0.1:$PORT."""
    command = [
        *(str(BIN / "uvicorn"), "coinlink.asgi:application", "--host", "127.0.0.1", "--port", env["PORT"]),
        *("--ws", "websockets-sansio", "--ws-per-message-deflate", "false", "--no-access-log"),
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def production_env(**overrides: str | None) -> dict[str, str]:
    """What a production web or ws process gets, minus TLS: a loopback proxy speaks plain HTTP."""
    defaults: dict[str, str | None] = {
        "COINLINK_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "JWT_SIGNING_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "FRONTEND_URL": "https://app.example.com",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "warning",
        "PROMETHEUS_MULTIPROC_DIR": None,
    }
    return child_env(**{**defaults, **overrides})  # an override (None: unset) replaces a default


def child_env(**overrides: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class PrivateRedis:
    """A throwaway redis-server on a free port; never the shared one."""

    def __init__(self):
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=10)
        return self

    def _answers(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def kill(self) -> None:
        if self.process is not None:
            stop(self.process, signal.SIGKILL)
            self.process = None
