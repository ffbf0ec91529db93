"""Hot queries whose SQL the ORM writes once per process, then run with each call's values.

Building a QuerySet, resolving its filters and compiling it costs several times what sending the
finished SQL costs; for a query that runs on most signed-in requests (the unread count) that was
the largest single item of the request (docs/performance.md, "Web tier CPU per request"). The ORM
still writes the SQL, so it is exactly the SQL the QuerySet would send: the QuerySet is evaluated
once with placeholder values, the statement is captured before it reaches the database, and the
placeholders' positions among its parameters are remembered.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.transaction import TransactionManagementError


class _Captured(Exception):
    pass


class PreparedScalar:
    """A query of one value in one row (`count()`, `aggregate()`...), compiled once per database alias.

    `build(**values)` returns the QuerySet; `evaluate(queryset)` runs it (e.g. `QuerySet.count`).
    Every value must be a UUID: a placeholder that appears once among the parameters, which a short
    or repeated integer or boolean might not. A locking query (`select_for_update()`) keeps the ORM's
    rule that it runs only inside a transaction.
    """

    def __init__(self, build: Callable[..., QuerySet], evaluate: Callable[[QuerySet], Any]):
        self.build = build
        self.evaluate = evaluate
        self._compiled: dict[str, tuple[str, list, dict[str, tuple[int, bool]]]] = {}
        self._locks = False

    def __call__(self, *, using: str = "default", **values: uuid.UUID) -> Any:
        sql, params, slots = self._compiled.get(using) or self._compile(using, sorted(values))
        if self._locks and connections[using].get_autocommit():
            # The ORM's own refusal: in autocommit the lock would end with the statement.
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = list(params)
        for name, (index, as_text) in slots.items():
            params[index] = str(values[name]) if as_text else values[name]
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return row[0] if row else None

    def _compile(self, using: str, names: list[str]) -> tuple[str, list, dict[str, tuple[int, bool]]]:
        placeholders = {name: uuid.uuid4() for name in names}
        captured: list = []

        def capture(execute, sql, params, many, context):
            captured.append((sql, list(params or ())))
            raise _Captured

        connection = connections[using]
        logged = len(connection.queries_log)
        queryset = self.build(**placeholders).using(using)
        self._locks = bool(queryset.query.select_for_update)
        with connection.execute_wrapper(capture):
            try:
                self.evaluate(queryset)
            except _Captured:
                pass
        while len(connection.queries_log) > logged:  # never sent: the debug log (DEBUG, tests) must not show it
            connection.queries_log.pop()
        if len(captured) != 1:
            raise ValueError(f"expected one statement, the ORM sent {len(captured)}")
        sql, params = captured[0]
        slots = {}
        for name, placeholder in placeholders.items():
            found = [i for i, param in enumerate(params) if param == placeholder or param == str(placeholder)]
            if len(found) != 1:
                raise ValueError(f"{name} appears {len(found)} times among the parameters of {sql}")
            slots[name] = (found[0], isinstance(params[found[0]], str))
        self._compiled[using] = (sql, params, slots)
        return self._compiled[using]


class _PreparedCountQuerySet(QuerySet):
    # Set on the one instance `with_prepared_count` returns; its clones (a filter, the paginator's
    # slice) are other queries and are counted by the ORM again.
    _prepared_count: Callable[[], Any] | None = None

    def count(self) -> int:
        if self._prepared_count is not None and self._result_cache is None:
            return self._prepared_count()
        return super().count()


def with_prepared_count(queryset: QuerySet, count: Callable[[], Any]) -> QuerySet:
    """`queryset`, whose count() (Django's Paginator asks it for a full page) is `count`, a prepared
    statement that must count the same rows."""
    counted = _PreparedCountQuerySet(model=queryset.model, query=queryset.query, using=queryset.db)
    counted._prepared_count = count
    return counted
