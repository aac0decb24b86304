"""Whole worker nodes lost or stalled mid-batch, with liveness (worker/queue/liveness.py): what a dead node
held comes back once its heartbeat has expired, seconds later, not after the visibility timeout; a node
that is merely busy is never robbed; one paused past its timeout and resumed loses and double-counts nothing
and carries on. Recovery is timed from the failure until the node is declared dead and its messages handed
back.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import BackgroundBatch, ResentCounter, Scenario, build_scenario
from tests.reliability.test_crashes import check_all_greeted, names
from worker.keys import NODES_KEY, dead_nodes_key
from worker.monitoring import status

pytestmark = pytest.mark.reliability


def registered(scenario: Scenario, node: str) -> bool:
    with scenario.redis() as client:
        return any(key.decode().partition("#")[0] == node for key in client.hkeys(NODES_KEY))


def test_whole_node_sigkill_with_default_settings(redis_url: str, cache_dir: Path, tmp_path: Path) -> None:
    """As an operator found it: two nodes, 20,000 names in chunks of 5, one node's process group SIGKILLed
    5 s in, and every setting at its default (visibility timeout 3600 s, node timeout 15 s)."""
    n, chunk = 20_000, 5
    sc = build_scenario("whole_node_sigkill_default_settings", redis_url, cache_dir, tmp_path, defaults=True)
    assert sc.settings.visibility_timeout_s == 3600 and sc.settings.node_timeout_s == 15.0
    try:
        with sc.client() as client, ResentCounter() as resent:
            victim, survivor = sc.start_worker(client), sc.start_worker(client)
            inputs = names(n)
            sc.messages = n // chunk
            started = time.monotonic()
            batch = BackgroundBatch(client, "greeting", "greet", inputs, chunk_size=chunk, timeout=600)
            batch.wait_until(lambda done: done > 0)
            time.sleep(max(0.0, 5.0 - (time.monotonic() - started)))
            killed_at = time.time()
            held = sc.freeze_holding(victim)  # stopped at an instant it holds messages, then killed
            victim.kill_node(signal.SIGKILL)
            assert batch.outcomes is None and batch.done < n  # it died mid-batch
            event = sc.declared_dead(victim)
            outcomes = batch.join(600)
            check_all_greeted(outcomes, inputs)
            # any live node on this Redis may be the one that hands them back (in a full run, other suites'
            # workers share it), never the victim itself
            assert event.messages == len(held) and event.by.partition("#")[0] != victim.node
            assert survivor.alive() and not registered(sc, victim.node) and sc.held() == 0
            shown = status.gather(sc.settings, client.app)["dead_nodes"]
            assert shown["nodes"] == 1 and shown["messages"] == event.messages
            assert shown["recent"][0]["name"] == victim.node
            assert "declared dead: 1" in status.render(status.gather(sc.settings, client.app))
            sc.report(submitted=n, outcomes=list(outcomes), progress_done=batch.done, dead=sc.dead().size(),
                      recovery_s=event.declared_at - killed_at, resent=resent.count)  # fmt: skip
    finally:
        for worker in sc.workers:
            worker.stop()
        sc.dead().purge()


def test_node_paused_past_its_timeout_then_resumed(scenario: Scenario) -> None:
    n, chunk = 2400, 2
    with scenario.client() as client, ResentCounter() as resent:
        paused, other = scenario.start_worker(client), scenario.start_worker(client)
        inputs = names(n)
        scenario.messages = n // chunk
        batch = BackgroundBatch(client, "greeting", "greet", inputs, chunk_size=chunk, timeout=240)
        batch.wait_until(lambda done: done >= 200)
        paused_at = time.time()
        held = scenario.freeze_holding(paused)  # SIGSTOP of the whole process group, holding messages
        try:
            event = scenario.declared_dead(paused)  # `other` hands back what it held
            time.sleep(1.0)
        finally:
            paused.kill_node(signal.SIGCONT)
        outcomes = batch.join()
        check_all_greeted(outcomes, inputs)
        assert batch.done == n  # one outcome per input, however often a message ran
        assert event.messages == len(held) and paused.alive()
        deadline = time.monotonic() + 60
        while not registered(scenario, paused.node):  # its next heartbeat registers it again
            assert time.monotonic() < deadline, "the resumed node never registered again"
            time.sleep(0.05)
        other.stop()  # from now on the resumed node is the only one: it must do the work
        more = names(200)
        again = client.map("greeting", "greet", more, chunk_size=10, timeout=120)
        check_all_greeted(again, more)
        assert {o.meta.get("worker") for o in again} == {paused.node}
        paused.stop()
        assert "declared dead while it was silent" in paused.log_text(limit=None)
        assert scenario.held() == 0  # no record left behind by a late ack or requeue
        scenario.messages += len(more) // 10
        scenario.report(submitted=n, outcomes=list(outcomes), progress_done=batch.done, dead=scenario.dead().size(),
                        recovery_s=event.declared_at - paused_at, resent=resent.count)  # fmt: skip


def test_long_job_on_a_healthy_node_is_not_handed_back(scenario: Scenario) -> None:
    """One message that runs six times the node timeout (20 calls that each run to their 300 ms deadline)."""
    timeout_s = 1.0
    scenario.settings = scenario.settings.with_(node_timeout_s=timeout_s)
    scenario.env = {**scenario.env, "WASMQ_NODE_TIMEOUT_S": str(timeout_s)}
    with scenario.client() as client:
        workers = [scenario.start_worker(client), scenario.start_worker(client)]  # either can hand back
        scenario.messages = 1
        started = time.monotonic()
        outcomes = client.map("loop-forever", "greet", ["x"] * 20, chunk_size=20, max_retries=0, timeout=120)
        elapsed = time.monotonic() - started
        assert elapsed > 5 * timeout_s  # the precondition: a job much longer than the node timeout
        assert [o.error.type if o.error else None for o in outcomes] == ["DeadlineExceeded"] * 20
        assert all(w.alive() for w in workers)
        for worker in workers:
            worker.stop()
        assert scenario.deliveries() == 1  # run once, never handed back
        with scenario.redis() as r:
            assert r.llen(dead_nodes_key(scenario.settings.queue)) == 0
        scenario.report(submitted=20, outcomes=list(outcomes), progress_done=20, dead=scenario.dead().size())
