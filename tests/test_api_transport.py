"""The API transport over real HTTP on loopback: retries, Retry-After, timeouts, bad replies,
refused parameters, concurrency."""

from __future__ import annotations

import time

import pytest
from loopback_api import Behaviour, LoopbackAPI

from lm_eval_patches.models.api_transport import (
    Client,
    RetryPolicy,
    parse_retry_after,
    rejected_param,
)


def payload(i: int, **extra) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": f"q{i}"}], **extra}


def run(server: LoopbackAPI, payloads: list[dict], concurrency: int = 4, **policy) -> tuple:
    options = {"attempts": 4, "backoff_s": 0.01, "max_wait_s": 5.0, "timeout_s": 5.0}
    client = Client(server.url, {}, concurrency, RetryPolicy(**{**options, **policy}))
    return client, client.post_all([lambda p=p: p for p in payloads])


def test_transient_failures_are_retried_until_answered():
    with LoopbackAPI(Behaviour(error_rate=0.3, fail_times=2)) as server:
        _, outcomes = run(server, [payload(i) for i in range(30)])
    assert all(o.reason is None for o in outcomes)
    assert server.statuses[500] > 0 and server.statuses[200] == 30
    retried = [o for o in outcomes if o.attempts == 3]
    assert len(retried) == server.statuses[500] // 2


def test_retry_after_is_honoured():
    behaviour = Behaviour(error_rate=1.0, fail_times=1, error_status=429, retry_after="1")
    with LoopbackAPI(behaviour) as server:
        start = time.monotonic()
        _, (outcome,) = run(server, [payload(0)])
    assert outcome.reason is None and outcome.attempts == 2
    gap = server.times[1] - server.times[0]
    assert 0.95 <= gap < 3.0  # waited what the server asked, not the 0.01 s backoff
    assert time.monotonic() - start >= 0.95


def test_timeout_really_applies_and_fails_the_sample():
    with LoopbackAPI(Behaviour(latency_s=3.0)) as server:
        start = time.monotonic()
        _, (outcome,) = run(server, [payload(0)], attempts=2, timeout_s=0.3)
        elapsed = time.monotonic() - start  # before the server finishes its slow replies
    assert outcome.reason == "no complete reply within the timeout of 0.3 s after 2 attempt(s)"
    assert elapsed < 2.5


def test_malformed_bodies_are_retried():
    with LoopbackAPI(Behaviour(malformed_rate=1.0)) as server:
        _, outcomes = run(server, [payload(i) for i in range(3)])
    assert [o.attempts for o in outcomes] == [2, 2, 2]
    assert all(o.response["choices"][0]["message"]["content"] == "A" for o in outcomes)


def test_permanent_failure_gives_reason_without_raising():
    with LoopbackAPI(Behaviour(always_status=503)) as server:
        _, outcomes = run(server, [payload(i) for i in range(3)], attempts=2)
    assert all(o.reason.startswith("HTTP 503: ") for o in outcomes)
    assert all(o.reason.endswith("after 2 attempt(s)") for o in outcomes)
    with LoopbackAPI(Behaviour(always_status=401)) as server:
        _, (outcome,) = run(server, [payload(0)])
    assert outcome.attempts == 1 and outcome.reason.startswith("HTTP 401")  # never retried


def test_refused_parameter_is_dropped_for_the_run():
    body = payload(0, max_tokens=5, max_completion_tokens=5, stop=["\n\n"])
    behaviour = Behaviour(reject_params=("max_tokens", "stop"))
    with LoopbackAPI(behaviour) as server:
        client, outcomes = run(
            server, [body, payload(1, **{k: body[k] for k in body if "max" in k or k == "stop"})]
        )
    assert all(o.reason is None for o in outcomes)
    assert client.dropped == {"max_tokens", "stop"}
    assert server.received[-1].keys() >= {"max_completion_tokens"}
    assert "max_tokens" not in server.received[-1] and "stop" not in server.received[-1]


def test_the_only_max_token_field_is_never_dropped():
    text = "Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead."
    assert (
        rejected_param(text, {"max_tokens": 1, "max_completion_tokens": 1}, set()) == "max_tokens"
    )
    assert rejected_param(text, {"max_tokens": 1}, set()) is None
    assert rejected_param("bad 'temperature' value", {"temperature": 0}, set()) == "temperature"


def test_retry_after_forms():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_bounds_requests_in_flight(concurrency):
    with LoopbackAPI(Behaviour(latency_s=0.1)) as server:
        _, outcomes = run(server, [payload(i) for i in range(9)], concurrency=concurrency)
    assert all(o.reason is None for o in outcomes)
    assert server.max_in_flight == concurrency
