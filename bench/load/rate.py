"""Stepped open-loop rates: the bare DRF mix's saturation rate and CoinLink's sustainable REST rate.

    .venv/bin/python -m bench.load.rate --stack-dir RUN_DIR [--users 200] [--step-seconds 20]

Needs a stack brought up with `bench/stack.py up --floor`. Arrivals are open loop (Poisson, at the
offered rate): a slow answer never delays the next arrival, and each request's latency runs from
the moment it was due, so time spent waiting for a free connection counts (no coordinated
omission). Each arrival is one action of the SPA's REST mix (bench/load/scenario.py MIX) by one of
`--users` signed-in users, each on its own keep-alive connection through nginx.

1. The bare mix: every arrival is the floor view (bench/floor/, behind the same nginx config and
   the same gunicorn settings). The rate grows by `--bare-growth` per step until the completed
   rate stops following the offered one; the saturation rate is the highest completed rate of
   any step.
2. CoinLink: the rate starts at `--start-fraction` of that saturation rate and grows by
   `--growth` per step until a step fails the SLA (p95 < 150 ms, p99 < 400 ms, no error), then
   `--refine` steps bisect between the last passing and the first failing rate. The sustainable
   rate is the highest passing one.
Meanwhile /health is probed 4x a second through the proxy, open loop. Writes <run dir>/rate.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path
from urllib.parse import urlparse

from bench.load import http
from bench.load.run import seed_users
from bench.load.scenario import MIX, RestUser, Shared
from bench.load.stats import Hist, Recorder

SLA = {"p95_ms": 150.0, "p99_ms": 400.0}
HEADERS = {"X-Forwarded-Proto": "https", "User-Agent": "coinlink-bench/1"}
# The whole REST mix, and its signed-in part alone: the market reads (and /health) are public and
# nginx's microcache answers most of them, so the whole mix's rate says little about the cost of a
# signed-in call, which is what bench/api_cpu.py compares with the floor.
MIXES = {
    "coinlink": MIX,
    "coinlink-signed-in": [(w, name) for w, name in MIX if not name.startswith(("market.", "legacy.", "health"))],
}
REQUEST_TIMEOUT = 10.0


def _round(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 1)


class FloorUser:
    """A bare-mix user: whatever the action, one signed-in call of the floor view."""

    def __init__(self, shared: Shared, floor: dict):
        self.s = shared
        url = urlparse(floor["http"])
        self.conn = http.Connection(url.hostname, url.port)
        self.path = floor["path"]
        self.token = floor["token"]

    async def action(self, name: str) -> None:
        await self.s.call(self.conn, "floor", "GET", self.path, token=self.token)


class Step:
    """One offered rate for a fixed time: the latency of every arrival (from when it was due) and
    every error, counted from the recorder the users' calls write to."""

    def __init__(self, side: str, rate: float, seconds: float):
        self.side, self.rate, self.seconds = side, rate, seconds
        mix = MIXES.get(side, MIX)
        self.actions, self.weights = [name for _, name in mix], [w for w, _ in mix]
        self.latency = Hist()
        self.arrivals = 0
        self.completed_in_window = 0
        self.unfinished = 0
        self.rec = Recorder()
        self.health = Hist()
        self.health_errors = 0
        self.examples: list[str] = []

    def errors(self) -> dict[str, int]:
        """Calls that did not get the answer they expect, by endpoint and status (or exception)."""
        counts: dict[str, int] = {}
        for window in self.rec.windows.values():
            for name, stats in window.items():
                if stats.errors:
                    for example in stats.examples[:1]:
                        self.examples.append(example)
                    for status, n in stats.statuses.items():
                        if status not in ("200", "201", "204"):
                            counts[f"{name} {status}"] = counts.get(f"{name} {status}", 0) + n
        return counts

    def result(self) -> dict:
        errors = self.errors()
        p50, p95, p99 = (_round(self.latency.percentile(p)) for p in (50, 95, 99))
        n_errors = sum(errors.values()) + self.unfinished
        return {
            "side": self.side,
            "offered_per_s": round(self.rate, 1),
            "completed_per_s": round(self.completed_in_window / self.seconds, 1),
            "arrivals": self.arrivals,
            "p50_ms": p50,
            "p95_ms": p95,
            "p99_ms": p99,
            "errors": n_errors,
            "error_kinds": errors,
            "error_examples": self.examples[:3],
            "health_p95_ms": _round(self.health.percentile(95)),
            "health_errors": self.health_errors,
            "meets_sla": p95 is not None
            and p95 < SLA["p95_ms"]
            and p99 is not None
            and p99 < SLA["p99_ms"]
            and n_errors == 0,
        }


async def run_step(users: list, shared: Shared, step: Step, probe: tuple[str, int], rng: random.Random) -> dict:
    idle: asyncio.Queue = asyncio.Queue()
    for user in users:
        idle.put_nowait(user)
    shared.rec = step.rec
    started = time.time()
    window_end = started + step.seconds
    shared.stop_at = window_end + REQUEST_TIMEOUT + 5
    inflight: set[asyncio.Task] = set()

    async def one(due: float, name: str) -> None:
        user = await idle.get()
        try:
            await user.action(name)
        finally:
            idle.put_nowait(user)
        done = time.time()
        step.latency.add((done - due) * 1000.0)
        if done <= window_end:
            step.completed_in_window += 1

    async def health(due: float) -> None:
        try:
            resp = await http.request(probe[0], probe[1], "GET", "/health", headers=HEADERS, timeout=REQUEST_TIMEOUT)
            if resp.status != 200:
                step.health_errors += 1
        except (OSError, TimeoutError, http.HttpError, asyncio.IncompleteReadError):
            step.health_errors += 1
        step.health.add((time.time() - due) * 1000.0)

    def spawn(coro) -> None:
        task = asyncio.create_task(coro)
        inflight.add(task)
        task.add_done_callback(inflight.discard)

    due, next_probe = started, started
    for _ in range(10_000_000):
        due += rng.expovariate(step.rate)
        if due >= window_end:
            break
        while next_probe <= due:
            spawn(health(next_probe))
            next_probe += 0.25
        await asyncio.sleep(max(0.0, due - time.time()))
        step.arrivals += 1
        spawn(one(due, rng.choices(step.actions, step.weights)[0]))
    if inflight:
        _done, pending = await asyncio.wait(inflight, timeout=REQUEST_TIMEOUT + 5)
        step.unfinished = len(pending)
        for task in pending:
            task.cancel()
    return step.result()


async def sign_in_all(users: list[RestUser]) -> None:
    sem = asyncio.Semaphore(16)

    async def one(user: RestUser) -> None:
        async with sem:
            for _attempt in range(3):
                if await user.sign_in():
                    return
                await asyncio.sleep(0.5)
            raise SystemExit(f"rate: {user.email} could not sign in")

    await asyncio.gather(*(one(u) for u in users))


async def main_async(args) -> dict:
    stack = json.loads((Path(args.stack_dir) / "stack.json").read_text())
    if not stack.get("floor"):
        raise SystemExit("rate: the stack has no floor; bring it up with `bench/stack.py up --floor`")
    url = urlparse(stack["http"])
    host, port = url.hostname, url.port
    cfg = {
        "http_host": host,
        "http_port": port,
        "ws_url": stack["ws"],
        "origin": stack["origin"],
        "stop_at": time.time() + 10**6,
        "think_seconds": 0,
        "request_timeout": REQUEST_TIMEOUT,
        "extra_headers": HEADERS,
        "user_ws": False,  # sockets are the feed verdict's business; REST only here
    }
    shared = Shared(cfg, Recorder())
    emails = [f"rate-{i}@load.bench" for i in range(args.users)]
    seeded = await seed_users(host, port, emails, HEADERS)
    if seeded["failed"]:
        raise SystemExit(f"rate: seeding failed: {seeded['failures']}")
    users = [RestUser(shared, i, email, new=False) for i, email in enumerate(emails)]
    await sign_in_all(users)
    floor_users = [FloorUser(shared, stack["floor"]) for _ in range(args.users)]
    rng = random.Random(2112)
    steps: list[dict] = []

    async def step(side: str, rate: float) -> dict:
        pool = floor_users if side == "bare" else users
        result = await run_step(pool, shared, Step(side, rate, args.step_seconds), (host, port), rng)
        steps.append(result)
        print(json.dumps(result), flush=True)
        # Requests a client gave up on are still queued in nginx and gunicorn: after an overloaded
        # step, wait long enough that they cannot land in the next step's window.
        await asyncio.sleep(args.rest_seconds if result["meets_sla"] else REQUEST_TIMEOUT + args.rest_seconds)
        return result

    # Warm both sides (connections, worker imports, caches) before anything counts.
    await run_step(floor_users, shared, Step("warm", 20, 5), (host, port), rng)
    await run_step(users, shared, Step("warm", 20, 5), (host, port), rng)

    saturation, rate = 0.0, args.bare_start
    for _ in range(args.max_steps):
        result = await step("bare", rate)
        saturation = max(saturation, result["completed_per_s"])
        if result["completed_per_s"] < 0.9 * rate or result["errors"]:
            break
        rate *= args.bare_growth

    async def sustainable(side: str) -> tuple[float, float | None]:
        """The highest offered rate whose step meets the SLA, and the lowest one found failing."""
        passed, failed = 0.0, None
        rate = max(5.0, args.start_fraction * saturation)
        for _ in range(args.max_steps):
            if not (await step(side, rate))["meets_sla"]:
                failed = rate
                break
            passed = rate
            rate *= args.growth
        for _ in range(args.refine if failed else 0):
            rate = (passed + failed) / 2
            if (await step(side, rate))["meets_sla"]:
                passed = rate
            else:
                failed = rate
        return passed, failed

    found = {side: await sustainable(side) for side in ("coinlink", "coinlink-signed-in")}
    health = [s for s in steps if s["health_p95_ms"] is not None]
    return {
        "sla": SLA,
        "users": args.users,
        "step_seconds": args.step_seconds,
        "bare_saturation_per_s": saturation,
        "coinlink_sustainable_per_s": round(found["coinlink"][0], 1),
        "coinlink_first_failing_per_s": _round(found["coinlink"][1]),
        "fraction": round(found["coinlink"][0] / saturation, 3) if saturation else None,
        "signed_in_sustainable_per_s": round(found["coinlink-signed-in"][0], 1),
        "signed_in_first_failing_per_s": _round(found["coinlink-signed-in"][1]),
        "signed_in_fraction": round(found["coinlink-signed-in"][0] / saturation, 3) if saturation else None,
        "errors_beyond_capacity": sum(s["errors"] for s in steps if s["side"] != "bare" and not s["meets_sla"]),
        "health_p95_ms_worst": max((s["health_p95_ms"] for s in health), default=None),
        "health_errors": sum(s["health_errors"] for s in steps),
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack-dir", required=True)
    parser.add_argument("--users", type=int, default=200, help="signed-in users (one connection each)")
    parser.add_argument("--step-seconds", type=float, default=20)
    parser.add_argument("--rest-seconds", type=float, default=3, help="pause between steps")
    parser.add_argument("--bare-start", type=float, default=100)
    parser.add_argument("--bare-growth", type=float, default=1.4)
    parser.add_argument("--start-fraction", type=float, default=0.25)
    parser.add_argument("--growth", type=float, default=1.25)
    parser.add_argument("--refine", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=12)
    args = parser.parse_args()
    try:
        import uvloop

        result = uvloop.run(main_async(args))
    except ImportError:
        result = asyncio.run(main_async(args))
    out = Path(args.stack_dir) / "rate.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"rate: wrote {out}")


if __name__ == "__main__":
    main()
