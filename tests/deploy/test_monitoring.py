"""Prometheus scrape config and the provisioned Grafana dashboard, checked against the compose file and the
metric names the worker exports (`wasmq worker --metrics-port 9808`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "wasmq.json"
METRICS_PORT = "9808"
# The worker's metric names; histograms also have _bucket, _sum and _count series.
COUNTERS = {"wasmq_jobs_total", "wasmq_job_retries_total"}
HISTOGRAMS = {"wasmq_job_duration_seconds", "wasmq_job_fuel_consumed"}
GAUGES = {"wasmq_queue_depth", "wasmq_jobs_in_flight", "wasmq_dead_letter_size", "wasmq_worker_up"}
KNOWN = COUNTERS | GAUGES | {f"{h}{s}" for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def panel(dashboard: dict[str, Any], words: str) -> dict[str, Any]:
    found = [p for p in dashboard["panels"] if words.lower() in p["title"].lower()]
    assert found, f"no panel titled like {words!r}"
    return found[0]


def mount_target(service: dict[str, Any], source_suffix: str) -> str:
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        if source.rstrip("/").endswith(source_suffix):
            return target
    raise AssertionError(f"nothing mounted from {source_suffix}")


def test_prometheus_scrapes_every_worker_replica(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    config_path = mount_target(prometheus, "deploy/prometheus/prometheus.yml")
    assert f"--config.file={config_path}" in prometheus["command"]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    worker_job = jobs["wasmq-worker"]
    (sd,) = worker_job["dns_sd_configs"]
    # DNS service discovery: one A record per `--scale worker=N` replica.
    assert sd["names"] == ["worker"] and sd["type"] == "A" and str(sd["port"]) == METRICS_PORT
    worker = compose["services"]["worker"]
    assert METRICS_PORT in worker["command"] and METRICS_PORT in worker["expose"]
    assert any(
        "flower:5555" in t for job in jobs.values() for sc in job.get("static_configs", []) for t in sc["targets"]
    )


def test_grafana_provisions_the_datasource_and_the_dashboard(
    compose: dict[str, Any], dashboard: dict[str, Any]
) -> None:
    grafana = compose["services"]["grafana"]
    assert mount_target(grafana, "deploy/grafana/provisioning") == "/etc/grafana/provisioning"
    dashboards_dir = mount_target(grafana, "deploy/grafana/dashboards")
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "wasmq.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == dashboards_dir
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{dashboards_dir}/{DASHBOARD.name}"
    datasources = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    used = {p["datasource"]["uid"] for p in dashboard["panels"]}
    used |= {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert used == {source["uid"]}


def test_dashboard_is_well_formed(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in dashboard["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"panel {p['title']!r} overlaps another"
        cells |= mine
        assert p["targets"] and all(t["refId"] and t["expr"] for t in p["targets"]), p["title"]


def test_dashboard_queries_only_metrics_the_worker_exports(dashboard: dict[str, Any]) -> None:
    names = {name for expr in exprs(dashboard) for name in re.findall(r"\bwasmq_[a-z_]+\b", expr)}
    assert names <= KNOWN, names - KNOWN
    for expr in exprs(dashboard):
        assert expr.count("(") == expr.count(")"), expr
        assert expr.count("{") == expr.count("}"), expr
        for counter in COUNTERS | {f"{h}_bucket" for h in HISTOGRAMS}:
            if counter in expr:
                assert re.search(rf"(rate|increase)\({counter}\b", expr), f"{counter} must be read as a rate: {expr}"


def test_dashboard_has_the_panels_operators_need(dashboard: dict[str, Any]) -> None:
    assert "wasmq_jobs_total" in panel(dashboard, "throughput")["targets"][0]["expr"]
    failures = panel(dashboard, "failures by type")["targets"][0]
    assert 'outcome!="succeeded"' in failures["expr"] and "by (outcome)" in failures["expr"]
    assert "wasmq_job_retries_total" in panel(dashboard, "retries")["targets"][0]["expr"]
    assert 'outcome="DeadlineExceeded"' in panel(dashboard, "timeouts")["targets"][0]["expr"]
    assert "wasmq_queue_depth" in panel(dashboard, "queue depth")["targets"][0]["expr"]
    latency = [t["expr"] for t in panel(dashboard, "latency percentiles")["targets"]]
    assert len(latency) >= 3
    assert all(e.startswith("histogram_quantile(0.") and "wasmq_job_duration_seconds_bucket" in e for e in latency)
    assert all("by (le)" in e for e in latency)
