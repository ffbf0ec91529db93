"""A stand-in for `docker compose` and `docker` that tests/test_deploy.py gives scripts/deploy (COMPOSE,
DOCKER), because this machine has no Docker engine. Every "container" is a real CoinLink process on
loopback: gunicorn for web, uvicorn for ws, the shipped nginx config for the proxy, and
`manage.py migrate` for the migrate service. An image tag picks a release: the environment overrides
the test wrote to releases.json for that tag (a broken release is one whose settings break it).

    python tests/compose_standin.py compose up -d --no-deps --no-recreate --scale web=2 web
    python tests/compose_standin.py docker inspect -f '...' c3

Only the commands scripts/deploy uses are understood; anything else exits 64, so the test notices
when the script starts relying on one that nothing here checks. worker and beat are recorded, not
run: the smoke test does not reach them. State lives in $STANDIN_DIR/state.json.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy.nginx import loopback as nginx  # noqa: E402 - the repository root is on the path only from here
from tests.coinlink.procs import free_port, http_get, start_gunicorn, start_uvicorn  # noqa: E402

DIR = Path(os.environ["STANDIN_DIR"])
STATE = DIR / "state.json"
SERVICES = ("postgres", "redis", "migrate", "web", "ws", "worker", "beat", "proxy")
SERVED = ("web", "ws")


def load() -> dict:
    if STATE.exists():
        return json.loads(STATE.read_text())
    return {"next": 1, "containers": {}, "proxy": None, "events": [], "recorded": {}}


def save(state: dict) -> None:
    STATE.write_text(json.dumps(state, indent=1))


def event(state: dict, text: str) -> None:
    state["events"].append(text)


def image_tag() -> str:
    return os.environ["COINLINK_IMAGE"].rsplit(":", 1)[1]


def release_env(tag: str) -> dict[str, str]:
    releases = json.loads((DIR / "releases.json").read_text())
    env = {**os.environ, **releases[tag]}
    return {name: value for name, value in env.items() if value is not None}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but was never reaped (its parent, an earlier stand-in, is gone) is a zombie.
    status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return status != "Z"


def start(state: dict, service: str, tag: str) -> str:
    cid = f"c{state['next']}"
    state["next"] += 1
    port = free_port()
    env = {**release_env(tag), "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "1"}
    with open(DIR / f"{cid}-{service}-{tag}.log", "wb") as log:
        process = start_gunicorn(env, stderr=log) if service == "web" else start_uvicorn(env, stderr=log)
    state["containers"][cid] = {"service": service, "tag": tag, "pid": process.pid, "port": port}
    event(state, f"start {service} {cid} {tag}")
    return cid


def stop(state: dict, cid: str) -> None:
    pid = state["containers"][cid]["pid"]
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    event(state, f"stop {cid}")


def ids(state: dict, service: str) -> list[str]:
    return [cid for cid, c in state["containers"].items() if c["service"] == service]


def proxy_render(state: dict) -> Path:
    def ports(service: str) -> list[int]:
        # An upstream needs a server: a closed port stands in for a service with no replica.
        return [state["containers"][cid]["port"] for cid in ids(state, service)] or [free_port()]

    return nginx.render(
        DIR / "proxy", web_port=ports("web"), ws_port=ports("ws"), proxy_port=int(os.environ["STANDIN_PROXY_PORT"])
    )


def proxy_up(state: dict) -> None:
    if state["proxy"] and alive(state["proxy"]):
        return
    conf = proxy_render(state)
    with open(DIR / "proxy.log", "wb") as log:
        process = subprocess.Popen(["nginx", "-p", str(conf.parent), "-c", str(conf)], stdout=log, stderr=log)
    state["proxy"] = process.pid
    event(state, "start proxy")


def proxy_reload(state: dict) -> int:
    conf = proxy_render(state)
    served = {s: sorted(ids(state, s)) for s in SERVED}
    event(state, f"reload proxy web={','.join(served['web'])} ws={','.join(served['ws'])}")
    command = ["nginx", "-p", str(conf.parent), "-c", str(conf), "-s", "reload"]
    return subprocess.run(command, check=False, stderr=subprocess.DEVNULL).returncode


def options(args: list[str], with_value: tuple[str, ...]) -> tuple[dict[str, list[str]], list[str]]:
    """Flags (with their values for the ones in `with_value`) and the remaining words, in order."""
    flags: dict[str, list[str]] = {}
    rest: list[str] = []
    words = iter(args)
    for word in words:
        if word.startswith("-") and not rest:
            flags.setdefault(word, []).append(next(words) if word in with_value else "")
        else:
            rest.append(word)
    return flags, rest


def compose_up(state: dict, args: list[str]) -> int:
    flags, services = options(args, ("--scale",))
    scale = dict(item.split("=") for item in flags.get("--scale", []))
    tag = image_tag()
    for service in services:
        if service == "proxy":
            proxy_up(state)
        elif service in SERVED:
            current = ids(state, service)
            if "--no-recreate" not in flags:
                for cid in [c for c in current if state["containers"][c]["tag"] != tag]:
                    stop(state, cid)
                    del state["containers"][cid]
            while len(ids(state, service)) < int(scale.get(service, 1)):
                start(state, service, tag)
        else:
            state["recorded"][service] = tag
            event(state, f"up {service} {tag}")
    return 0


def compose_run(state: dict, args: list[str]) -> int:
    flags, words = options(args, ("-e", "--entrypoint"))
    service, command = words[0], words[1:]
    env = release_env(image_tag())
    if service == "migrate":
        event(state, f"migrate {image_tag()}")
        return subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env).returncode
    if flags.get("--entrypoint") == ["python"]:
        event(state, f"run {' '.join(command)}")
        return subprocess.run([sys.executable, *command], cwd=ROOT, env=env).returncode
    return 64


def compose(state: dict, args: list[str]) -> int:
    verb, rest = args[0], args[1:]
    if verb == "pull":
        known = json.loads((DIR / "releases.json").read_text())
        if image_tag() not in known:
            print(f"manifest for {os.environ['COINLINK_IMAGE']} not found", file=sys.stderr)
            return 1
        return 0
    if verb == "up":
        return compose_up(state, rest)
    if verb == "run":
        return compose_run(state, rest)
    if verb == "ps" and rest[0] == "-q":
        if rest[1] == "proxy":
            print("proxy" if state["proxy"] and alive(state["proxy"]) else "")
        else:
            print("\n".join(ids(state, rest[1])))
        return 0
    if verb == "exec" and rest[-4:] == ["proxy", "nginx", "-s", "reload"]:
        return proxy_reload(state)
    if verb == "config" and rest == ["--services"]:
        print("\n".join(SERVICES))
        return 0
    return 64


def container_status(container: dict) -> str:
    if not alive(container["pid"]):
        return "exited"
    try:
        status = http_get(f"http://127.0.0.1:{container['port']}/health", timeout=2)[0]
    except OSError:
        return "starting"
    return "healthy" if status == 200 else "starting"


def docker(state: dict, args: list[str]) -> int:
    verb, cid = args[0], args[-1]
    if cid not in state["containers"]:
        print(f"Error: No such container: {cid}", file=sys.stderr)
        return 1
    if verb == "inspect":
        print(container_status(state["containers"][cid]))
    elif verb == "stop":
        stop(state, cid)
    elif verb == "rm":
        del state["containers"][cid]
        event(state, f"rm {cid}")
    else:
        return 64
    return 0


def main() -> int:
    state = load()
    try:
        return compose(state, sys.argv[2:]) if sys.argv[1] == "compose" else docker(state, sys.argv[2:])
    finally:
        save(state)


if __name__ == "__main__":
    sys.exit(main())
