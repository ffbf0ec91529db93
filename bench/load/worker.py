"""One load-generator process: its share of REST users and WebSocket viewers on one asyncio loop.

Started by bench/load/run.py as `python -m bench.load.worker <config.json> <index>`; writes its
closed time windows to `<run dir>/worker-<index>.jsonl` once a second.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from bench.load.scenario import RestUser, Shared, viewer
from bench.load.stats import Recorder


async def _flush_loop(shared: Shared, rec: Recorder, out: Path, until: float) -> None:
    with out.open("a") as fh:
        for _ in range(100_000):
            now = time.time()
            rec.gauge("ws_open", now, shared.ws_open)
            rec.gauge("rest_active", now, shared.rest_active)
            drained = rec.drain(now)
            if drained["windows"] or drained["gauges"]:
                fh.write(json.dumps(drained) + "\n")
                fh.flush()
            if now > until:
                return
            await asyncio.sleep(1.0)


async def _lag_loop(rec: Recorder, until: float) -> None:
    """Event-loop lag of this generator process: when it grows, measured latencies include our own delay."""
    for _ in range(10_000_000):
        if time.time() > until:
            return
        started = time.perf_counter()
        await asyncio.sleep(0.1)
        lag_ms = max(0.0, (time.perf_counter() - started - 0.1) * 1000.0)
        rec.record("gen.loop_lag", time.time(), lag_ms, "ok", True)


async def main(cfg: dict, index: int) -> None:
    rec = Recorder(cfg["window_seconds"])
    shared = Shared(cfg, rec)
    part = cfg["parts"][index]
    t0, ramp = cfg["start_at"], cfg["ramp_seconds"]
    n_users, n_viewers = cfg["total_users"], cfg["total_viewers"]
    tasks = []
    for u in part["users"]:
        user = RestUser(shared, u["index"], u["email"], new=u["new"])
        tasks.append(asyncio.create_task(user.run(t0 + ramp * u["index"] / max(1, n_users))))
    for v in part["viewers"]:
        tasks.append(asyncio.create_task(viewer(shared, v, t0 + ramp * v / max(1, n_viewers))))
    out = Path(cfg["run_dir"]) / f"worker-{index}.jsonl"
    lagger = asyncio.create_task(_lag_loop(rec, cfg["stop_at"]))
    flusher = asyncio.create_task(_flush_loop(shared, rec, out, cfg["stop_at"] + cfg["grace_seconds"]))
    # Every task is bounded by stop_at; the grace period lets in-flight calls finish.
    done, pending = await asyncio.wait(tasks, timeout=max(1.0, cfg["stop_at"] + cfg["grace_seconds"] - time.time()))
    for task in pending:
        task.cancel()
    for task in done:
        if task.exception() is not None:
            rec.record(
                "worker.task_crash", time.time(), None, type(task.exception()).__name__, False, repr(task.exception())
            )
    await asyncio.gather(*pending, return_exceptions=True)
    rec.gauge("ws_open", time.time(), shared.ws_open)
    await lagger
    await flusher
    # whatever is still open (the current window) goes out too
    with out.open("a") as fh:
        fh.write(json.dumps(rec.drain(time.time() + 3600)) + "\n")


if __name__ == "__main__":
    config = json.loads(Path(sys.argv[1]).read_text())
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(config, int(sys.argv[2])))
    else:
        uvloop.run(main(config, int(sys.argv[2])))
