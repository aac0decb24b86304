"""The retry policy, declared in one place.

Retryable: a lost worker process (Celery re-sends the job, see `retry_on_worker_lost` in tasks.py), broker or
backend connection errors, and `DeadlineExceeded` (wall time depends on load) up to `deadline_retries`.
Deterministic module faults (`FuelExhausted`, `ModuleTrap`, `InvalidOutput`, `InvalidInput`,
`ModuleRejected`, `ModuleNotFound`, `MemoryLimitExceeded`) fail at once. Every retry waits an exponential
backoff with full jitter, and no job is retried more than its `max_retries` (the module's cap, or less if
the job asked for less).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..config import Settings
from ..connections import CONNECTION_ERRORS
from ..errors import DeadlineExceeded, WasmqError


@dataclass(frozen=True)
class RetryPolicy:
    deadline_retries: int = 2
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            deadline_retries=settings.deadline_retries,
            backoff_s=settings.retry_backoff_s,
            backoff_max_s=settings.retry_backoff_max_s,
        )

    def should_retry(self, exc: BaseException, *, retries_done: int, max_retries: int) -> bool:
        """Whether a job that failed with `exc` after `retries_done` retries runs again."""
        if retries_done >= max_retries:
            return False
        if isinstance(exc, DeadlineExceeded):
            return retries_done < self.deadline_retries
        if isinstance(exc, CONNECTION_ERRORS):
            return True
        return isinstance(exc, WasmqError) and exc.retryable

    def countdown(self, retries_done: int) -> float:
        """Seconds to wait before retry number `retries_done + 1`: full jitter over an exponential cap."""
        cap = min(self.backoff_max_s, self.backoff_s * (2**retries_done))
        return random.uniform(0.0, cap)
