#!/bin/sh
# The image's one entrypoint: `web`, `ws`, `worker`, `beat`, `stream`, `migrate`, or `manage <args>`.
# Anything else is executed as given (e.g. `sh` for debugging).
set -eu

# prometheus_client's multiprocess mode needs an empty directory per container start: files left
# by a previous run would be added to the new counters.
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  rm -rf "${PROMETHEUS_MULTIPROC_DIR:?}"
  mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi

role="${1:-web}"
if [ "$#" -gt 0 ]; then shift; fi
case "$role" in
  web)
    exec gunicorn coinlink.wsgi:application --config /app/deploy/gunicorn.conf.py "$@" ;;
  ws)
    # uvicorn with the flags measured in docs/realtime.md and docs/performance.md (sans-I/O websockets,
    # no per-message deflate, frames capped near WS_MAX_FRAME_BYTES, a transport ping every 60 s that
    # closes a dead peer within 90 s instead of uvicorn's every 20 s). WS_WORKERS processes, one per
    # core: each runs its own hub, so a price cycle is written to the sockets on all cores at once
    # (delivery p95 -14 to -41 % at 5,000-10,000 sockets on 2 cores; docs/performance.md, round 5), for
    # ~150 MB more per process. Not daphne: it cannot send the close codes 1008/1009 (docs/deployment.md).
    exec uvicorn coinlink.asgi:application --host 0.0.0.0 --port "${PORT:-8001}" --workers "${WS_WORKERS:-2}" \
      --ws websockets-sansio --ws-per-message-deflate false --ws-max-size "${WS_MAX_FRAME_BYTES:-65536}" \
      --ws-ping-interval 60 --ws-ping-timeout 30 --proxy-headers --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}" \
      --no-access-log --timeout-graceful-shutdown 20 "$@" ;;
  worker)
    exec celery -A coinlink worker --loglevel "${LOG_LEVEL:-info}" \
      --concurrency "${CELERY_CONCURRENCY:-2}" --without-gossip --without-mingle "$@" ;;
  beat)
    # Exactly ONE beat process may run per deployment, or every periodic job runs twice.
    exec celery -A coinlink beat --loglevel "${LOG_LEVEL:-info}" \
      --schedule "${CELERY_BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}" "$@" ;;
  stream)
    # The Coinbase feed streamer (asyncio, one process); the compose healthcheck reads the file.
    exec python manage.py markets_stream --health-file /tmp/markets-stream.alive "$@" ;;
  migrate)
    exec python manage.py migrate --noinput "$@" ;;
  manage)
    exec python manage.py "$@" ;;
  *)
    exec "$role" "$@" ;;
esac
