"""docker-compose.yml: valid against the Compose Specification schema, every file it references exists,
and the cluster it describes scales (`docker compose up --scale worker=N`). No Docker engine is needed."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from worker.catalog import ModuleCatalog
from worker.chunk_result import longest_run_s
from worker.config import DEFAULT_MANIFEST, Settings

from .redis_users import check_users

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).resolve().parent / "schemas" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of every bind mount, short or long syntax; named volumes left out."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        elif volume.get("type", "bind") == "bind":
            source, target = volume["source"], volume["target"]
        else:
            continue
        if source.startswith((".", "/", "~")):
            mounts.append((source, target))
    return mounts


def test_compose_file_matches_the_compose_spec(compose: dict[str, Any], validator: jsonschema.Validator) -> None:
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_compose_schema_is_not_vacuous(compose: dict[str, Any], validator: jsonschema.Validator) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["worker"]["enviroment"] = {"WASMQ_QUEUE": "x"}  # typo of `environment`
    assert list(validator.iter_errors(broken))
    broken = copy.deepcopy(compose)
    broken["services"]["worker"]["depends_on"]["redis"]["condition"] = "service_ready"  # not a condition
    assert list(validator.iter_errors(broken))


def test_every_referenced_file_exists(compose: dict[str, Any]) -> None:
    checked = []
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
            assert context.is_dir(), f"{name}: build context {context} is missing"
            assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
            checked.append(dockerfile)
        for source, _ in bind_mounts(service):
            path = ROOT / source
            assert path.exists(), f"{name}: bind mount source {source} is missing"
            checked.append(path)
        for env_file in (
            [service["env_file"]] if isinstance(service.get("env_file"), str) else service.get("env_file", [])
        ):
            path = ROOT / (env_file if isinstance(env_file, str) else env_file["path"])
            assert path.is_file(), f"{name}: env_file {path} is missing"
        for volume in service.get("volumes", []):
            if isinstance(volume, str) and not volume.startswith((".", "/", "~")):
                assert volume.split(":")[0] in compose.get("volumes", {}), f"{name}: volume {volume} is not declared"
    for section in ("configs", "secrets"):
        for name, item in compose.get(section, {}).items():
            if "file" in item:
                assert (ROOT / item["file"]).exists(), f"{section} {name}: {item['file']} is missing"
    assert len(checked) >= 5


def test_all_services_of_the_cluster_are_there(compose: dict[str, Any]) -> None:
    assert {"redis", "worker", "flower", "prometheus", "grafana"} <= set(compose["services"])


def test_the_worker_service_can_be_scaled(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    # A fixed container name or a published host port would make a second replica fail to start.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "replicas" not in worker.get("deploy", {})
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert re.fullmatch(
        r"redis://wasmq:\$\{WASMQ_REDIS_PASSWORD:\?[^}]*\}@redis:6379/0", worker["environment"]["WASMQ_REDIS_URL"]
    )
    assert "healthcheck" not in worker or not worker["healthcheck"].get("disable"), "the image's healthcheck is kept"


def test_published_ports_are_bound_to_loopback(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_redis_keeps_an_append_only_file_on_a_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    (conf_source, conf_target) = next((s, t) for s, t in bind_mounts(redis) if s.endswith(".conf"))
    assert conf_target in redis["command"]
    lines = (ROOT / conf_source).read_text().splitlines()
    settings = dict(line.split(None, 1) for line in lines if line.strip() and not line.startswith("#"))
    assert settings["appendonly"] == "yes"
    assert settings["maxmemory-policy"] == "noeviction"
    data = [v for v in redis["volumes"] if isinstance(v, str) and v.endswith(f":{settings['dir']}")]
    assert data and data[0].split(":")[0] in compose["volumes"], "the AOF must live on a named volume"


def test_stop_grace_period_outlasts_the_longest_job(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    env = {k: str(v) for k, v in worker["environment"].items()} | {"WASMQ_MANIFEST": str(DEFAULT_MANIFEST)}
    settings = Settings.from_env(env)
    longest_s = max(spec.limits.timeout_ms for spec in ModuleCatalog.from_manifests(settings.manifests)) / 1000
    chunk_limit = math.ceil(
        longest_run_s(int(longest_s * 1000), settings.chunk_size, settings.chunk_budget_s)
        + settings.time_limit_margin_s
    )
    grace = worker["stop_grace_period"]
    assert grace.endswith("s") and grace[:-1].isdigit()
    assert int(grace[:-1]) > max(settings.task_time_limit_s, chunk_limit)


def test_flower_and_worker_run_the_same_app(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["flower"]["image"] == services["worker"]["image"]
    assert services["flower"]["build"] == services["worker"]["build"]
    assert services["flower"]["environment"]["WASMQ_REDIS_URL"] == services["worker"]["environment"]["WASMQ_REDIS_URL"]
    assert "worker.app" in services["flower"]["command"]


def test_redis_users_and_who_holds_the_publisher_credential(compose: dict[str, Any]) -> None:
    """`wasmq` (workers, Flower, producers) reads the registry; only the publish tool has the publisher's
    password; the default user keeps every permission (what lets the AOF restore the registry)."""
    services = compose["services"]
    passwords = check_users(services["redis"]["command"], reader="wasmq")
    assert passwords["publisher"] == ">${WASMQ_PUBLISHER_PASSWORD:?set WASMQ_PUBLISHER_PASSWORD (see deploy/README.md)}"
    holders = sorted(name for name, service in services.items() if "WASMQ_PUBLISHER_PASSWORD" in json.dumps(service))
    assert holders == ["publish", "redis"]
    publish = services["publish"]
    assert publish["profiles"] == ["tools"] and publish["entrypoint"] == ["wasmq", "modules"]
    assert publish["environment"]["WASMQ_PUBLISHER_URL"].startswith("redis://publisher:${WASMQ_PUBLISHER_PASSWORD")
    assert "REDISCLI_AUTH" in services["redis"]["environment"], "the healthcheck's ping needs a user"
