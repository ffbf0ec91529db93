"""Hot queries whose SQL the ORM writes once per process, then run with each call's values.

Building a QuerySet, resolving its filters and compiling it costs several times what sending the
finished SQL costs; for a query that runs on most signed-in requests (the unread count) that was
the largest single item of the request (docs/performance.md, "Web tier CPU per request"). The ORM
still writes the SQL, so it is exactly the SQL the QuerySet would send: the QuerySet is evaluated
once with placeholder values, the statement is captured before it reaches the database, and the
placeholders' positions among its parameters are remembered.

`PreparedScalar` answers one value (a count, a lock), `PreparedRows` tuples of a page,
`PreparedInstance` a model instance by primary key, and `PreparedList` gives Django's Paginator a
page and a count from two of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.models import Model, QuerySet
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
        self._compiled: dict[str, tuple[str, list, dict[str, tuple[int, Callable]]]] = {}
        self._locks = False

    def __call__(self, *, using: str = "default", **values: uuid.UUID) -> Any:
        sql, params, slots = self._compiled.get(using) or self._compile(using, sorted(values))
        if self._locks and connections[using].get_autocommit():
            # The ORM's own refusal: in autocommit the lock would end with the statement.
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        with connections[using].cursor() as cursor:
            cursor.execute(sql, _bind(params, slots, values))
            row = cursor.fetchone()
        return row[0] if row else None

    def _compile(self, using: str, names: list[str]) -> tuple[str, list, dict[str, tuple[int, Callable]]]:
        placeholders = {name: uuid.uuid4() for name in names}
        captured: list = []

        def capture(execute, sql, params, many, context):
            captured.append((sql, list(params or ())))
            raise _Captured

        connection = connections[using]
        logged = len(connection.queries_log)
        queryset = self.build(**placeholders).using(using)
        # As the ORM: a backend without row locks (SQLite) drops FOR UPDATE and with it the refusal.
        self._locks = bool(queryset.query.select_for_update) and connection.features.has_select_for_update
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
        self._compiled[using] = (sql, params, _slots(sql, params, placeholders))
        return self._compiled[using]


# How a backend passes a UUID parameter: PostgreSQL the UUID itself, or its text where the ORM
# casts; SQLite, which has no UUID type, the 32 hex digits its char(32) column stores.
_UUID_FORMS: dict[str, Callable[[uuid.UUID], Any]] = {
    "uuid": lambda value: value,
    "text": str,
    "hex": lambda value: value.hex,
}


def _slots(sql: str, params: list, placeholders: dict[str, uuid.UUID]) -> dict[str, tuple[int, Callable]]:
    """Where each placeholder sits among the parameters, and in which form the ORM passed it."""
    slots = {}
    for name, placeholder in placeholders.items():
        forms = [(as_form, as_form(placeholder)) for as_form in _UUID_FORMS.values()]
        found = [
            (index, as_form)
            for index, param in enumerate(params)
            for as_form, expected in forms
            if type(param) is type(expected) and param == expected
        ]
        if len(found) != 1:
            raise ValueError(f"{name} appears {len(found)} times among the parameters of {sql}")
        slots[name] = found[0]
    return slots


def _bind(params: list, slots: dict[str, tuple[int, Callable]], values: dict[str, uuid.UUID]) -> list:
    """The compiled parameters with each placeholder replaced by its value, in the ORM's form."""
    bound = list(params)
    for name, (index, as_form) in slots.items():
        bound[index] = as_form(values[name])
    return bound


class PreparedRows:
    """A query of rows (a `values_list()`), compiled once per database alias, returned as tuples.

    `build(**values)` returns the QuerySet, unsliced and without `select_for_update()`. The ORM writes
    the SELECT once; LIMIT and OFFSET, which it would write as literals, follow it as parameters, so
    one statement serves every page. Each column's value passes through the converters the ORM would
    apply (a JSONField's decoding...). Values must be UUIDs, as for `PreparedScalar`.
    """

    def __init__(self, build: Callable[..., QuerySet]):
        self.build = build
        self._compiled: dict[str, tuple[str, list, dict[str, tuple[int, Callable]], list]] = {}

    def __call__(self, *, limit: int, offset: int, using: str = "default", **values: uuid.UUID) -> list[tuple]:
        sql, params, slots, converters = self._compiled.get(using) or self._compile(using, sorted(values))
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(sql, [*_bind(params, slots, values), limit, offset])
            rows = cursor.fetchall()
        if not converters:
            return rows
        converted = []
        for row in rows:
            row = list(row)
            for position, functions, expression in converters:
                for function in functions:
                    row[position] = function(row[position], expression, connection)
            converted.append(tuple(row))
        return converted

    def _compile(self, using: str, names: list[str]) -> tuple[str, list, dict[str, tuple[int, Callable]], list]:
        placeholders = {name: uuid.uuid4() for name in names}
        query = self.build(**placeholders).using(using).query
        if query.is_sliced or query.select_for_update:
            raise ValueError("a prepared rows query takes its slice per call and cannot lock")
        compiler = query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        columns = compiler.get_converters([expression for expression, _, _ in compiler.select])
        converters = [(position, functions, expression) for position, (functions, expression) in columns.items()]
        self._compiled[using] = (
            f"{sql} LIMIT %s OFFSET %s",
            list(params),
            _slots(sql, list(params), placeholders),
            converters,
        )
        return self._compiled[using]


class PreparedInstance:
    """The model instance a query finds by its primary key (among other filters), or None; compiled once.

    The instance is built as the ORM builds one (`Model.from_db` over every concrete field), from a
    `PreparedRows` statement; `build(**values)` returns the QuerySet, which must match at most one row.
    """

    def __init__(self, model: type[Model], build: Callable[..., QuerySet]):
        self.model = model
        self.attnames = tuple(field.attname for field in model._meta.concrete_fields)
        self._rows = PreparedRows(lambda **values: build(**values).order_by().values_list(*self.attnames))

    def __call__(self, *, using: str = "default", **values: uuid.UUID) -> Any:
        rows = self._rows(limit=1, offset=0, using=using, **values)
        return self.model.from_db(using, self.attnames, rows[0]) if rows else None


class PreparedList:
    """What Django's Paginator asks of a list (`count()`, slices) answered by two prepared statements.

    `rows(limit=, offset=)` and `count()` must select and count the same rows; `make` turns a row
    tuple into what the page holds.
    """

    def __init__(self, *, rows: Callable[..., list[tuple]], count: Callable[[], int], make: Callable[[tuple], Any]):
        self._rows, self._count, self._make = rows, count, make

    def count(self) -> int:
        return self._count()

    def __getitem__(self, bounds: slice) -> list:
        if not isinstance(bounds, slice) or bounds.step is not None or (bounds.start or 0) < 0 or bounds.stop is None:
            raise TypeError("a prepared list is read in forward slices with an end")
        offset = bounds.start or 0
        make = self._make
        return [make(row) for row in self._rows(limit=max(0, bounds.stop - offset), offset=offset)]
