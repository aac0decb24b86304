"""Dead-letter entries (worker/queue/dead_letters.py): whole arguments when small, a short copy otherwise,
and a malformed message's entry never replaces another's."""

from __future__ import annotations

import json

import fakeredis

from tests.support.messages import nested
from worker.queue.dead_letters import MAX_PAYLOAD_CHARS, DeadLetter, DeadLetters, bounded_payload


def test_small_arguments_are_kept_whole_and_requeueable() -> None:
    args = ["greeting", "greet", ["a", "b"], {"fuel": 10}]
    kept, cut = bounded_payload(args)
    assert kept == args and not cut


def test_a_100_mb_input_is_not_kept() -> None:
    kept, cut = bounded_payload({"args": ["greeting", "greet", "x" * 100_000_000, None], "kwargs": {}})
    assert cut
    assert len(json.dumps(kept)) < 4 * 1024
    entry = DeadLetter(id="j", reason="failed", error={}, task="wasmq.call", args=kept["args"], truncated=cut)
    assert not entry.requeueable and len(entry.to_json()) < 8 * 1024


def test_deep_or_wide_arguments_are_cut_without_recursion() -> None:
    for value in (nested(100_000), list(range(100_000)), {str(i): i for i in range(100_000)}):
        kept, cut = bounded_payload(value)
        assert cut and len(json.dumps(kept)) < MAX_PAYLOAD_CHARS
        DeadLetter(id="j", reason="failed", error={}, args=[kept]).to_json()


def test_a_malformed_entry_under_a_taken_id_gets_an_id_of_its_own() -> None:
    dead = DeadLetters(fakeredis.FakeRedis(), "q")
    dead.record(DeadLetter(id="job-1", reason="failed", error={"type": "FuelExhausted"}))
    other = dead.record(DeadLetter(id="job-1", reason="malformed", error={"type": "MalformedMessage"}), replace=False)
    assert other.startswith("job-1-") and dead.size() == 2
    first = dead.get("job-1")
    assert first is not None and first.reason == "failed"
    again = dead.record(DeadLetter(id="job-2", reason="malformed", error={}), replace=False)
    assert again == "job-2"
    assert dead.record(DeadLetter(id="job-1", reason="failed", error={"type": "WorkerLost"})) == "job-1"
    replaced = dead.get("job-1")
    assert replaced is not None and replaced.error == {"type": "WorkerLost"}  # a job's own entry is replaced
