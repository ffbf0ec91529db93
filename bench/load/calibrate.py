"""How fast this guest is, measured in about two seconds before a load run, so that runs on
different guests of the "same" 2-core kind can be told apart.

Guests of that kind have differed by up to 5x in CPU per request (docs/performance.md: the
unread count cost 936 µs of CPU on one and 4,500-5,000 µs on another, whose kernel ran nested).
Three numbers cover the ways a guest has been slow:

- `python_loop_ms`: CPU time of a fixed pure-Python loop, whose code and data fit in the caches:
  the core's own speed.
- `python_compile_ms`: CPU time to compile the source of the standard library's `typing` module
  (about 120 kB), which walks far more memory, as a Django request does.
- `round_trip_cpu_us`: CPU time, on the caller's side, of one request/response over a socket pair
  with another process. Every Redis and PostgreSQL call, and every request from nginx, pays for
  this; nested virtualisation makes system calls and wake-ups expensive.

Each is the best of REPEATS (3) runs: drift on a shared host only ever makes things slower.

    .venv/bin/python -m bench.load.calibrate
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import time
import typing

LOOP_ITERATIONS = 1_000_000
ROUND_TRIPS = 2_000
REPEATS = 3


def _best_cpu_seconds(work) -> float:
    """The least CPU time `work()` took over REPEATS calls."""
    best = float("inf")
    for _ in range(REPEATS):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def python_loop_ms() -> float:
    def loop():
        total = 0
        for i in range(LOOP_ITERATIONS):
            total += i

    return round(_best_cpu_seconds(loop) * 1000, 1)


def python_compile_ms() -> float:
    source = inspect.getsource(typing)
    return round(_best_cpu_seconds(lambda: compile(source, "typing.py", "exec")) * 1000, 1)


def round_trip_cpu_us() -> float:
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the echoing peer, until the caller hangs up
        ours.close()
        try:
            while data := theirs.recv(64):
                theirs.sendall(data)
        finally:
            os._exit(0)
    theirs.close()

    def round_trips():
        for _ in range(ROUND_TRIPS):
            ours.sendall(b"ping")
            if not ours.recv(64):
                raise RuntimeError("the echo process went away")

    try:
        return round(_best_cpu_seconds(round_trips) / ROUND_TRIPS * 1e6, 1)
    finally:
        ours.close()
        os.waitpid(pid, 0)


def guest_speed() -> dict:
    return {
        "python_loop_ms": python_loop_ms(),
        "python_compile_ms": python_compile_ms(),
        "round_trip_cpu_us": round_trip_cpu_us(),
    }


if __name__ == "__main__":
    print(json.dumps(guest_speed()))
