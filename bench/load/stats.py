"""Latency histograms that merge across processes and time windows.

Log-spaced buckets, 2 % wide, from 0.05 ms to ~10 min: a percentile read from them is within 2 % of
the exact value, and two histograms add by summing counts, so each load worker keeps one per
(time window, endpoint) and the coordinator adds them up.
"""

from __future__ import annotations

import math
from collections import defaultdict

BASE_MS = 0.05
GROWTH = 1.02
_LOG_GROWTH = math.log(GROWTH)
MAX_INDEX = 1200


def bucket(ms: float) -> int:
    if ms <= BASE_MS:
        return 0
    return min(MAX_INDEX, int(math.log(ms / BASE_MS) / _LOG_GROWTH) + 1)


def bucket_upper_ms(index: int) -> float:
    return BASE_MS * GROWTH**index


class Hist:
    __slots__ = ("counts", "max_ms", "n", "total_ms")

    def __init__(self):
        self.counts: dict[int, int] = defaultdict(int)
        self.n = 0
        self.total_ms = 0.0
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        self.counts[bucket(ms)] += 1
        self.n += 1
        self.total_ms += ms
        if ms > self.max_ms:
            self.max_ms = ms

    def merge(self, other: Hist) -> None:
        for k, v in other.counts.items():
            self.counts[k] += v
        self.n += other.n
        self.total_ms += other.total_ms
        self.max_ms = max(self.max_ms, other.max_ms)

    def percentile(self, p: float) -> float | None:
        if not self.n:
            return None
        rank = math.ceil(self.n * p / 100.0)
        seen = 0
        for k in sorted(self.counts):
            seen += self.counts[k]
            if seen >= rank:
                return min(bucket_upper_ms(k), self.max_ms)
        return self.max_ms

    def summary(self) -> dict:
        if not self.n:
            return {"n": 0}
        return {
            "n": self.n,
            "mean_ms": round(self.total_ms / self.n, 2),
            "p50_ms": round(self.percentile(50), 2),
            "p95_ms": round(self.percentile(95), 2),
            "p99_ms": round(self.percentile(99), 2),
            "max_ms": round(self.max_ms, 2),
        }

    def to_json(self) -> dict:
        return {"c": {str(k): v for k, v in self.counts.items()}, "n": self.n, "t": self.total_ms, "m": self.max_ms}

    @classmethod
    def from_json(cls, data: dict) -> Hist:
        h = cls()
        for k, v in data["c"].items():
            h.counts[int(k)] += v
        h.n, h.total_ms, h.max_ms = data["n"], data["t"], data["m"]
        return h


class EndpointStats:
    """Per endpoint: latency of every completed call, status counts, errors (with a few examples)."""

    __slots__ = ("errors", "examples", "hist", "statuses")

    def __init__(self):
        self.hist = Hist()
        self.statuses: dict[str, int] = defaultdict(int)
        self.errors = 0
        self.examples: list[str] = []

    def record(self, ms: float | None, status: str, ok: bool, detail: str = "") -> None:
        if ms is not None:
            self.hist.add(ms)
        self.statuses[status] += 1
        if not ok:
            self.errors += 1
            if len(self.examples) < 5 and detail:
                self.examples.append(detail[:300])

    @property
    def calls(self) -> int:
        return sum(self.statuses.values())

    def merge(self, other: EndpointStats) -> None:
        self.hist.merge(other.hist)
        for k, v in other.statuses.items():
            self.statuses[k] += v
        self.errors += other.errors
        self.examples.extend(other.examples[: max(0, 5 - len(self.examples))])

    def to_json(self) -> dict:
        return {"h": self.hist.to_json(), "s": dict(self.statuses), "e": self.errors, "x": self.examples}

    @classmethod
    def from_json(cls, data: dict) -> EndpointStats:
        es = cls()
        es.hist = Hist.from_json(data["h"])
        for k, v in data["s"].items():
            es.statuses[k] += v
        es.errors = data["e"]
        es.examples = list(data["x"])
        return es


class Recorder:
    """Stats bucketed into fixed time windows (epoch-aligned), so workers' windows line up."""

    def __init__(self, window_seconds: float = 5.0):
        self.window = window_seconds
        self.windows: dict[int, dict[str, EndpointStats]] = defaultdict(lambda: defaultdict(EndpointStats))
        self.gauges: dict[int, dict[str, float]] = defaultdict(dict)

    def key(self, at: float) -> int:
        return int(at // self.window * self.window)

    def record(self, endpoint: str, at: float, ms: float | None, status: str, ok: bool, detail: str = "") -> None:
        self.windows[self.key(at)][endpoint].record(ms, status, ok, detail)

    def gauge(self, name: str, at: float, value: float) -> None:
        self.gauges[self.key(at)][name] = value

    def drain(self, before: float) -> dict:
        """Remove and return (as JSON) the windows that closed before `before`."""
        out = {}
        for k in sorted(k for k in self.windows if k + self.window <= before):
            out[str(k)] = {ep: s.to_json() for ep, s in self.windows.pop(k).items()}
        gauges = {}
        for k in sorted(k for k in self.gauges if k + self.window <= before):
            gauges[str(k)] = self.gauges.pop(k)
        return {"windows": out, "gauges": gauges}
