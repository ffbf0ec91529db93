"""bench/ws_fanout.py serves /ws the way production does, or its numbers are not about production."""

from __future__ import annotations

import re

from bench.ws_fanout import server_command
from tests.coinlink.procs import ROOT


def test_the_fanout_bench_runs_the_production_websocket_flags():
    unit = (ROOT / "deploy/systemd/coinlink-ws.service").read_text()
    production = re.search(r"^ExecStart=(.*)$", unit, re.MULTILINE).group(1).split()
    bench = server_command("uvicorn", 8001)
    ws_flags = {flag: production[i + 1] for i, flag in enumerate(production) if flag.startswith("--ws")}
    assert {"--ws", "--ws-per-message-deflate", "--ws-max-size", "--ws-ping-interval", "--ws-ping-timeout"} <= set(
        ws_flags
    )
    # docs/performance.md's numbers are only about production if the bench serves /ws the same way.
    for flag, value in ws_flags.items():
        assert bench[bench.index(flag) + 1] == value, flag
    # The production default is what the bench measures as `uvicorn-2w`: two processes sharing the port.
    two = server_command("uvicorn-2w", 8001)
    assert production[production.index("--workers") + 1] == two[two.index("--workers") + 1] == "2"
