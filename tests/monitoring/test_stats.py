"""Redis-backed job counters (`wasmq status`): encoding, slots and window, percentiles (fakeredis)."""

from __future__ import annotations

from collections import Counter

import fakeredis
import pytest

from worker.keys import STATS_SLOT_S, STATS_WINDOW_S, stats_slot_key, stats_total_key
from worker.monitoring import stats

NOW = 1_800_000_000.0


def test_duration_buckets_are_ordered_and_about_nine_percent_wide() -> None:
    durations = [1e-7, 0.0001, 0.001, 0.0125, 0.05, 0.3, 1.0, 12.0, 300.0]
    buckets = [stats.duration_bucket(d) for d in durations]
    assert buckets == sorted(buckets) and buckets[0] == stats.MIN_BUCKET
    for d in durations[1:]:
        middle = stats.bucket_ms(stats.duration_bucket(d))
        assert abs(middle - d * 1000) / (d * 1000) < 0.05


def test_percentiles_from_buckets() -> None:
    c = stats.Counts()
    for ms, n in ((1.0, 50), (10.0, 45), (100.0, 5)):
        c.durations[stats.duration_bucket(ms / 1000)] += n
    assert c.percentile_ms(0.50) == pytest.approx(1.0, rel=0.05)
    assert c.percentile_ms(0.95) == pytest.approx(10.0, rel=0.05)
    assert c.percentile_ms(0.99) == pytest.approx(100.0, rel=0.05)
    assert stats.Counts().percentile_ms(0.5) is None


def test_push_then_read_totals_and_the_last_five_minutes() -> None:
    r = fakeredis.FakeRedis()
    now_slot = int(NOW // STATS_SLOT_S)
    old_slot = int((NOW - STATS_WINDOW_S - 60) // STATS_SLOT_S)
    stats.push(
        r,
        {
            ("q", now_slot): Counter({("j", "greeting", "greet", "succeeded"): 3, ("r", "loop", "greet", "X"): 2}),
            ("q", old_slot): Counter({("j", "greeting", "greet", "succeeded"): 10, ("f", "greeting", "greet", ""): 7}),
            ("other", now_slot): Counter({("j", "greeting", "greet", "succeeded"): 100}),
        },
        now=NOW - 400,
    )
    assert r.ttl(stats_slot_key("q", now_slot)) > 0 and r.ttl(stats_total_key("q")) == -1
    snap = stats.read(r, "q", now=NOW)
    assert snap.since == pytest.approx(NOW - 400)
    assert snap.total[("greeting", "greet")].jobs == {"succeeded": 13}
    assert snap.total[("greeting", "greet")].fuel == 7
    assert snap.recent[("greeting", "greet")].jobs == {"succeeded": 3}
    assert snap.recent[("loop", "greet")].retries == {"X": 2}
    out = snap.to_dict()
    assert out["totals"]["since_start"]["jobs"] == 13 and out["totals"]["last_5m"]["jobs"] == 3
    assert [(row["module"], row["function"]) for row in out["modules"]] == [("greeting", "greet"), ("loop", "greet")]


def test_window_is_thirty_slots_ending_now() -> None:
    slots = stats.window_slots(NOW)
    assert len(slots) == STATS_WINDOW_S // STATS_SLOT_S and slots[-1] == int(NOW // STATS_SLOT_S)


def test_fields_with_odd_names_round_trip_and_junk_is_ignored() -> None:
    f = ("j", "mod|ule", 'fun"c', "Type")
    assert stats.decode(stats.encode(f)) == f
    assert stats.decode(b"not json") is None and stats.decode("[1,2]") is None


def test_summary_names_every_figure_status_shows() -> None:
    c = stats.Counts()
    c.jobs.update({"succeeded": 5, "FuelExhausted": 2, "DeadlineExceeded": 1})
    c.retries.update({"DeadlineExceeded": 2, "WorkerLost": 1})
    c.fuel, c.fuel_jobs = 700, 7
    s = c.summary()
    assert (s["jobs"], s["succeeded"], s["failed"], s["retried"]) == (8, 5, 3, 3)
    assert s["failed_by_type"] == {"DeadlineExceeded": 1, "FuelExhausted": 2}
    assert (s["deadline_exceeded"], s["fuel_exhausted"], s["mean_fuel"]) == (1, 2, 100)
