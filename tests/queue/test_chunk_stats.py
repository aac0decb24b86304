"""A chunk's stats from its lean result are computed per group of items, not per item: the recorder calls and
the log line must be what the item-by-item computation gives, whatever the errors and usages."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from structlog.testing import capture_logs

from worker.queue import job_signals as jobs

FIELDS = {"job_id": "j", "task": "call_many"}


class Calls:
    """A recorder that keeps every `job` call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def job(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((*args, tuple(sorted(kwargs.items()))))


def per_item(retval: dict[str, Any], elapsed: float | None) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
    """The item-by-item computation: one row per item, then one recorder call per distinct row."""
    outputs, errors = retval["outputs"], retval["errors"]
    failed = {p[0]: p[1] for p in errors if isinstance(p, list) and len(p) == 2 and isinstance(p[0], int)}
    _, fuel = jobs._usage(retval)
    share = fuel // max(1, len(outputs) - len(failed)) if fuel is not None else None
    rows = [
        (jobs._error_type(failed[i]), *jobs._usage(failed[i])) if i in failed else (jobs.SUCCEEDED, None, share)
        for i in range(len(outputs))
    ]
    rec = Calls()
    with capture_logs() as logs:
        if not rows:
            jobs.log.info("job finished", outcome=jobs.SUCCEEDED, outcomes={}, fuel=0, **FIELDS)
            return rec.calls, logs
        weights = [w or 0.0 for _, w, _ in rows]
        total = sum(weights)
        groups: Counter[tuple[Any, ...]] = Counter()
        for (outcome, _, f), weight in zip(rows, weights, strict=True):
            if elapsed is None:
                duration = None
            elif total > 0:
                duration = elapsed * weight / total
            else:
                duration = elapsed / len(rows)
            groups[(outcome, duration, f)] += 1
        for (outcome, duration, f), n in groups.items():
            rec.job("q", "m", "f", outcome, duration_s=duration, fuel=f, n=n)
        outcomes = Counter(outcome for outcome, _, _ in rows)
        overall = next(iter(outcomes)) if len(outcomes) == 1 else "mixed"
        level = jobs.log.info if overall == jobs.SUCCEEDED else jobs.log.warning
        fuel_used = sum(f for _, _, f in rows if f is not None)
        level("job finished", outcome=overall, outcomes=dict(outcomes), fuel=fuel_used, **FIELDS)
    return rec.calls, logs


def grouped(retval: dict[str, Any], elapsed: float | None) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
    rec = Calls()
    rows = jobs._chunk_rows(retval)
    assert rows is not None
    with capture_logs() as logs:
        jobs._chunk(rec, "q", "m", "f", rows=rows, elapsed=elapsed, fields=dict(FIELDS))  # type: ignore[arg-type]
    return rec.calls, logs


def error(kind: str, wall: Any = None, fuel: Any = None) -> dict[str, Any]:
    usage = {k: v for k, v in (("wall_ms", wall), ("fuel", fuel)) if v is not None}
    return {"type": kind, "message": "m", **({"usage": usage} if usage else {})}


def lean(count: int, errors: list[Any], fuel: Any = 20_000) -> dict[str, Any]:
    failed = {p[0] for p in errors if isinstance(p, list) and len(p) == 2 and isinstance(p[0], int)}
    outputs = [None if i in failed else f"out {i}" for i in range(count)]
    return {"outputs": outputs, "errors": errors, "usage": {"fuel": fuel, "wall_ms": 3.5}, "pid": 1}


CASES = {
    "no errors": lean(2000, []),
    "empty": lean(0, []),
    "errors first, inside, next to each other and last": lean(
        2000,
        [
            [0, error("InvalidOutput", 0.5, 7)],
            [5, error("DeadlineExceeded", 98.0, 3)],
            [6, error("DeadlineExceeded", 98.0, 3)],
            [7, error("InvalidInput")],
            [1999, error("FuelExhausted", 1.25, 9)],
        ],
    ),
    "every item failed": lean(3, [[0, error("InvalidInput")], [1, error("InvalidInput")], [2, error("X", 2.0)]]),
    "no wall time anywhere": lean(10, [[3, error("InvalidInput", fuel=4)]]),
    "junk pairs, unordered, repeated and out of range": lean(
        8,
        [
            [6, error("A", 1.0)],
            [2, error("B")],
            "junk",
            [2, error("C", 0.25)],
            [-1, error("D")],
            [9, error("E")],
            [True, error("F", 4.0)],
            [3, "not a dict"],
            [4],
        ],
    ),
    "negative and zero weights": lean(5, [[1, error("A", -2.0)], [2, error("B", 0.0)]]),
    "no chunk fuel": lean(5, [[1, error("A", 1.0, 2)]], fuel=None),
}


@pytest.mark.parametrize("elapsed", [0.25, None])
@pytest.mark.parametrize("case", list(CASES))
def test_grouped_stats_are_the_per_item_stats(case: str, elapsed: float | None) -> None:
    retval = CASES[case]
    assert grouped(retval, elapsed) == per_item(retval, elapsed)


def test_the_lean_rows_are_one_entry_per_error_and_per_run_of_successes() -> None:
    rows = jobs._chunk_rows(lean(2000, [[5, error("A", 1.0)], [6, error("B")]]))
    assert rows is not None
    assert [n for _, n in rows] == [5, 1, 1, 1993]
