"""Exactly once under concurrency: real threads, each with its own PostgreSQL connection."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from notifications import evaluation
from notifications.models import Alert, AlertTrigger, Notification
from tests.coinlink.procs import wait_until
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CYCLE = {
    "quote": "usd",
    "prices": [
        {"symbol": "BTC", "price": "105", "change_percent_24h": "6"},
        {"symbol": "ETH", "price": "95", "change_percent_24h": "-6"},
    ],
    "previous_prices": {"BTC": "99", "ETH": "101"},
}


def run_together(target, workers: int) -> list:
    """Start `workers` threads at one barrier; return what each returned (or raised)."""
    barrier = threading.Barrier(workers)
    results: list = [None] * workers

    def work(i):
        try:
            barrier.wait()
            results[i] = target()
        except Exception as exc:  # surfaced by the assertion below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def make_alerts(users) -> int:
    rows = []
    for user in users:
        for condition, symbol, target in [
            ("above", "BTC", "100"),
            ("crosses_above", "BTC", "100"),
            ("change_pct_24h_above", "BTC", "5"),
            ("below", "ETH", "100"),
            ("crosses_below", "ETH", "100"),
            ("change_pct_24h_below", "ETH", "-5"),
        ]:
            for repeat in (False, True):
                rows.append(
                    Alert(user=user, symbol=symbol, condition=condition, target_value=Decimal(target), repeat=repeat)
                )
    Alert.objects.bulk_create(rows)
    return len(rows)


def test_it_fires_each_alert_once_when_several_workers_evaluate_the_same_cycle():
    users = [UserFactory() for _ in range(10)]
    total = make_alerts(users)

    results = run_together(lambda: evaluation.alerts_evaluate(**CYCLE), workers=4)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == total
    assert AlertTrigger.objects.count() == total
    assert Notification.objects.filter(type="price_alert").count() == total
    assert set(Alert.objects.values_list("trigger_count", flat=True)) == {1}


def test_it_fires_each_alert_once_when_cycles_race_one_after_another():
    users = [UserFactory() for _ in range(3)]
    total = make_alerts(users)

    results = run_together(lambda: sum(evaluation.alerts_evaluate(**CYCLE) for _ in range(5)), workers=3)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == total
    assert AlertTrigger.objects.count() == total


def _delete_the_alert(alert) -> None:
    from notifications import services

    services.alert_delete(alert=Alert.objects.get(pk=alert.pk))


def _delete_its_user(alert) -> None:  # what staff do in the admin; the alert goes with the user
    alert.user.delete()


@pytest.mark.parametrize("deleter", [_delete_the_alert, _delete_its_user], ids=["the alert", "its user"])
def test_deleting_an_alert_while_a_worker_fires_it_deletes_the_alert_and_its_new_trigger(deleter):
    """A delete that lands while an evaluator holds the alert (trigger inserted, not yet committed)
    must wait for that commit and cascade to the new trigger, not fail the foreign key at COMMIT."""
    user = UserFactory()
    alert = Alert.objects.create(user=user, symbol="BTC", condition="above", target_value=Decimal("100"))
    fired, release = threading.Event(), threading.Event()
    real_create = evaluation.notifications_create

    def create_then_hold(**kwargs):  # the evaluator's last step before COMMIT
        result = real_create(**kwargs)
        fired.set()
        release.wait(10)
        return result

    outcome: dict = {}

    def evaluate():
        try:
            outcome["fired"] = evaluation.alerts_evaluate(**CYCLE)
        finally:
            connection.close()

    def delete():
        try:
            deleter(alert)
            outcome["deleted"] = True
        except Exception as exc:
            outcome["deleted"] = exc
        finally:
            connection.close()

    evaluation.notifications_create = create_then_hold
    try:
        evaluator = threading.Thread(target=evaluate)
        evaluator.start()
        assert fired.wait(10)
        remover = threading.Thread(target=delete)
        remover.start()
        wait_until(_a_backend_waits_on_a_lock, timeout=10, interval=0.02)
        release.set()
        evaluator.join(10)
        remover.join(10)
    finally:
        release.set()
        evaluation.notifications_create = real_create

    assert outcome == {"fired": 1, "deleted": True}
    assert not Alert.objects.filter(pk=alert.pk).exists()
    assert not AlertTrigger.objects.filter(alert_id=alert.pk).exists()
    if deleter is _delete_the_alert:
        assert Notification.objects.filter(user=user, type="price_alert").count() == 1  # the user was told


def _a_backend_waits_on_a_lock() -> bool:
    """Some backend of this database waits on a row lock (the delete behind the evaluator)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0
