"""Draw a load run's timeline (results.json) as one PNG: throughput, latency, feed, CPU.

.venv/bin/python -m bench.load.plot bench/runs/x/results.json docs/img/load-mixed.png
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path


def plot(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = result["timeline"]
    if not tl:
        return
    t0 = result.get("started_at", tl[0]["t"])
    xs = [p["t"] - t0 for p in tl]
    hold = (result["hold_from"] - t0, result["hold_to"] - t0)
    targets = result["targets"]
    fig, axes = plt.subplots(4, 1, figsize=(11, 13), sharex=True)

    ax = axes[0]
    ax.plot(xs, [p["rest_per_minute"] for p in tl], label="REST requests / min", color="tab:blue")
    ax.axhline(targets["rest_requests_per_minute"], color="tab:blue", ls=":", lw=1, label="target 100k/min")
    ax.set_ylabel("REST req/min")
    ax2 = ax.twinx()
    ax2.plot(xs, [p["ws_open"] for p in tl], label="WebSockets open", color="tab:green")
    ax2.set_ylabel("WebSockets open")
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    ax.legend(lines, labels, loc="upper left", fontsize=8)
    ax.set_title(
        f"CoinLink mixed workload {result.get('label', '')} — {result['machine']['nproc']} cores, "
        f"{result['settings']['users']} REST users, {result['settings']['ws_total']} WebSockets"
    )

    ax = axes[1]
    for key, style in (("rest_p50_ms", "-"), ("rest_p95_ms", "-"), ("rest_p99_ms", "-"), ("health_p95_ms", "--")):
        ax.plot(xs, [p[key] for p in tl], style, label=key.replace("_ms", "").replace("_", " "))
    ax.axhline(targets["rest_p95_ms"], color="grey", ls=":", lw=1)
    ax.axhline(targets["rest_p99_ms"], color="grey", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log)")
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[2]
    ax.plot(xs, [p["feed_p50_ms"] for p in tl], label="feed delivery p50")
    ax.plot(xs, [p["feed_p95_ms"] for p in tl], label="feed delivery p95")
    ax.axhline(targets["feed_p95_ms"], color="grey", ls=":", lw=1, label="target p95 250 ms")
    ax.set_yscale("log")
    ax.set_ylabel("ingest → client (ms)")
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[3]
    groups = sorted({g for p in tl for g in p["cpu"]}, key=lambda g: (g == "other processes", g))
    # A window with no monitor sample (after the monitor stopped) is a gap, not zero.
    series = [[p["cpu"].get(g, 0) if p["cpu"] else math.nan for p in tl] for g in groups]
    if groups:
        ax.stackplot(xs, series, labels=groups, alpha=0.8)
    ax.plot(
        xs,
        [p["machine_cpu_pct"] if p["machine_cpu_pct"] is not None else math.nan for p in tl],
        color="black",
        lw=1,
        label="machine total",
    )
    ax.set_ylabel("CPU % (100 = 1 core)")
    ax.set_xlabel("seconds since start")
    ax.legend(loc="upper left", fontsize=7, ncol=3)

    for ax in axes:
        ax.axvspan(*hold, color="grey", alpha=0.08)
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    plot(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
