"""coinlink.db.prepared: a hot query's SQL written by the ORM once, then run with each call's values."""

import threading
import uuid
from functools import partial

import pytest
from django.db import OperationalError, connection, transaction
from django.db.models import QuerySet
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from accounts.selectors import user_row_lock
from coinlink.db.prepared import PreparedInstance, PreparedList, PreparedRows, PreparedScalar
from notifications.models import Alert, Notification
from notifications.selectors import alert_row_lock
from tests.notifications.factories import NotificationFactory

pytestmark = pytest.mark.django_db


def unread(user_id):
    return Notification.objects.filter(user_id=user_id, is_read=False)


def test_it_answers_what_the_orm_answers_for_every_user_and_every_state(owner, other_user):
    count = PreparedScalar(unread, QuerySet.count)
    NotificationFactory.create_batch(3, user=owner)
    NotificationFactory(user=owner, is_read=True)
    NotificationFactory(user=other_user)

    assert count(user_id=owner.pk) == unread(owner.pk).count() == 3
    assert count(user_id=other_user.pk) == 1
    Notification.objects.filter(user=owner).update(is_read=True)
    assert count(user_id=owner.pk) == 0  # the SQL is kept, never the answer


def test_it_sends_the_orms_own_sql_once_per_call(owner):
    count = PreparedScalar(unread, QuerySet.count)
    with CaptureQueriesContext(connection) as orm:
        unread(owner.pk).count()
    count(user_id=owner.pk)  # the first call compiles

    with CaptureQueriesContext(connection) as prepared:
        count(user_id=owner.pk)

    assert [q["sql"] for q in prepared.captured_queries] == [q["sql"] for q in orm.captured_queries]


def test_writing_the_sql_is_not_a_query(owner):
    count = PreparedScalar(unread, QuerySet.count)

    with CaptureQueriesContext(connection) as first:
        count(user_id=owner.pk)

    assert len(first.captured_queries) == 1


def test_it_refuses_a_query_that_does_not_use_its_value(owner):
    count = PreparedScalar(lambda user_id: Notification.objects.all(), QuerySet.count)

    with pytest.raises(ValueError, match="appears 0 times"):
        count(user_id=owner.pk)


def newest_first(user_id):
    return Notification.objects.filter(user_id=user_id).order_by("-created_at", "-id").values_list("id", "data")


@pytest.mark.parametrize(("offset", "limit"), [(0, 1), (0, 4), (1, 2), (3, 5), (4, 3), (9, 2)])
def test_prepared_rows_are_the_orms_rows_for_every_slice(owner, other_user, offset, limit):
    rows = PreparedRows(newest_first)
    NotificationFactory.create_batch(4, user=owner, data={"symbol": "BTC", "n": [1, 2.5]})
    NotificationFactory(user=other_user)

    assert rows(user_id=owner.pk, limit=limit, offset=offset) == list(newest_first(owner.pk)[offset : offset + limit])


def test_prepared_rows_pass_through_the_orms_converters(owner):
    NotificationFactory(user=owner, data={"nested": {"a": None}})

    ((_, data),) = PreparedRows(newest_first)(user_id=owner.pk, limit=1, offset=0)

    assert data == {"nested": {"a": None}}  # the JSONField's decoding, not the column's text


def test_prepared_rows_send_one_statement_for_every_page(owner):
    rows = PreparedRows(newest_first)
    rows(user_id=owner.pk, limit=20, offset=0)
    sent: list[str] = []

    def record(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        rows(user_id=owner.pk, limit=20, offset=0)
        rows(user_id=owner.pk, limit=7, offset=14)

    assert len(sent) == 2 and sent[0] == sent[1]  # LIMIT and OFFSET are parameters


@pytest.mark.parametrize(
    "build",
    [
        lambda user_id: Notification.objects.filter(user_id=user_id)[:5],
        lambda user_id: Notification.objects.select_for_update().filter(user_id=user_id),
    ],
    ids=["sliced", "locking"],
)
def test_prepared_rows_refuse_a_sliced_or_locking_query(owner, build):
    with pytest.raises(ValueError, match="slice per call and cannot lock"):
        PreparedRows(build)(user_id=owner.pk, limit=1, offset=0)


def test_a_prepared_instance_is_the_instance_the_orm_builds(owner, other_user):
    find = PreparedInstance(Notification, lambda user_id, pk: Notification.objects.filter(user_id=user_id, pk=pk))
    note = NotificationFactory(user=owner, data={"symbol": "BTC"}, is_read=True)

    found = find(user_id=owner.pk, pk=note.pk)
    orm = Notification.objects.get(pk=note.pk)

    assert type(found) is Notification
    assert {k: v for k, v in vars(found).items() if k != "_state"} == {
        k: v for k, v in vars(orm).items() if k != "_state"
    }
    assert (found._state.adding, found._state.db) == (orm._state.adding, orm._state.db) == (False, "default")
    assert find(user_id=other_user.pk, pk=note.pk) is None  # someone else's is not found
    assert find(user_id=owner.pk, pk=uuid.uuid4()) is None


def test_a_prepared_list_answers_the_paginator_with_its_two_statements(owner):
    NotificationFactory.create_batch(5, user=owner)
    notes = PreparedList(
        rows=partial(PreparedRows(newest_first), user_id=owner.pk),
        count=lambda: 42,
        make=lambda row: row[0],
    )

    assert notes.count() == 42
    assert notes[1:3] == [row[0] for row in newest_first(owner.pk)[1:3]]
    assert notes[4:10] == [newest_first(owner.pk)[4][0]]
    with pytest.raises(TypeError):
        notes[2]


def _user_lock(user):
    return lambda: user_row_lock(user_id=user.pk)


def _alert_lock(user):
    alert = Alert.objects.create(user=user, symbol="BTC", condition="above", target_value=1)
    return lambda: alert_row_lock(alert_id=alert.pk)


def _row_taken_elsewhere(user) -> bool:
    """Whether another connection finds a row of `user` (or one of their alerts) locked."""
    outcome: list = []

    def probe():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '200ms'")
                cursor.execute("SELECT 1 FROM accounts_user WHERE id = %s FOR UPDATE", [user.pk])
                cursor.execute("SELECT 1 FROM notifications_alert WHERE user_id = %s FOR UPDATE", [user.pk])
            outcome.append(False)
        except OperationalError:
            outcome.append(True)
        finally:
            connection.close()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(10)
    return outcome == [True]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("lock_of", [_user_lock, _alert_lock], ids=["user_row_lock", "alert_row_lock"])
def test_a_prepared_lock_holds_its_row_until_the_transaction_ends_and_runs_only_inside_one(owner, lock_of):
    lock = lock_of(owner)
    with transaction.atomic():
        lock()
        assert _row_taken_elsewhere(owner)
    assert not _row_taken_elsewhere(owner)

    with pytest.raises(TransactionManagementError):  # as the ORM's select_for_update() refuses
        lock()


def test_locking_an_unknown_user_is_does_not_exist_as_before(owner):
    user_row_lock(user_id=owner.pk)  # compiled

    with pytest.raises(User.DoesNotExist):
        user_row_lock(user_id=uuid.uuid4())
