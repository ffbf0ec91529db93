"""The load-test tool's own parts: percentiles, merging across workers, HTTP parsing, frame reading, fake upstream.

These check that the numbers in docs/performance.md are computed right; they time nothing.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
from pathlib import Path

import pytest

from bench import fake_upstream
from bench.load import http
from bench.load.calibrate import guest_speed
from bench.load.markdown import render
from bench.load.monitor import _children_map
from bench.load.scenario import ticker_frame_tail
from bench.load.stats import EndpointStats, Hist, Recorder

FIXTURES = Path(__file__).resolve().parents[2] / "bench" / "fixtures"


def _exact(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[math.ceil(len(ordered) * p / 100) - 1]


def test_it_reports_percentiles_within_the_two_percent_bucket_width():
    rng = random.Random(3)
    samples = [rng.lognormvariate(3, 1.2) for _ in range(20_000)]
    hist = Hist()
    for ms in samples:
        hist.add(ms)
    for p in (50, 95, 99):
        assert hist.percentile(p) == pytest.approx(_exact(samples, p), rel=0.021)
    assert hist.summary()["max_ms"] == round(max(samples), 2)


def test_it_merges_workers_histograms_into_the_same_percentiles_after_a_json_round_trip():
    rng = random.Random(5)
    samples = [rng.expovariate(1 / 40) for _ in range(9_000)]
    whole = Hist()
    parts = [EndpointStats() for _ in range(3)]
    for i, ms in enumerate(samples):
        whole.add(ms)
        parts[i % 3].record(ms, "200", True)
    merged = EndpointStats()
    for part in parts:
        merged.merge(EndpointStats.from_json(json.loads(json.dumps(part.to_json()))))
    assert merged.hist.summary() == whole.summary()
    assert merged.calls == 9_000
    assert merged.errors == 0


def test_it_counts_errors_and_keeps_a_few_examples():
    stats = EndpointStats()
    for i in range(10):
        stats.record(None, "ConnectionResetError", False, f"reset {i}")
    stats.record(12.0, "200", True)
    assert (stats.calls, stats.errors, len(stats.examples)) == (11, 10, 5)
    assert stats.hist.n == 1


def test_it_hands_out_only_closed_time_windows():
    rec = Recorder(window_seconds=5)
    rec.record("market.ticker", 100.0, 10.0, "200", True)
    rec.record("market.ticker", 106.0, 20.0, "200", True)
    drained = rec.drain(before=108.0)
    assert list(drained["windows"]) == ["100"]
    assert list(rec.windows) == [105]


def test_it_reads_seq_and_timestamp_from_the_tail_of_the_feeds_real_encoding():
    from coinlink import contract
    from realtime import events

    prefix = events.ticker_update_prefix(
        data=[{"symbol": "BTC", "name": "Bitcoin", "price": 1.5, "last_updated": "2026-01-01T00:00:00Z"}],
        timestamp=contract.timestamp_at(1_790_000_000.25),
        stale=False,
    )
    seq, ts = ticker_frame_tail(events.ticker_update_text(prefix, 42))
    assert seq == 42
    assert ts == pytest.approx(1_790_000_000.25)


def test_it_falls_back_to_a_full_parse_for_another_field_order():
    raw = json.dumps({"type": "crypto_ticker_update", "seq": 7, "timestamp": "2026-01-01T00:00:01Z", "data": []})
    assert ticker_frame_tail(raw) == (7, pytest.approx(1767225601.0))


async def _serve(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_it_reads_content_length_and_chunked_bodies_over_a_real_socket():
    async def handler(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        if b"/chunked" in head:
            writer.write(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n')
        else:
            body = await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
            writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server, port = await _serve(handler)
    async with server:
        chunked = await http.request("127.0.0.1", port, "GET", "/chunked")
        echoed = await http.request("127.0.0.1", port, "POST", "/echo", body={"b": [1, 2]})
    assert (chunked.status, chunked.json()) == (200, {"a": 1})
    assert (echoed.status, echoed.json()) == (201, {"b": [1, 2]})
    assert echoed.elapsed_ms > 0


async def test_it_raises_on_a_garbage_status_line():
    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-nope\r\n\r\n")
        await writer.drain()
        writer.close()

    server, port = await _serve(handler)
    async with server:
        with pytest.raises(http.HttpError):
            await http.request("127.0.0.1", port, "GET", "/")


async def test_a_user_sends_its_requests_on_one_kept_alive_connection_and_reopens_when_the_server_closes_it():
    """Like a browser tab: one connection for many requests; after `Connection: close` a new one, and a
    connection the server dropped while idle is reopened and the request sent again."""
    served = []

    async def handler(reader, writer):
        for _ in range(10):
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            path = head.split(b" ")[1].decode()
            served.append(path)
            close = path == "/last"
            body = json.dumps({"path": path, "n": len(served)}).encode()
            extra = b"Connection: close\r\n" if close else b""
            writer.write(b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (extra, len(body), body))
            await writer.drain()
            if close or path == "/then-drop":
                break
        writer.close()

    server, port = await _serve(handler)
    async with server:
        conn = http.Connection("127.0.0.1", port)
        first = [(await conn.request("GET", f"/{i}")).json()["path"] for i in range(3)]
        assert (first, conn.opened) == (["/0", "/1", "/2"], 1)
        assert (await conn.request("GET", "/last")).status == 200
        assert (await conn.request("GET", "/after-close")).json()["path"] == "/after-close"
        assert conn.opened == 2
        await conn.request("GET", "/then-drop")  # the server drops this connection after answering
        await asyncio.sleep(0.05)
        resent = await conn.request("POST", "/resent", body={"x": 1})
        conn.close()
    assert resent.json()["path"] == "/resent"
    assert conn.opened == 3
    assert served.count("/resent") == 1


async def _asgi_get(app, path: str, query: str = "") -> tuple[int, object]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    await app({"type": "http", "path": path, "query_string": query.encode()}, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"])


async def test_it_serves_coins_markets_shaped_like_the_recorded_fixture_with_prices_moving():
    market = fake_upstream.Market(step_seconds=3600)
    app = fake_upstream.App(market)
    recorded = json.loads((FIXTURES / "coingecko_coins_markets_usd.json").read_text())[0]
    status, first = await _asgi_get(app, "/api/v3/coins/markets", "vs_currency=usd&ids=bitcoin,ethereum&per_page=250")
    assert status == 200
    assert [c["id"] for c in first] == ["bitcoin", "ethereum"]
    assert list(first[0]) == list(recorded)
    market.step -= 1  # one random-walk period has passed
    _, second = await _asgi_get(app, "/api/v3/coins/markets", "vs_currency=usd&ids=bitcoin")
    assert second[0]["current_price"] != first[0]["current_price"]


async def test_it_serves_coinbase_bodies_with_the_recorded_fields_and_404s_unknown_products():
    app = fake_upstream.App(fake_upstream.Market(step_seconds=1))
    recorded = json.loads((FIXTURES / "coinbase_exchange_ticker.json").read_text())
    status, ticker = await _asgi_get(app, "/exchange/products/BTC-EUR/ticker")
    assert status == 200
    assert set(ticker) == set(recorded)
    assert float(ticker["bid"]) < float(ticker["price"]) < float(ticker["ask"])
    status, _ = await _asgi_get(app, "/exchange/products/NOPE-USD/ticker")
    assert status == 404


def _children() -> set[int]:
    return set(_children_map().get(os.getpid(), []))


def test_the_guest_speed_probe_gives_each_number_and_reaps_its_echo_process():
    before = _children()

    speed = guest_speed()

    assert set(speed) == {"python_loop_ms", "python_compile_ms", "round_trip_cpu_us"}
    assert all(0 < value < 60_000 for value in speed.values())
    assert _children() <= before


def _result(machine: dict) -> dict:
    return {"sla": {}, "measured": {}, "endpoints": {}, "resources_hold": {}, "machine": machine}


def test_the_report_names_the_machine_and_how_fast_the_guest_was():
    machine = {"nproc": 2, "cpu_model": "AMD EPYC", "kernel": "6.18", "python": "3.11.7"}
    speed = {"python_loop_ms": 38.5, "python_compile_ms": 31.2, "round_trip_cpu_us": 13.1}

    with_speed = render(_result({**machine, "guest_speed": speed})).splitlines()[0]
    without = render(_result(machine)).splitlines()[0]  # a run from before the probe existed

    assert with_speed.startswith("Machine: 2 cores (AMD EPYC), Linux 6.18, Python 3.11.7; guest speed")
    assert all(str(value) in with_speed for value in speed.values())
    assert without == "Machine: 2 cores (AMD EPYC), Linux 6.18, Python 3.11.7."


def test_the_timeline_shows_each_windows_own_cpu_and_none_after_the_monitor_stopped():
    from bench.load.run import analyse

    def sample(t: float, web: float, machine: float) -> dict:
        return {
            "t": t,
            "groups": {"web": {"cpu_pct": web, "pss_mb": 0.0, "procs": 3}},
            "machine_cpu_pct": machine,
            "mem_available_mb": 20_000,
        }

    windows = {k: {"market.ticker": EndpointStats()} for k in (100, 105, 110, 115)}
    gauges = {k: {"ws_open": 10} for k in windows}
    samples = [sample(101, 100, 150), sample(103, 140, 190), sample(106, 60, 80)]  # nothing from 110 on

    timeline = analyse({"window_seconds": 5, "ws_total": 10, "start_at": 100}, windows, gauges, samples, 100, 120)[
        "timeline"
    ]

    cpu = {p["t"]: (p["cpu"], p["machine_cpu_pct"]) for p in timeline}
    assert cpu[100] == ({"web": 120.0, "other processes": 50.0}, 170.0)
    assert cpu[105] == ({"web": 60.0, "other processes": 20.0}, 80.0)
    assert cpu[110] == cpu[115] == ({}, None)


def test_the_monitor_counts_a_process_once_when_its_parent_is_in_the_same_group():
    import subprocess
    import sys

    from bench.load.monitor import Monitor

    workers = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) for _ in range(3)]
    try:
        # As in run.py: the generator is its workers plus the coordinator, whose children they are.
        monitor = Monitor({}, extra={"load generator": [w.pid for w in workers] + [os.getpid()]})

        generator = monitor.groups()["load generator"]

        # (the test run may have other children of its own: only repeats are wrong)
        assert len(generator) == len(set(generator))
        assert {w.pid for w in workers} | {os.getpid()} <= set(generator)
    finally:
        for w in workers:
            w.kill()
            w.wait()
