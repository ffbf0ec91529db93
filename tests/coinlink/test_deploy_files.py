"""The deployment files, checked by parsing: there is no Docker engine on the test machine, so the
compose file is validated structurally and the Dockerfile by reading (CI builds and scans the image)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.coinlink.procs import ROOT

APP_SERVICES = ("migrate", "web", "ws", "worker", "beat", "stream")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_it_defines_every_service_with_a_healthcheck(compose):
    services = compose["services"]
    core = {name for name, service in services.items() if "profiles" not in service}
    assert core == {"postgres", "redis", "proxy", *APP_SERVICES}
    monitoring = {name for name, service in services.items() if service.get("profiles") == ["monitoring"]}
    assert monitoring == {"prometheus", "redis-exporter", "postgres-exporter"}
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        if name == "migrate":
            assert check == {"disable": True}  # a one-shot job is judged by its exit code
        else:
            assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_it_runs_every_app_process_from_one_image_and_the_env_file(compose):
    services = compose["services"]
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in APP_SERVICES:
        assert services[name]["env_file"] == ".env"
        assert services[name]["build"]["dockerfile"] == "Dockerfile"
        assert "DATABASE_URL" in services[name]["environment"]
    assert [services[name]["command"] for name in APP_SERVICES] == [[n] for n in APP_SERVICES]


def test_it_orders_startup_with_health_and_completion_conditions(compose):
    services = compose["services"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("web", "ws", "worker", "stream"):
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }
    assert services["beat"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["proxy"]["depends_on"] == {
        "web": {"condition": "service_healthy"},
        "ws": {"condition": "service_healthy"},
    }
    assert services["migrate"]["restart"] == "no"


def test_it_runs_exactly_one_beat(compose):
    beat = compose["services"]["beat"]
    assert "deploy" not in beat and "scale" not in beat and "replicas" not in str(beat)
    beats = [name for name, s in compose["services"].items() if s.get("command") == ["beat"]]
    assert beats == ["beat"]


def test_it_hardens_the_app_containers(compose):
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
        assert "/tmp" in service["tmpfs"]  # noqa: S108
    assert "ports" not in compose["services"]["web"]  # only the proxy is published


def test_it_requires_a_database_password_instead_of_defaulting_one(compose):
    assert ":?" in compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]


def test_the_proxy_sends_ws_with_upgrade_headers_and_everything_else_to_web(compose):
    conf = (ROOT / "deploy/nginx/coinlink.conf").read_text()
    ws = (ROOT / "deploy/nginx/coinlink-ws.inc").read_text()
    proxy = (ROOT / "deploy/nginx/coinlink-proxy.inc").read_text()
    assert "server web:8000" in conf and "server ws:8001" in conf
    assert re.search(r"location = /ws\s+\{ include [^;]*coinlink-ws\.inc;", conf)
    assert re.search(r"location /ws/\s+\{ include [^;]*coinlink-ws\.inc;", conf)
    assert re.search(r"location / \{\s+proxy_pass http://coinlink_web;", conf)
    assert "proxy_pass http://coinlink_ws;" in ws
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "proxy_set_header Connection $connection_upgrade;" in ws
    assert "proxy_http_version 1.1;" in ws
    assert "X-Forwarded-For" in proxy and "X-Request-ID" in proxy
    mounted = {v.split(":")[0] for v in compose["services"]["proxy"]["volumes"]}
    assert mounted == {
        "./deploy/nginx/coinlink.conf",
        "./deploy/nginx/coinlink-proxy.inc",
        "./deploy/nginx/coinlink-ws.inc",
    }
    for path in mounted:
        assert (ROOT / path).exists()


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_the_nginx_config_is_accepted_by_nginx(tmp_path):
    from deploy.nginx import loopback

    # Compose resolves the service names and mounts the paths; here they are loopback and tmp_path.
    conf = loopback.render(tmp_path, web_port=8000, ws_port=8001, proxy_port=8080)
    result = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_dockerfile_builds_in_two_stages_and_runs_as_non_root(dockerfile):
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", dockerfile, re.M)
    assert [name for _, name in stages] == ["builder", "runtime"]
    assert "python:3.11-slim" in dockerfile
    builder, runtime = dockerfile.split("AS runtime", 1)
    assert "build-essential" in builder and "pip wheel" in builder
    assert "build-essential" not in runtime and "gcc" not in runtime and "apt-get install" not in runtime
    assert "--no-index --find-links=/wheels" in runtime
    user = re.findall(r"^USER (\S+)$", runtime, re.M)
    assert user and not user[-1].startswith(("root", "0"))
    assert "COINLINK_ENV=production" in runtime
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD \[\"python\", \"/app/deploy/healthcheck.py\"\]", runtime, re.M)
    assert 'ENTRYPOINT ["/app/deploy/docker-entrypoint.sh"]' in runtime


def test_the_dockerfile_bakes_no_secret_into_env(dockerfile):
    env_blocks = re.findall(r"^ENV ((?:.*\\\n)*.*)$", dockerfile, re.M)
    baked = " ".join(env_blocks)
    for name in ("SECRET_KEY", "JWT_SIGNING_KEY", "DATABASE_URL", "REDIS_URL", "PASSWORD", "TOKEN"):
        assert name not in baked
    # The throwaway secrets live in the collectstatic RUN step only, generated there.
    collect = re.search(r"^RUN SECRET_KEY=.*?collectstatic", dockerfile, re.M | re.S)
    assert collect and "token_urlsafe" in collect.group(0)
    assert not re.search(r"^ARG .*(SECRET|TOKEN|PASSWORD)", dockerfile, re.M)


def test_the_docker_context_leaves_out_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".env", ".coinlink-dev-secrets", "db.sqlite3*"):
        assert entry in ignored


def test_the_image_ships_no_benchmarks():
    entries = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    assert "bench" in entries  # the whole directory: bench/ runs from a checkout against the product


def test_the_entrypoint_is_valid_shell_and_knows_every_role():
    script = ROOT / "deploy/docker-entrypoint.sh"
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0
    text = script.read_text()
    for role in ("web)", "ws)", "worker)", "beat)", "stream)", "migrate)", "manage)"):
        assert role in text
    assert "gunicorn coinlink.wsgi:application --config /app/deploy/gunicorn.conf.py" in text
    assert "uvicorn coinlink.asgi:application" in text and "--ws websockets-sansio" in text
    assert "--ws-per-message-deflate false" in text and "--ws-max-size" in text
    # The transport ping is the only dead-peer check; the fan-out bench runs these exact values.
    assert "--ws-ping-interval 60 --ws-ping-timeout 30" in text
    # One uvicorn process per core of the 2-core reference box unless WS_WORKERS says otherwise.
    assert '--workers "${WS_WORKERS:-2}"' in text
    assert "celery -A coinlink worker" in text and "celery -A coinlink beat" in text


def test_the_gunicorn_config_uses_sync_workers_and_marks_dead_workers():
    namespace: dict = {}
    exec(compile((ROOT / "deploy/gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)  # noqa: S102
    assert namespace["worker_class"] == "sync"
    assert callable(namespace["child_exit"]) and callable(namespace["on_starting"])
    assert "mark_process_dead" in (ROOT / "deploy/gunicorn.conf.py").read_text()


def test_the_ci_workflow_runs_the_same_checks_as_the_ci_script():
    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    jobs = workflow["jobs"]
    assert set(jobs["test"]["services"]) == {"postgres", "redis"}
    steps = "\n".join(step.get("run", "") for job in jobs.values() for step in job["steps"])
    for command in (
        "ruff check .",
        "ruff format --check .",
        "makemigrations --check --dry-run",
        "check --deploy --fail-level WARNING",
        "--cov-fail-under=85",
        "pip-audit",
        "bandit -c .bandit.yml -r coinlink accounts markets notifications realtime",
        "docker build",
        "scripts/lint-migrations",
        "scripts/lint-release",
    ):
        assert command in steps, command
    trivy = [s for s in jobs["image"]["steps"] if "trivy" in s.get("uses", "")]
    assert trivy and trivy[0]["with"]["exit-code"] == "1"
    assert jobs["test"]["env"]["COINLINK_REQUIRE_SERVICES"] == "1"
    bandit = yaml.safe_load((ROOT / ".bandit.yml").read_text())
    assert "tests" in bandit["exclude_dirs"]


def test_the_deploy_workflow_gates_production_on_staging_and_rolls_back_loudly():
    workflow = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())
    trigger = workflow[True]["workflow_run"]  # YAML 1.1 reads the key `on` as True
    assert trigger["workflows"] == ["ci"] and trigger["branches"] == ["main", "feat/**"]
    jobs = workflow["jobs"]
    assert "conclusion == 'success'" in jobs["build"]["if"] and "event == 'push'" in jobs["build"]["if"]
    build = "\n".join(step.get("run", "") for step in jobs["build"]["steps"])
    assert "docker build --pull" in build and 'docker push "$IMAGE:$SHA"' in build
    assert jobs["staging"]["needs"] == "build" and jobs["staging"]["environment"]["name"] == "staging"
    production = jobs["production"]
    assert production["needs"] == ["build", "staging"] and production["environment"]["name"] == "production"
    assert production["if"] == "github.event.workflow_run.head_branch == 'main'"
    runs = [step.get("run", "") for step in production["steps"]]
    assert 'scripts/release deploy "$SHA"' in runs and 'scripts/release smoke "$SHA"' in runs
    rollback = next(step for step in production["steps"] if "scripts/release rollback" in step.get("run", ""))
    assert rollback["if"] == "failure() && steps.smoke.conclusion == 'failure'"
    assert "exit 1" in rollback["run"] and "::error" in rollback["run"]


def _env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.production.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _as_compose_runs(values: dict[str, str]) -> dict[str, str]:
    password = values["POSTGRES_PASSWORD"] or "filled-in-by-the-operator"
    return {
        **values,
        "DATABASE_URL": f"postgres://coinlink:{password}@postgres:5432/coinlink",
        "REDIS_URL": "redis://redis:6379/0",
    }


def test_the_env_example_refuses_to_start_until_its_placeholders_are_replaced():
    import secrets

    from coinlink.config import ConfigError, load

    values = _as_compose_runs(_env_example())
    assert values["COINLINK_ENV"] == "production"
    with pytest.raises(ConfigError) as refused:
        load(values)
    assert refused.value.name == "SECRET_KEY"
    with pytest.raises(ConfigError) as refused:
        load({**values, "SECRET_KEY": secrets.token_urlsafe(64)})
    assert refused.value.name == "JWT_SIGNING_KEY"
    # Compose's ${POSTGRES_PASSWORD:?...} refuses an empty password.
    assert _env_example()["POSTGRES_PASSWORD"] == ""
    assert "${POSTGRES_PASSWORD:?" in (ROOT / "docker-compose.yml").read_text()


def test_the_env_example_is_otherwise_a_valid_production_configuration():
    import secrets

    from coinlink.config import load

    values = _as_compose_runs(_env_example())
    values.update(SECRET_KEY=secrets.token_urlsafe(64), JWT_SIGNING_KEY=secrets.token_urlsafe(48))
    config = load(values)
    assert config.production and config.secure_proxy_ssl_header and config.trusted_proxies
    assert "*" not in config.allowed_hosts and config.log_format == "json"


def test_every_variable_in_the_env_example_is_documented():
    documented = (ROOT / "docs/configuration.md").read_text() + (ROOT / "docs/deployment.md").read_text()
    for name in _env_example():
        assert f"`{name}`" in documented, name


def test_the_readme_names_every_example_host_of_the_env_example_to_replace():
    readme = " ".join((ROOT / "README.md").read_text().split())
    instructions = readme[readme.index("cp .env.production.example .env") :][:600]
    with_example_hosts = [name for name, value in _env_example().items() if "example.com" in value]

    assert with_example_hosts  # the premise: the example ships placeholder hosts
    for name in with_example_hosts:
        assert f"`{name}`" in instructions, name


def test_the_systemd_examples_cover_every_process_with_one_beat_and_a_oneshot_migrate():
    units = {path.name: path.read_text() for path in (ROOT / "deploy/systemd").glob("*.service")}
    assert set(units) == {
        "coinlink-web.service",
        "coinlink-ws.service",
        "coinlink-worker@.service",
        "coinlink-beat.service",
        "coinlink-migrate.service",
        "coinlink-stream.service",
    }
    assert "Type=oneshot" in units["coinlink-migrate.service"]
    # beat is a plain unit (workers are a template, coinlink-worker@N): it cannot be instantiated twice.
    assert "EXACTLY ONE" in units["coinlink-beat.service"] and "%i" not in units["coinlink-beat.service"]
    for name, text in units.items():
        assert "User=coinlink" in text and "EnvironmentFile=/etc/coinlink/coinlink.env" in text, name
    services = ("web", "ws", "worker@", "beat", "stream")
    for name in (f"coinlink-{s}.service" for s in services):
        # none of them starts on a schema the migration has not brought up to date
        assert "Requires=coinlink-migrate.service" in units[name], name
    dirs = [re.search(r"PROMETHEUS_MULTIPROC_DIR=(\S+)", t) for t in units.values()]
    used = [m.group(1) for m in dirs if m]
    assert len(used) == len(set(used)) == 3  # web, ws, worker: never a shared directory


def test_every_periodic_job_expires_before_its_next_run(settings):
    from coinlink.beat_schedule import beat_schedule

    schedule = beat_schedule()
    assert "markets-ingest" in schedule
    for name, entry in schedule.items():
        expires = entry["options"]["expires"]
        assert 0 < expires < entry["schedule"], name


def test_the_entrypoint_runs_manage_commands_and_empties_the_metrics_directory(tmp_path):
    from tests.coinlink.procs import BIN, child_env

    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_123.db").write_bytes(b"stale")
    env = child_env(PATH=f"{BIN}:/usr/bin:/bin", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    script = str(ROOT / "deploy/docker-entrypoint.sh")
    result = subprocess.run(["sh", script, "manage", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    # The stale file of an earlier run is gone; what is there now was written by this run.
    assert metrics_dir.is_dir() and not (metrics_dir / "counter_123.db").exists()
    passthrough = subprocess.run(["sh", script, "echo", "as", "given"], env=env, capture_output=True, text=True)
    assert passthrough.stdout == "as given\n"


def test_the_probe_listener_is_the_same_port_in_compose_systemd_and_the_proxy(compose):
    web = compose["services"]["web"]
    port = str(web["environment"]["PROBE_PORT"])
    assert port in [str(p) for p in web["expose"]]
    unit = (ROOT / "deploy/systemd/coinlink-web.service").read_text()
    assert re.search(rf"^Environment=.*\bPROBE_PORT={port}\b", unit, re.M)
    conf = (ROOT / "deploy/nginx/coinlink.conf").read_text()
    assert re.search(rf"upstream coinlink_web_probes \{{ server web:{port}; \}}", conf)
    probes = conf[conf.index("location ~ ^/(health|livez|readyz)/?$") :].split("}", 1)[0]
    assert "proxy_pass http://coinlink_web_probes;" in probes


def test_the_container_healthcheck_asks_the_probe_listener_when_there_is_one(tmp_path):
    import http.server
    import threading

    from tests.coinlink.procs import PYTHON, child_env, free_port

    seen = []

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        probe_port = server.server_address[1]
        env = child_env(PORT=str(free_port()), PROBE_PORT=str(probe_port), ALLOWED_HOSTS="api.example.com")
        check = [PYTHON, str(ROOT / "deploy/healthcheck.py")]
        with_probe = subprocess.run(check, env=env, timeout=20)
        env["PROBE_PORT"] = ""  # the ws container has none: its PORT (closed here) is asked, and fails
        without = subprocess.run(
            [PYTHON, str(ROOT / "deploy/healthcheck.py")], env=env, timeout=20, capture_output=True
        )
    finally:
        server.shutdown()
    assert with_probe.returncode == 0 and seen == ["/health"]
    assert without.returncode == 1


def test_the_one_machine_runner_serves_websockets_with_the_production_flags(settings):
    from coinlink.management.commands.serve import uvicorn_options

    unit = (ROOT / "deploy/systemd/coinlink-ws.service").read_text()
    production = re.search(r"^ExecStart=(.*)$", unit, re.MULTILINE).group(1).split()
    ws_flags = {flag: production[i + 1] for i, flag in enumerate(production) if flag.startswith("--ws")}
    settings.WS_MAX_FRAME_BYTES = 65536  # the default, which the unit spells out
    options = uvicorn_options(host="127.0.0.1", port=8000)
    # The close codes and frame limit proven against `manage.py serve` hold in production only if both
    # run the same WebSocket implementation with the same limits.
    served = {
        "--ws": options["ws"],
        "--ws-per-message-deflate": str(options["ws_per_message_deflate"]).lower(),
        "--ws-max-size": str(options["ws_max_size"]),
        "--ws-ping-interval": str(options["ws_ping_interval"]),
        "--ws-ping-timeout": str(options["ws_ping_timeout"]),
    }
    assert served == ws_flags
    assert options["proxy_headers"] is False  # nothing is in front of it: a forwarded address is a lie


def test_beat_keeps_its_schedule_file_in_a_state_directory_in_compose_and_systemd(compose):
    unit = (ROOT / "deploy/systemd/coinlink-beat.service").read_text()
    state_dir = re.search(r"^StateDirectory=(\S+)$", unit, re.M).group(1)
    assert f"--schedule /var/lib/{state_dir}/celerybeat-schedule" in unit
    entrypoint = (ROOT / "deploy/docker-entrypoint.sh").read_text()
    assert '--schedule "${CELERY_BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}"' in entrypoint
    watched = compose["services"]["beat"]["healthcheck"]["test"][1]
    assert "/tmp/celerybeat-schedule*" in watched  # noqa: S108 - the file the entrypoint writes
