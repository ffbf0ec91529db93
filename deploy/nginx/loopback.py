"""Runs the repository's nginx config (deploy/nginx/) on loopback, in front of local web/ws servers.

The same files compose mounts, with only addresses and paths rewritten: the proxy tests
(tests/coinlink/test_proxy.py) and the benchmarks (bench/rest_bench.py, bench/stack.py) both use it,
so neither measures or checks a proxy config other than the shipped one. It lives beside the files it
rewrites, so a change to them meets the rewrites here; `import deploy.nginx.loopback` from the
repository root.
"""

from __future__ import annotations

import getpass
import subprocess
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = ("coinlink.conf", "coinlink-proxy.inc", "coinlink-ws.inc")


def render(
    tmp: Path,
    *,
    web_port: int | Sequence[int],
    ws_port: int | Sequence[int],
    proxy_port: int,
    probe_port: int | Sequence[int] | None = None,
    worker_processes: str = "1",
    worker_connections: int = 1024,
    forwarded_proto: str | None = None,
) -> Path:
    """Writes nginx.conf and conf.d/ under `tmp`; returns the nginx.conf path.

    `forwarded_proto="https"` stands in for the TLS listener this loopback copy does not have.
    Without `probe_port` the probes go to `web_port` (a gunicorn without a probe listener). A list of
    ports stands for that many replicas of the service (tests/compose_standin.py rolls them).
    """
    conf_d = tmp / "conf.d"
    conf_d.mkdir(parents=True, exist_ok=True)
    (tmp / "cache").mkdir(exist_ok=True)
    for name in FILES:
        text = (HERE / name).read_text().replace("/etc/nginx/conf.d/", f"{conf_d}/")
        text = text.replace("server web:8000", _servers(web_port))
        text = text.replace("server web:8002", _servers(probe_port or web_port))
        text = text.replace("server ws:8001", _servers(ws_port))
        text = text.replace("listen 80;", f"listen 127.0.0.1:{proxy_port};").replace("/var/log/nginx/", f"{tmp}/")
        text = text.replace("/var/cache/nginx/", f"{tmp}/cache/")
        if forwarded_proto:
            text = text.replace("X-Forwarded-Proto $scheme;", f"X-Forwarded-Proto {forwarded_proto};")
        (conf_d / name).write_text(text)
    temp_paths = " ".join(
        f"{kind}_temp_path {tmp}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp / "nginx.conf"
    conf.write_text(
        # Workers as this user: the cache lives in a private (0700) temporary directory.
        f"user {getpass.getuser()}; worker_processes {worker_processes}; pid {tmp}/nginx.pid; "
        f"error_log {tmp}/error.log; daemon off; events {{ worker_connections {worker_connections}; }}\n"
        f"http {{ {temp_paths} include {conf_d}/coinlink.conf; }}\n"
    )
    return conf


def _servers(ports: int | Sequence[int]) -> str:
    """`server 127.0.0.1:P` once per port, in place of the one compose service name."""
    listed = [ports] if isinstance(ports, int) else list(ports)
    return "; ".join(f"server 127.0.0.1:{port}" for port in listed)


def start(tmp: Path, **options) -> subprocess.Popen:
    conf = render(tmp, **options)
    # A test and bench tool: the nginx on PATH, with the config just written under `tmp`.
    command = ["nginx", "-p", str(tmp), "-c", str(conf)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
