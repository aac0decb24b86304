"""The retry policy on its own: what is retried, how often, and how long each retry waits."""

from __future__ import annotations

import random

import pytest
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from worker.config import Settings
from worker.errors import (
    BrokerUnavailable,
    DeadlineExceeded,
    FuelExhausted,
    InvalidInput,
    InvalidOutput,
    MemoryLimitExceeded,
    ModuleNotFound,
    ModuleRejected,
    ModuleTrap,
    WasmqError,
    WorkerLost,
)
from worker.queue.retry import RetryPolicy

POLICY = RetryPolicy(deadline_retries=2, backoff_s=0.5, backoff_max_s=30.0)
DETERMINISTIC = [FuelExhausted, ModuleTrap, InvalidOutput, InvalidInput, ModuleRejected, ModuleNotFound,
                 MemoryLimitExceeded]  # fmt: skip


@pytest.mark.parametrize("cls", DETERMINISTIC, ids=lambda c: c.type)
def test_deterministic_module_faults_are_never_retried(cls: type[WasmqError]) -> None:
    assert not POLICY.should_retry(cls("boom"), retries_done=0, max_retries=10)


@pytest.mark.parametrize(
    "exc",
    [OperationalError("gone"), RedisConnectionError("gone"), RedisTimeoutError("slow"), BrokerUnavailable("down")],
    ids=lambda e: type(e).__name__,
)
def test_connection_errors_are_retried_up_to_max_retries(exc: BaseException) -> None:
    assert POLICY.should_retry(exc, retries_done=0, max_retries=3)
    assert POLICY.should_retry(exc, retries_done=2, max_retries=3)
    assert not POLICY.should_retry(exc, retries_done=3, max_retries=3)


def test_a_lost_worker_is_retryable_by_its_flag() -> None:
    assert POLICY.should_retry(WorkerLost("died"), retries_done=0, max_retries=1)
    assert not POLICY.should_retry(WorkerLost("died"), retries_done=1, max_retries=1)


def test_deadline_retries_are_capped_by_their_own_count_and_by_max_retries() -> None:
    late = DeadlineExceeded("late")
    assert [POLICY.should_retry(late, retries_done=n, max_retries=10) for n in range(4)] == [True, True, False, False]
    assert not POLICY.should_retry(late, retries_done=0, max_retries=0)  # a module that allows no retries


def test_other_exceptions_are_not_retried() -> None:
    assert not POLICY.should_retry(ValueError("bug"), retries_done=0, max_retries=10)


def test_countdown_is_full_jitter_under_an_exponential_cap() -> None:
    random.seed(7)
    for retries_done, cap in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 30.0)]:
        waits = [POLICY.countdown(retries_done) for _ in range(200)]
        assert all(0.0 <= w <= cap for w in waits)
        assert max(waits) > cap * 0.8  # the whole range is used, not just its start


def test_from_settings_takes_the_configured_values() -> None:
    settings = Settings(deadline_retries=5, retry_backoff_s=0.1, retry_backoff_max_s=2.0)
    assert RetryPolicy.from_settings(settings) == RetryPolicy(deadline_retries=5, backoff_s=0.1, backoff_max_s=2.0)
