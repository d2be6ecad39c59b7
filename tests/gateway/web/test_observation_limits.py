"""The observer code's hourly limit and the resend of a stored observation, over real HTTP (uvicorn,
a real influxd): posts at the same moment store exactly RATE_PER_HOUR, a refused one takes none of
them, and an id stored already answers "already received" whatever its code's state is now."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import urllib3

from gateway.cli import main
from gateway.observations.store import RATE_PER_HOUR
from tests.gateway.web.test_observations import Field
from tests.gateway.web.test_observations import field as field


def test_posts_at_the_same_moment_store_exactly_the_hourly_limit(
    field: Field, capsys: pytest.CaptureFixture[str]
) -> None:
    code = field.code(capsys=capsys)
    cookie, token = field.form()
    for _ in range(3):  # refused: they take none of the hour's submissions
        assert field.post(field.submission(code, token, kind="<b>"), headers={"Cookie": cookie})[0] == 400
    burst = 2 * RATE_PER_HOUR
    field.http = urllib3.PoolManager(retries=False, maxsize=burst)
    subs = [field.submission(code, token) for _ in range(burst)]

    def post(sub: dict[str, Any]) -> int:
        return field.post(sub, headers={"Cookie": cookie})[0]

    with ThreadPoolExecutor(max_workers=burst) as pool:
        statuses = list(pool.map(post, subs))
    assert sorted(statuses) == [201] * RATE_PER_HOUR + [429] * RATE_PER_HOUR
    assert len(field.stored()) == RATE_PER_HOUR
    assert {o.id for o in field.stored()} == {
        s["id"] for s, st in zip(subs, statuses, strict=True) if st == 201
    }


def test_a_resend_of_a_stored_observation_is_received_whatever_its_code_is_now(
    field: Field, capsys: pytest.CaptureFixture[str]
) -> None:
    code = field.code(capsys=capsys)
    cookie, token = field.form()
    first = field.submission(code, token)
    assert field.post(first, headers={"Cookie": cookie})[0] == 201
    for _ in range(RATE_PER_HOUR - 1):
        assert field.post(field.submission(code, token), headers={"Cookie": cookie})[0] == 201
    # the code at its limit: a new one is refused, the resend (its reply was lost) is not
    assert field.post(field.submission(code, token), headers={"Cookie": cookie})[0] == 429
    resend = field.post(first, headers={"Cookie": cookie})
    assert resend[0] == 200 and (resend[1]["id"], resend[1]["state"]) == (first["id"], "already received")
    # revoked since: a new one is refused, the resend still answered as received
    assert main(["observers", "revoke", "--config", str(field.config), "--id", "1", "--by", "operator"]) == 0
    status, doc = field.post(field.submission(code, token), headers={"Cookie": cookie})
    assert status == 401 and "revoked" in doc["error"]
    assert field.post(first, headers={"Cookie": cookie})[:1] == (200,)
    # an unknown code cannot learn of another's observation without this form's token
    assert field.post({**first, "csrf": "x" * 32}, headers={"Cookie": cookie})[0] == 403
    assert len(field.stored()) == RATE_PER_HOUR
