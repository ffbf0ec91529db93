"""Render a load run's results.json as the Markdown tables docs/performance.md shows.

.venv/bin/python -m bench.load.markdown bench/results/<run>/results.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.1f}" if value >= 100 else f"{value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(result: dict) -> str:
    out = []
    m = result["measured"]
    machine = result.get("machine") or {}
    if machine:
        line = (
            f"Machine: {machine.get('nproc')} cores ({machine.get('cpu_model') or '?'}), Linux "
            f"{machine.get('kernel')}, Python {machine.get('python')}"
        )
        speed = machine.get("guest_speed")
        if speed:  # runs before bench/load/calibrate.py have none
            line += (
                f"; guest speed (bench/load/calibrate.py): Python loop {speed['python_loop_ms']} ms, "
                f"compile {speed['python_compile_ms']} ms, round trip {speed['round_trip_cpu_us']} µs of CPU"
            )
        out += [line + ".", ""]
    out.append("| Target | Goal | Measured (hold) | Verdict |")
    out.append("|---|---|---|---|")
    for name, v in result["sla"].items():
        verdict = "**met**" if v["pass"] else f"missed: {v['miss_by']}"
        out.append(f"| {name} | {_fmt(v['target'])} | {_fmt(v['measured'])} | {verdict} |")
    out.append("")
    out.append("| Measure | Value |")
    out.append("|---|---|")
    for key in (
        "rest_calls",
        "rest_p50_ms",
        "rest_p95_ms",
        "rest_p99_ms",
        "feed_p50_ms",
        "feed_p95_ms",
        "feed_p99_ms",
        "feed_publish_usd_p50_ms",
        "feed_publish_usd_p95_ms",
        "health_p95_ms",
        "health_p99_ms",
        "ws_held_min",
        "ws_held_median",
        "ws_all_open_after_seconds",
        "rest_errors",
        "ws_errors",
        "web_cpu_ms_per_request",
        "web_cores_for_target_rate",
        "ws_cpu_ms_per_feed_frame",
        "generator_loop_lag_p95_ms",
        "generator_loop_lag_p99_ms",
        "other_processes_cpu_pct_mean",
    ):
        if key in m:
            out.append(f"| {key} | {_fmt(m[key])} |")
    out.append("")
    server = result.get("server_side_hold", {})
    if server:
        out.append("Server side over the hold (the servers' own Prometheus histograms, ops' SLA queries):")
        out.append("")
        out.append("| Histogram | count | p50 ms | p95 ms | p99 ms |")
        out.append("|---|---|---|---|---|")
        for key, v in server.items():
            out.append(
                f"| {key} | {_fmt(v['count'])} | {_fmt(v.get('p50_ms'))} | {_fmt(v.get('p95_ms'))} | "
                f"{_fmt(v.get('p99_ms'))} |"
            )
        out.append("")
    out.append("| Endpoint (hold) | calls | per min | p50 ms | p95 ms | p99 ms | errors |")
    out.append("|---|---|---|---|---|---|---|")
    for ep, v in result["endpoints"].items():
        if ep.startswith("gen."):
            continue
        out.append(
            f"| {ep} | {_fmt(v['calls'])} | {_fmt(v['per_minute'])} | {_fmt(v.get('p50_ms'))} | "
            f"{_fmt(v.get('p95_ms'))} | {_fmt(v.get('p99_ms'))} | {_fmt(v['errors'])} |"
        )
    out.append("")
    out.append("| Process group (hold) | CPU % mean (100 = 1 core) | CPU % max | memory PSS max (MB) | processes |")
    out.append("|---|---|---|---|---|")
    for g, v in result["resources_hold"].items():
        if g == "machine":
            continue
        out.append(
            f"| {g} | {_fmt(v['cpu_pct_mean'])} | {_fmt(v['cpu_pct_max'])} | {_fmt(v['pss_mb_max'])} | {v['procs']} |"
        )
    mach = result["resources_hold"].get("machine")
    if mach:
        out.append(f"| whole machine | {_fmt(mach['cpu_pct_mean'])} of {mach['cpu_pct_of']} | | | |")
    for name, prof in result.get("profiles", {}).items():
        out.append("")
        out.append(f"py-spy, `{name}` ({prof['samples']:,} samples, 30 s mid-hold): share of samples")
        out.append("")
        out.append("| inclusive (project code) | % | leaf (self) | % |")
        out.append("|---|---|---|---|")
        left = prof.get("project_inclusive_pct", [])[:12]
        right = prof.get("top_leaf_pct", [])[:12]
        for i in range(max(len(left), len(right))):
            a = left[i] if i < len(left) else ["", ""]
            b = right[i] if i < len(right) else ["", ""]
            out.append(f"| `{a[0]}` | {a[1]} | `{b[0]}` | {b[1]} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(json.loads(Path(sys.argv[1]).read_text())))
