# syntax=docker/dockerfile:1.7
# One image for every CoinLink process: web (gunicorn, HTTP API), ws (uvicorn, WebSockets),
# worker and beat (Celery), migrate (one-shot). See docs/deployment.md.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: compilers live here only ------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements/base.txt requirements/base.txt
RUN pip wheel --wheel-dir /wheels -r requirements/base.txt

# --- runtime: no build tools, non-root ------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    COINLINK_ENV=production \
    DJANGO_SETTINGS_MODULE=coinlink.settings \
    PROMETHEUS_MULTIPROC_DIR=/tmp/coinlink-metrics \
    PORT=8000
RUN groupadd --system --gid 10001 coinlink \
 && useradd --system --uid 10001 --gid coinlink --home-dir /app --no-create-home --shell /usr/sbin/nologin coinlink
COPY --from=builder /wheels /wheels
COPY requirements/base.txt /tmp/base.txt
RUN python -m venv /opt/venv \
 && pip install --no-index --find-links=/wheels -r /tmp/base.txt \
 && rm -rf /wheels /tmp/base.txt
WORKDIR /app
COPY --chown=root:root . /app
# collectstatic imports the production settings, which refuse to load without secrets and service
# URLs. Throwaway values exist only inside this one RUN step: nothing is baked into ENV or a layer.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
    JWT_SIGNING_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(48))')" \
    ALLOWED_HOSTS=build.invalid \
    DATABASE_URL=postgres://build@build.invalid:5432/build \
    REDIS_URL=redis://build.invalid:6379/0 \
    FRONTEND_URL=https://build.invalid \
    python manage.py collectstatic --noinput --verbosity 0 \
 && python -m compileall -q /app/coinlink /app/accounts /app/markets /app/notifications /app/realtime \
 && chmod 0755 /app/deploy/docker-entrypoint.sh
USER coinlink:coinlink
EXPOSE 8000 8001
# Liveness only: /health touches no dependency. Worker and beat override this in compose.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "/app/deploy/healthcheck.py"]
ENTRYPOINT ["/app/deploy/docker-entrypoint.sh"]
CMD ["web"]
