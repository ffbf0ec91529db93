"""CPU and memory of the server's processes, sampled from /proc (no psutil needed).

Groups are process trees rooted at the pids bench/stack.py recorded (gunicorn master and its
workers, uvicorn, the Celery worker and its pool, beat, the fake upstream), plus the PostgreSQL
backends serving the load database, the Redis server, and the load generator itself. CPU is in
percent of one core (200 = both cores of this machine), memory is PSS (shared pages split fairly).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
MEMORY_EVERY = 5  # samples (seconds) between PSS readings


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree(root: int, kids: dict[int, list[int]]) -> list[int]:
    out, todo = [], [root]
    for _ in range(10_000):
        if not todo:
            break
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def machine_cpu() -> tuple[int, int, int]:
    """(total, idle, interrupts) jiffies of the whole machine; interrupts = irq + softirq (loopback TCP lands there)."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in parts]
    idle = values[3] + values[4]
    return sum(values[:8]), idle, values[5] + values[6]


def pg_backends(database: str) -> list[int]:
    try:
        out = subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-At",
                "-c",
                f"select pid from pg_stat_activity where datname = '{database}'",
            ],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [int(x) for x in out.split() if x.isdigit()]


def redis_pid(port: int) -> int | None:
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if cmd.startswith("redis-server") and f":{port}" in cmd:
            return int(entry.name)
    return None


class Monitor:
    def __init__(
        self,
        roots: dict[str, int],
        *,
        database: str | None = None,
        redis_port: int | None = None,
        extra: dict[str, list[int]] | None = None,
    ):
        self.roots = roots
        self.database = database
        self.redis = redis_pid(redis_port) if redis_port else None
        self.extra = extra or {}
        self.prev: dict[int, int] = {}
        self.prev_t = time.monotonic()
        self.prev_machine = machine_cpu()
        self.pg_pids: list[int] = []
        self.pss_mb: dict[str, float] = {}
        self.samples = 0

    def groups(self) -> dict[str, list[int]]:
        kids = _children_map()
        groups = {name: tree(pid, kids) for name, pid in self.roots.items()}
        if self.database:
            if self.samples % 5 == 0:
                self.pg_pids = pg_backends(self.database)
            groups["postgres"] = self.pg_pids
        if self.redis:
            groups["redis (shared)"] = [self.redis]
        for name, pids in self.extra.items():
            # One process once, even when a root is another root's child (the coordinator's workers).
            groups[name] = list(dict.fromkeys(p for root in pids for p in tree(root, kids)))
        return groups

    def sample(self) -> dict:
        """CPU and PSS of every group since the last sample; safe to call from a worker thread."""
        now = time.monotonic()
        dt = max(1e-3, now - self.prev_t)
        groups = self.groups()
        # PSS walks each process's page tables in the kernel: at 5,000 sockets that is tens of ms of
        # the servers' own CPU, so memory is read every MEMORY_EVERY samples (it moves slowly).
        measure_memory = self.samples % MEMORY_EVERY == 0
        out: dict = {"t": time.time(), "groups": {}}
        seen: dict[int, int] = {}
        for name, pids in groups.items():
            cpu = 0.0
            mem = 0
            for pid in pids:
                ticks = cpu_ticks(pid)
                if ticks is None:
                    continue
                seen[pid] = ticks
                if pid in self.prev:
                    cpu += (ticks - self.prev[pid]) / CLK_TCK / dt * 100.0
                if measure_memory:
                    mem += pss_kb(pid)
            if measure_memory:
                self.pss_mb[name] = round(mem / 1024, 1)
            out["groups"][name] = {"cpu_pct": round(cpu, 1), "pss_mb": self.pss_mb.get(name, 0.0), "procs": len(pids)}
        total, idle, irq = machine_cpu()
        pt, pi, pirq = self.prev_machine
        busy = (total - pt) - (idle - pi)
        out["machine_cpu_pct"] = round(100.0 * os.cpu_count() * busy / max(1, total - pt), 1)
        out["machine_irq_pct"] = round(100.0 * os.cpu_count() * (irq - pirq) / max(1, total - pt), 1)
        out["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        out["mem_available_mb"] = int(meminfo["MemAvailable"].split()[0]) // 1024
        self.prev, self.prev_t, self.prev_machine = seen, now, (total, idle, irq)
        self.samples += 1
        out["took_ms"] = round((time.monotonic() - now) * 1000.0, 1)
        return out
