"""The verdict's rate stepping (bench/load/rate.py) and its table (bench/load/verdict.py).

A saturated server must show up as latency, not as a slower arrival rate: these run the stepper
against a real HTTP server on loopback whose capacity is known, and check the verdict's goal marks.
"""

from __future__ import annotations

import asyncio
import random

from bench.load.rate import FloorUser, Step, run_step
from bench.load.scenario import Shared
from bench.load.stats import Recorder
from bench.load.verdict import verdict_table

SERVICE_MS = 20.0


async def _one_at_a_time_server(statuses: list[int]) -> tuple[asyncio.Server, int]:
    """Answers every request after SERVICE_MS, one request at a time across all connections:
    a server whose capacity is 1000 / SERVICE_MS = 50 requests a second. The floor calls get
    `statuses` in turn, then 200s; /health always gets a 200."""
    lock = asyncio.Lock()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    return
                async with lock:
                    await asyncio.sleep(SERVICE_MS / 1000)
                floor_call = head.startswith(b"GET /floor/")
                status = statuses.pop(0) if statuses and floor_call else 200
                body = b'{"ok":true}'
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _shared(port: int) -> Shared:
    cfg = {
        "http_host": "127.0.0.1",
        "http_port": port,
        "ws_url": "",
        "origin": "",
        "stop_at": 0,
        "think_seconds": 0,
        "request_timeout": 5,
    }
    return Shared(cfg, Recorder())


async def _step(rate: float, seconds: float, statuses: list[int] | None = None, users: int = 20) -> dict:
    server, port = await _one_at_a_time_server(statuses or [])
    try:
        shared = _shared(port)
        floor = {"http": f"http://127.0.0.1:{port}", "path": "/floor/account", "token": "t"}
        pool = [FloorUser(shared, floor) for _ in range(users)]
        return await run_step(pool, shared, Step("bare", rate, seconds), ("127.0.0.1", port), random.Random(1))
    finally:
        server.close()
        await server.wait_closed()


def test_a_rate_under_capacity_meets_the_sla_and_is_completed_as_offered():
    result = asyncio.run(_step(rate=20, seconds=3))

    assert result["meets_sla"]
    assert result["errors"] == 0
    assert 12 <= result["completed_per_s"] <= 28
    assert result["p50_ms"] >= SERVICE_MS * 0.9


def test_a_rate_over_capacity_shows_as_queueing_latency_and_a_capped_completed_rate():
    # Two connections: a request that waits for a free one has not been sent yet, and that wait
    # must count too (latency runs from when the request was due, not from when it was sent).
    result = asyncio.run(_step(rate=120, seconds=3, users=2))

    # Arrivals keep their schedule (open loop): about 120/s were offered, at most ~50/s completed.
    assert result["arrivals"] > 250
    assert result["completed_per_s"] <= 55
    assert result["p95_ms"] > 500
    assert not result["meets_sla"]


def test_one_error_answer_fails_the_step_however_fast_it_was():
    result = asyncio.run(_step(rate=20, seconds=2, statuses=[200, 500]))

    assert result["errors"] == 1
    assert result["error_kinds"] == {"floor 500": 1}
    assert not result["meets_sla"]


def _verdict(weighted_multiple: float, fraction: float, feed_p95: float, health_p95: float) -> dict:
    return {
        "machine": "2 cores",
        "started": "now",
        "load_before": "0 0 0",
        "load_after": "0 0 0",
        "calibration": {"python_loop_ms": 30, "python_compile_ms": 12, "round_trip_cpu_us": 20},
        "cpu": {"weighted_multiple": weighted_multiple, "weighted_us": 1000, "floor_us": 500},
        "rate": {
            "fraction": fraction,
            "coinlink_sustainable_per_s": 600 * fraction,
            "coinlink_first_failing_per_s": 700,
            "bare_saturation_per_s": 600,
            "signed_in_fraction": 0.5,
            "signed_in_sustainable_per_s": 300,
            "health_p95_ms_worst": health_p95,
            "health_errors": 0,
        },
        "feed": {
            "clients": 5000,
            "baseline": {"latency_ms": {"p95": 100}, "handshakes_failed": 0, "seq_gaps": 0, "connections_dropped": 0},
            "coinlink": {
                "latency_ms": {"p95": feed_p95},
                "handshakes_failed": 0,
                "seq_gaps": 0,
                "connections_dropped": 0,
            },
            "coinlink_one_process": {
                "latency_ms": {"p95": 2 * feed_p95},
                "handshakes_failed": 0,
                "seq_gaps": 0,
                "connections_dropped": 0,
            },
        },
    }


def test_the_table_marks_each_ratio_against_its_goal():
    met = verdict_table(_verdict(1.4, 0.7, 140, 20))
    missed = verdict_table(_verdict(3.7, 0.5, 160, 60))

    assert "**not met**" not in met
    assert missed.count("**not met**") == 4
    assert "| 3.70× (1,000 µs vs 500 µs) |" in missed
    assert "1.6× (160 ms vs 100 ms)" in missed
    assert "3.2× (320 ms)" in missed  # one process: reported, not judged
