"""A job's result within WASMQ_MAX_RESULT_BYTES (worker/queue/fitting.py): measured as the JSON Celery stores,
entries kept in order while they fit, the rest a typed error each, nothing dropped without a word."""

from __future__ import annotations

import json

import pytest

from worker.bounds import encoded_size
from worker.config import Settings
from worker.errors import InvalidOutput
from worker.queue.fitting import RESULT_OVERHEAD, check_output, fit_chunk, fit_lean, result_budget

SETTINGS = Settings(max_result_bytes=256 * 1024)
BUDGET = result_budget(SETTINGS)
USAGE = {"fuel": 123456, "wall_ms": 0.25, "memory_bytes": 65536}


def ok(output: str) -> dict[str, object]:
    return {"ok": True, "output": output, "usage": USAGE}


def test_small_chunks_are_left_alone_without_being_measured() -> None:
    entries = [ok(f"Hello World, {i}!") for i in range(500)]
    assert fit_chunk(entries, SETTINGS) is entries


def test_control_characters_count_six_fold() -> None:
    """50 KB of control characters is 300 KB of JSON: over a 256 KB limit on its own."""
    with pytest.raises(InvalidOutput, match="above the result limit"):
        check_output("\x01" * 50_000, SETTINGS)
    check_output("a" * 200_000, SETTINGS)  # plain text: 200 KB of JSON, it fits
    check_output("\x01" * 20_000, SETTINGS)


def test_what_does_not_fit_becomes_an_error_per_item_and_the_stored_chunk_fits() -> None:
    entries = [ok("\x01" * 10_000) for _ in range(10)]  # 60 KB of JSON each, 600 KB in all
    fitted = fit_chunk(entries, SETTINGS)
    assert len(fitted) == 10
    kept = [e for e in fitted if e["ok"]]
    resend = [e for e in fitted if not e["ok"]]
    assert kept == entries[: len(kept)] and 0 < len(kept) < 10  # kept in order, while they fit
    assert {e["error"]["type"] for e in resend} == {"ResultTooLarge"}  # type: ignore[index]
    assert all(e["error"]["retryable"] and e["error"]["encoded_bytes"] > 60_000 for e in resend)  # type: ignore[index]
    assert encoded_size(fitted) <= BUDGET
    stored = {"status": "SUCCESS", "result": {"results": fitted, "module": "m", "function": "f"}, "traceback": None}
    assert len(json.dumps(stored)) < SETTINGS.max_result_bytes


def test_an_output_too_large_for_any_chunk_is_invalid_output() -> None:
    entries = [ok("small"), ok("\x01" * 60_000), ok("also small")]
    fitted = fit_chunk(entries, SETTINGS)
    assert fitted[0] == entries[0] and fitted[2] == entries[2]
    error = fitted[1]["error"]
    assert error["type"] == "InvalidOutput" and not error["retryable"]  # type: ignore[index]
    assert "above the result limit" in error["message"]  # type: ignore[index]


def test_later_small_entries_still_fit_after_a_large_one_did_not() -> None:
    entries = [ok("a" * 100_000), ok("b" * 100_000), ok("c" * 100_000), ok("tiny")]
    fitted = fit_chunk(entries, SETTINGS)
    assert [e["ok"] for e in fitted] == [True, True, False, True]


def test_error_entries_are_measured_too() -> None:
    long_error = {"ok": False, "error": {"type": "ModuleTrap", "message": "m", "retryable": False, "x": "y" * 150_000}}
    fitted = fit_chunk([long_error, long_error], SETTINGS)
    assert encoded_size(fitted) <= BUDGET
    assert fitted[1]["error"]["type"] == "InvalidOutput"  # type: ignore[index]


def test_the_budget_leaves_room_for_celerys_result_meta() -> None:
    assert BUDGET == SETTINGS.max_result_bytes - RESULT_OVERHEAD


def lean(outputs: list[str | None], errors: list[list[object]] | None = None) -> dict[str, object]:
    return {"outputs": outputs, "errors": errors or [], "usage": {"fuel": 1, "wall_ms": 1.0, "memory_bytes": 0}}


def test_a_small_lean_chunk_is_left_alone() -> None:
    body = lean([f"Hello World, {i}!" for i in range(500)])
    assert fit_lean(body, SETTINGS) is body


def test_lean_outputs_that_do_not_fit_become_errors_in_place_and_the_result_fits() -> None:
    outputs: list[str | None] = ["\x01" * 10_000 for _ in range(10)]  # 60 KB of JSON each
    fitted = fit_lean(lean([*outputs, None], [[10, {"type": "ModuleTrap", "message": "x", "retryable": False}]]),
                      SETTINGS)  # fmt: skip
    kept = [o for o in fitted["outputs"] if o is not None]  # type: ignore[attr-defined]
    assert kept == outputs[: len(kept)] and 0 < len(kept) < 10
    errors = dict(fitted["errors"])  # type: ignore[call-overload]
    assert errors[10]["type"] == "ModuleTrap"  # the error it had stays, in order
    assert sorted(errors) == list(range(len(kept), 11))
    assert {errors[i]["type"] for i in range(len(kept), 10)} == {"ResultTooLarge"}
    assert encoded_size(fitted) <= BUDGET
    one = fit_lean(lean(["\x01" * 50_000]), SETTINGS)  # 300 KB alone: can fit in no chunk
    assert one["outputs"] == [None] and one["errors"][0][1]["type"] == "InvalidOutput"  # type: ignore[index]
