"""The nginx config of the compose deployment, run for real in front of gunicorn (web) and uvicorn
(ws): /ws is upgraded to the ASGI server, everything else reaches the HTTP API."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import pytest

from tests.coinlink.procs import BIN, ROOT, child_env, free_port, http_get, stop, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
]

ORIGIN = "http://127.0.0.1:8000"  # a development default of WS_ALLOWED_ORIGINS


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proxy")
    web_port, ws_port, proxy_port = free_port(), free_port(), free_port()
    env = child_env(LOG_LEVEL="warning", PROMETHEUS_MULTIPROC_DIR=None, RATELIMIT_ENABLED="false")
    web = subprocess.Popen(
        [str(BIN / "gunicorn"), "coinlink.wsgi:application", "--config", str(ROOT / "deploy/gunicorn.conf.py")],
        cwd=ROOT,
        env={**env, "HOST": "127.0.0.1", "PORT": str(web_port), "WEB_CONCURRENCY": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ws = subprocess.Popen(
        [
            *(str(BIN / "uvicorn"), "coinlink.asgi:application", "--host", "127.0.0.1"),
            *("--port", str(ws_port), "--ws", "websockets-sansio", "--ws-per-message-deflate", "false"),
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    conf_d = tmp / "conf.d"
    conf_d.mkdir()
    for name in ("coinlink.conf", "coinlink-proxy.inc", "coinlink-ws.inc"):
        text = (ROOT / "deploy/nginx" / name).read_text().replace("/etc/nginx/conf.d/", f"{conf_d}/")
        text = text.replace("server web:8000", f"server 127.0.0.1:{web_port}")
        text = text.replace("server ws:8001", f"server 127.0.0.1:{ws_port}")
        text = text.replace("listen 80;", f"listen 127.0.0.1:{proxy_port};").replace("/var/log/nginx/", f"{tmp}/")
        (conf_d / name).write_text(text)
    temp_paths = " ".join(
        f"{kind}_temp_path {tmp}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp / "nginx.conf").write_text(
        f"pid {tmp}/nginx.pid; error_log {tmp}/error.log; daemon off; events {{}}\n"
        f"http {{ {temp_paths} include {conf_d}/coinlink.conf; }}\n"
    )
    proxy = subprocess.Popen(
        ["nginx", "-p", str(tmp), "-c", str(tmp / "nginx.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{proxy_port}"
    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{web_port}/health")[0] == 200, timeout=30)
        wait_until(lambda: http_get(f"http://127.0.0.1:{ws_port}/health")[0] == 200, timeout=30)
        wait_until(lambda: http_get(f"{base}/proxy-health")[0] == 200, timeout=10)
        yield base, tmp
    finally:
        for process in (proxy, ws, web):
            stop(process)


def test_http_goes_to_the_api_with_the_request_id_and_client_address(stack):
    base, tmp = stack
    status, body = http_get(f"{base}/api/v2/nowhere", headers={"Host": "localhost", "X-Request-ID": "via-proxy-1"})
    assert status == 404
    assert json.loads(body)["trace_id"] == "via-proxy-1"  # nginx passed the id on, the app answered
    assert http_get(f"{base}/health", headers={"Host": "localhost"})[0] == 200
    log = (tmp / "access.log").read_text()
    assert '"request_id":"via-proxy-1"' in log and '"status":404' in log


def test_ws_is_upgraded_and_reaches_the_asgi_server(stack):
    import websockets

    base, _ = stack
    url = base.replace("http://", "ws://") + "/ws"

    async def first_frame() -> dict:
        async with websockets.connect(url, origin=ORIGIN, open_timeout=10) as socket:
            return json.loads(await asyncio.wait_for(socket.recv(), 10))

    assert asyncio.run(first_frame())["type"] == "connected"


def test_a_foreign_origin_is_refused_through_the_proxy(stack):
    import websockets

    base, _ = stack
    url = base.replace("http://", "ws://") + "/ws"

    async def attempt():
        async with websockets.connect(url, origin="https://evil.example.net", open_timeout=10) as socket:
            await asyncio.wait_for(socket.recv(), 5)

    with pytest.raises((websockets.exceptions.InvalidStatus, websockets.exceptions.ConnectionClosed)):
        asyncio.run(attempt())


def test_metrics_pass_the_proxy_only_from_private_networks(stack):
    base, _ = stack
    # The client here is loopback, which the proxy allows; public addresses hit `deny all`.
    assert http_get(f"{base}/metrics", headers={"Host": "localhost"})[0] == 200
    conf = (ROOT / "deploy/nginx/coinlink.conf").read_text()
    block = conf[conf.index("location = /metrics") :].split("}", 1)[0]
    assert "allow 127.0.0.1;" in block and block.rstrip().endswith("include /etc/nginx/conf.d/coinlink-proxy.inc;")
    assert "deny all;" in block
