"""The SLA verdict as ratios, measured in one run on one guest (issue 21; docs/performance.md leads
with its table).

    .venv/bin/python -m bench.load.verdict --stack-dir RUN_DIR [--quick]

Needs a stack brought up with `bench/stack.py up --floor` (bench/run_load.sh does it). In order:
1. the guest's calibration (bench/load/calibrate.py), so the absolute figures can be compared
   across guests;
2. CPU per signed-in call against the floor (bench/api_cpu.py, in-process, interleaved blocks);
3. the bare DRF mix's saturation rate and CoinLink's sustainable REST rate, whole mix and signed-in
   part (bench/load/rate.py, through nginx, with /health probed throughout);
4. feed delivery p95 at 5,000 sockets, CoinLink's /ws as production runs it (uvicorn with
   production's flags and two worker processes, deploy/docker-entrypoint.sh's WS_WORKERS default)
   against a bare `websockets` broadcast server, and one uvicorn process for the record
   (bench/ws_fanout.py, one after the other).
Writes <run dir>/verdict.json and verdict.md (the table), and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench.load.calibrate import guest_speed

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GOALS = {"cpu_multiple": 1.5, "rate_fraction": 0.6, "feed_multiple": 1.5, "health_p95_ms": 50.0}


def _run(cmd: list[str], log: Path, env: dict | None = None, timeout: float = 3600) -> None:
    print(f"verdict: {' '.join(cmd)}  (log: {log})", flush=True)
    with log.open("w") as fh:
        subprocess.run(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, check=True, timeout=timeout)


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_ratios(run_dir: Path, stack: dict, quick: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "DJANGO_", "COINLINK_"))}
    env.update(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/coinlink_api_cpu",
        REDIS_URL=stack["redis_url"].rsplit("/", 1)[0] + "/8",
    )
    out = run_dir / "api_cpu.json"
    rounds = ["--rounds", "60", "--blocks", "6"] if quick else ["--rounds", "300", "--blocks", "15"]
    _run([PYTHON, "bench/api_cpu.py", "--cycles", "0", *rounds, "--json", str(out)], run_dir / "api_cpu.md", env)
    return json.loads(out.read_text())


def rates(run_dir: Path, quick: bool) -> dict:
    args = ["--step-seconds", "8", "--users", "100"] if quick else ["--step-seconds", "20", "--users", "200"]
    _run([PYTHON, "-m", "bench.load.rate", "--stack-dir", str(run_dir), *args], run_dir / "rate.log")
    return json.loads((run_dir / "rate.json").read_text())


def feed(run_dir: Path, stack: dict, clients: int, seconds: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "DJANGO_", "COINLINK_"))}
    env.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{stack['database']}",
        REDIS_URL=stack["redis_url"].rsplit("/", 1)[0] + "/4",
    )
    out = run_dir / "ws_fanout.json"
    # Two client processes, as in the fan-out rounds of docs/performance.md: on two cores, more would
    # take CPU from the server under test (two uvicorn workers) more than from the one-process baseline.
    cmd = [PYTHON, "bench/ws_fanout.py", "--servers", "baseline", "uvicorn-2w", "uvicorn", "--procs", "2"]
    cmd += ["--clients", str(clients)]
    _run([*cmd, "--seconds", str(seconds), "--out", str(out)], run_dir / "ws_fanout.log", env)
    runs = {r["server"]: r for r in json.loads(out.read_text())["runs"]}
    return {
        "clients": clients,
        "seconds": seconds,
        "baseline": runs["baseline"],
        "coinlink": runs["uvicorn-2w"],
        "coinlink_one_process": runs["uvicorn"],
    }


def verdict_table(v: dict) -> str:
    cpu, rate, fd = v["cpu"], v["rate"], v["feed"]
    base95, ours95 = fd["baseline"]["latency_ms"]["p95"], fd["coinlink"]["latency_ms"]["p95"]
    feed_multiple = round(ours95 / base95, 2) if base95 else None
    one95 = fd["coinlink_one_process"]["latency_ms"]["p95"] if "coinlink_one_process" in fd else None
    feed_errors = sum(
        fd[k][e]
        for k in ("baseline", "coinlink", "coinlink_one_process")
        if k in fd
        for e in ("handshakes_failed", "seq_gaps", "connections_dropped")
    )
    health = rate["health_p95_ms_worst"]

    def mark(ok: bool) -> str:
        return "met" if ok else "**not met**"

    rows = [
        (
            "CPU per signed-in call vs the floor (mix-weighted median, in-process)",
            f"{cpu['weighted_multiple']:.2f}× ({cpu['weighted_us']:,} µs vs {cpu['floor_us']:,} µs)",
            f"≤ {GOALS['cpu_multiple']}×",
            mark(cpu["weighted_multiple"] <= GOALS["cpu_multiple"]),
        ),
        (
            "sustainable REST rate vs the bare DRF mix's saturation (whole mix, through nginx)",
            f"{rate['fraction']:.2f} ({rate['coinlink_sustainable_per_s']:,.0f}/s vs "
            f"{rate['bare_saturation_per_s']:,.0f}/s)",
            f"≥ {GOALS['rate_fraction']}",
            mark((rate["fraction"] or 0) >= GOALS["rate_fraction"]),
        ),
        (
            "the same, signed-in part of the mix only (no market reads, no microcache)",
            f"{rate['signed_in_fraction']:.2f} ({rate['signed_in_sustainable_per_s']:,.0f}/s)",
            "(not a goal)",
            "",
        ),
        (
            f"feed p95 at {fd['clients']:,} sockets vs a bare `websockets` broadcast (uvicorn, 2 workers, as deployed)",
            f"{feed_multiple}× ({ours95} ms vs {base95} ms)",
            f"≤ {GOALS['feed_multiple']}×",
            mark(feed_multiple is not None and feed_multiple <= GOALS["feed_multiple"]),
        ),
        (
            "the same, one uvicorn process",
            f"{round(one95 / base95, 2) if one95 and base95 else None}× ({one95} ms)",
            "(not a goal)",
            "",
        ),
        (
            "/health p95, worst step (through nginx, 4 probes/s)",
            f"{health} ms",
            f"< {GOALS['health_p95_ms']:.0f} ms",
            mark(health is not None and health < GOALS["health_p95_ms"] and not rate["health_errors"]),
        ),
        (
            "errors at the sustainable rates; feed handshake failures, seq gaps, drops",
            f"0 (by the SLA's definition); {feed_errors}",
            "0",
            mark(feed_errors == 0),
        ),
    ]
    cal = v["calibration"]
    lines = [
        "| ratio | measured | goal | verdict |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
        "",
        f"Absolute: CoinLink sustains {rate['coinlink_sustainable_per_s']:,.0f} REST calls/s "
        f"({rate['coinlink_sustainable_per_s'] * 60:,.0f}/min; first failing step "
        f"{rate['coinlink_first_failing_per_s']}/s) on a guest calibrated at python_loop "
        f"{cal['python_loop_ms']} ms, compile {cal['python_compile_ms']} ms, round trip "
        f"{cal['round_trip_cpu_us']} µs (bench/load/calibrate.py). {v['machine']}; {v['started']}, "
        f"load average {v['load_before']} before, {v['load_after']} after.",
    ]
    steps = rate.get("steps", [])
    if steps:
        lines += [
            "",
            f"Rate steps ({v['rate'].get('step_seconds')} s each, in the order run):",
            "",
            "| mix | offered/s | completed/s | p50 ms | p95 ms | p99 ms | errors | /health p95 ms | SLA |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
            *(
                f"| {st['side']} | {st['offered_per_s']:,.0f} | {st['completed_per_s']:,.0f} | {st['p50_ms']} | "
                f"{st['p95_ms']} | {st['p99_ms']} | {st['errors']} | {st['health_p95_ms']} | "
                f"{'held' if st['meets_sla'] else 'missed'} |"
                for st in steps
            ),
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack-dir", required=True)
    parser.add_argument("--quick", action="store_true", help="short steps and fewer rounds: a try, not a verdict")
    parser.add_argument("--ws-clients", type=int, default=5000)
    parser.add_argument("--ws-seconds", type=int, default=30)
    args = parser.parse_args()
    run_dir = Path(args.stack_dir).resolve()
    stack = json.loads((run_dir / "stack.json").read_text())
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if "model name" in ln), "?")
    v: dict = {
        "machine": f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}",
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_before": _loadavg(),
        "calibration": guest_speed(),
    }
    v["cpu"] = cpu_ratios(run_dir, stack, args.quick)
    v["rate"] = rates(run_dir, args.quick)
    v["feed"] = feed(run_dir, stack, args.ws_clients, 10 if args.quick else args.ws_seconds)
    v["load_after"] = _loadavg()
    v["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    table = verdict_table(v)
    (run_dir / "verdict.json").write_text(json.dumps(v, indent=2))
    (run_dir / "verdict.md").write_text(table)
    sys.stdout.write(table)


if __name__ == "__main__":
    main()
