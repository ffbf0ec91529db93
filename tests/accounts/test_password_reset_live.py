"""The reset limits through a real gunicorn with two workers: counted in the shared cache, per address."""

from __future__ import annotations

import json

import pytest

from tests.coinlink.procs import gunicorn_on_test_database, http_fetch

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gunicorn_on_test_database(WEB_CONCURRENCY="2") as port:
        yield port


def ask_reset(port: int, email) -> tuple[int, dict, dict]:
    status, headers, body = http_fetch(
        f"http://127.0.0.1:{port}/api/v2/auth/password/reset",
        {"Content-Type": "application/json"},
        data=json.dumps({"email": email}).encode(),
    )
    return status, headers, json.loads(body)


def test_the_fourth_request_for_an_address_is_refused_whichever_worker_answers(server, owner):
    answers = [ask_reset(server, spelling) for spelling in ("owner@example.com", "OWNER@example.com ") * 2]

    assert [status for status, _, _ in answers] == [202, 202, 202, 429]
    assert answers[0][2]["detail"] == answers[1][2]["detail"]
    assert int(answers[3][1]["retry-after"]) > 0
    assert answers[3][2]["code"] == "rate_limited"


def test_an_unknown_address_answers_exactly_like_a_known_one(server, owner):
    known, unknown = ask_reset(server, owner.email), ask_reset(server, "nobody@example.com")

    assert known[0] == unknown[0] == 202
    assert known[2] == unknown[2]


def test_wrong_types_are_a_400_in_the_contract_shape(server):
    status, _, body = ask_reset(server, ["owner@example.com"])

    assert status == 400
    assert set(body) == {"detail", "code", "errors", "trace_id"}
