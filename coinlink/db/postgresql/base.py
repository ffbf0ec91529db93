"""PostgreSQL backend: django-prometheus's query metrics, and a health check without a round trip.

With CONN_HEALTH_CHECKS, Django checks a persistent connection before the first query of every
request with `SELECT 1`: a round trip that, under load, was about an eighth of the web tier's CPU
(docs/performance.md, "Mixed workload"). An idle connection receives nothing from the server unless
the server is ending it (restart, `pg_terminate_backend`, `idle_session_timeout`, a pooler closing
it): it sends its error message and closes the socket, which makes the socket readable. So a
connection whose socket has nothing to read is usable, and one that does is replaced before the
request's first query, as `SELECT 1` failing would have done. (A configuration reload can also send
an idle connection a message; that connection is then replaced needlessly, which is harmless.)
"""

from __future__ import annotations

import select

from django_prometheus.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed or conn.broken:
            return False
        try:
            poller = select.poll()  # not select(): a WebSocket process's descriptors exceed FD_SETSIZE
            poller.register(conn.fileno(), select.POLLIN | select.POLLPRI)
            return not poller.poll(0)
        except (OSError, ValueError, self.Database.Error):
            return False
