"""coinlink.db.prepared: a hot query's SQL written by the ORM once, then run with each call's values."""

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext

from coinlink.db.prepared import PreparedScalar, with_prepared_count
from notifications.models import Notification
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


def test_a_queryset_with_a_prepared_count_counts_with_it_and_its_clones_with_the_orm(owner):
    NotificationFactory.create_batch(3, user=owner)
    NotificationFactory(user=owner, is_read=True)
    notes = with_prepared_count(Notification.objects.filter(user=owner), lambda: 42)

    assert notes.count() == 42  # the prepared statement answers for this very query
    assert notes.filter(is_read=False).count() == 3  # another query: the ORM counts it
    assert notes[:2].count() == 2
    assert len(notes) == 4 and notes.count() == 4  # once fetched, Django counts the rows it holds
