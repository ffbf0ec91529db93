"""Container health probe: GET /health on this container's port, exit 0 only on a 200.

The port is PROBE_PORT when the container has one (web: gunicorn's probe listener, which does not
queue behind the API), else PORT.

Sends the first ALLOWED_HOSTS entry as Host, because production Django refuses any other host
(including 127.0.0.1) with a 400. Standard library only, so it starts fast.
"""

from __future__ import annotations

import http.client
import os
import sys


def main() -> int:
    port = int(os.environ.get("PROBE_PORT") or os.environ.get("PORT", "8000"))
    hosts = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
    host = hosts[0].lstrip(".") if hosts else "localhost"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/health", headers={"Host": host, "X-Forwarded-Proto": "https"})
        status = connection.getresponse().status
    except OSError as exc:
        print(f"health: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if status != 200:
        print(f"health: HTTP {status}", file=sys.stderr)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
