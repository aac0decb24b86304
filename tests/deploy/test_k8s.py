"""deploy/k8s: every manifest against the Kubernetes schemas (kubernetes-validate, offline), KEDA's CRDs
against the schemas in tests/deploy/schemas, and the cross-references between them against the code."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from worker.catalog import ModuleCatalog
from worker.chunk_result import longest_run_s
from worker.config import DEFAULT_MANIFEST, Settings
from worker.queue.app import make_app

from .redis_users import check_users

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
# The oldest Kubernetes these manifests claim to support, and the newest the validator knows.
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
KEDA_SCHEMAS = {"ScaledObject": "keda-scaledobject.json", "TriggerAuthentication": "keda-triggerauthentication.json"}

Doc = dict[str, Any]


def load_all() -> list[tuple[str, Doc]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend((path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


DOCS = load_all()


def find(kind: str, name: str | None = None) -> Doc:
    found = [d for _, d in DOCS if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def worker_deployment() -> Doc:
    return find("Deployment", "wasmq-worker")


def worker_container() -> Doc:
    containers = worker_deployment()["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "worker")


def config_env() -> dict[str, str]:
    return dict(find("ConfigMap", "wasmq-worker")["data"])


def cpu(quantity: str | int) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    on_disk = sorted(p.name for p in K8S.glob("*.y*ml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk
    assert all(
        d["metadata"].get("namespace", kustomization["namespace"]) == kustomization["namespace"] for _, d in DOCS
    )


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("source", "doc"),
    [(f, d) for f, d in DOCS if not d["apiVersion"].startswith("keda.sh/")],
    ids=lambda v: v if isinstance(v, str) else f"{v['kind']}/{v['metadata']['name']}",
)
def test_manifest_matches_the_kubernetes_schema(source: str, doc: Doc, version: str) -> None:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{source}: {doc['kind']}/{doc['metadata']['name']} is not valid for Kubernetes {version}: {exc}")


def test_the_kubernetes_validator_is_not_vacuous() -> None:
    broken = copy.deepcopy(worker_deployment())
    broken["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # typo of `resources`
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[0], strict=True)


@pytest.mark.parametrize("kind", sorted(KEDA_SCHEMAS))
def test_keda_resources_match_their_schema(kind: str) -> None:
    schema = json.loads((SCHEMAS / KEDA_SCHEMAS[kind]).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(find(kind))


def test_keda_schema_refuses_a_numeric_list_length() -> None:
    schema = json.loads((SCHEMAS / KEDA_SCHEMAS["ScaledObject"]).read_text())
    broken = copy.deepcopy(find("ScaledObject"))
    broken["spec"]["triggers"][0]["metadata"]["listLength"] = 20
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    del broken["spec"]["triggers"][0]["metadata"]["listName"]
    broken["spec"]["triggers"][0]["metadata"]["listLength"] = "20"
    with pytest.raises(jsonschema.ValidationError, match="listName"):
        jsonschema.validate(broken, schema)


@pytest.mark.parametrize("version", VERSIONS)
def test_keda_hpa_behavior_is_a_valid_autoscaling_v2_behavior(version: str) -> None:
    """KEDA copies `advanced.horizontalPodAutoscalerConfig.behavior` into the HPA it creates."""
    behavior = find("ScaledObject")["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "keda-hpa-wasmq-worker"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "wasmq-worker"},
            "maxReplicas": 20,
            "behavior": behavior,
        },
    }
    kubernetes_validate.validate(hpa, version, strict=True)


def test_keda_scales_the_worker_deployment_on_the_celery_queue() -> None:
    scaled = find("ScaledObject")["spec"]
    deployment = worker_deployment()
    assert scaled["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert scaled["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert "replicas" not in deployment["spec"], "the ScaledObject owns the replica count"
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"]
    # Celery's Redis transport keeps a queue's messages in a list named after the queue: one trigger per lane
    # (single jobs, then batch chunks: Settings.lanes), so that either kind of backlog scales the workers.
    settings = Settings.from_env({**config_env(), "WASMQ_MANIFEST": str(DEFAULT_MANIFEST)})
    triggers = scaled["triggers"]
    assert [t["metadata"]["listName"] for t in triggers] == list(settings.lanes)
    service = find("Service", "wasmq-redis")
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in worker_container()["env"] if "valueFrom" in e}
    for trigger in triggers:
        meta = trigger["metadata"]
        assert trigger["type"] == "redis"
        host, port = meta["address"].rsplit(":", 1)
        assert host in {service["metadata"]["name"], f"{service['metadata']['name']}.wasmq.svc.cluster.local"}
        assert int(port) == service["spec"]["ports"][0]["port"]
        auth = find("TriggerAuthentication", trigger["authenticationRef"]["name"])
        refs = {ref["parameter"]: (ref["name"], ref["key"]) for ref in auth["spec"]["secretTargetRef"]}
        assert refs == {  # KEDA reads the queue length as the workers' Redis user
            "username": (env["REDIS_USERNAME"]["name"], env["REDIS_USERNAME"]["key"]),
            "password": (env["REDIS_PASSWORD"]["name"], env["REDIS_PASSWORD"]["key"]),
        }


def test_worker_has_resources_probes_and_runs_unprivileged() -> None:
    pod = worker_deployment()["spec"]["template"]["spec"]
    container = worker_container()
    for key in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][key]), key
    assert container["readinessProbe"] and container["livenessProbe"]
    ping = " ".join(container["readinessProbe"]["exec"]["command"])
    assert "inspect ping" in ping and "celery@${HOSTNAME}" in ping
    metrics_port = {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"]
    assert str(metrics_port) in container["args"], "the liveness probe needs the metrics server"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    user = re.findall(r"^USER\s+(\d+):(\d+)", dockerfile, flags=re.MULTILINE)[-1]
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == tuple(map(int, user))


def test_concurrency_fits_the_cpu_limit() -> None:
    concurrency = int(config_env()["WASMQ_CONCURRENCY"])
    assert concurrency <= cpu(worker_container()["resources"]["limits"]["cpu"])
    assert cpu(worker_container()["resources"]["requests"]["cpu"]) <= cpu(
        worker_container()["resources"]["limits"]["cpu"]
    )


def test_termination_grace_outlasts_the_longest_job() -> None:
    """A worker's SIGTERM is a warm shutdown; Kubernetes must not SIGKILL it while a job may still run.

    The longest a message may run is its hard time limit: for a chunk what the client computes, its budget
    and one step's deadlines plus the margin (chunk_result.longest_run_s); for a message that sets none (a
    foreign producer) the app's default.
    """
    settings = Settings.from_env({**config_env(), "WASMQ_MANIFEST": str(DEFAULT_MANIFEST)})
    longest_timeout_s = max(spec.limits.timeout_ms for spec in ModuleCatalog.from_manifests(settings.manifests)) / 1000
    chunk_limit = math.ceil(
        longest_run_s(int(longest_timeout_s * 1000), settings.chunk_size, settings.chunk_budget_s)
        + settings.time_limit_margin_s
    )
    grace = worker_deployment()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > max(settings.task_time_limit_s, chunk_limit), (grace, settings.task_time_limit_s, chunk_limit)
    assert chunk_limit < settings.visibility_timeout_s


def test_configmap_settings_are_accepted_by_the_code() -> None:
    env = {**config_env(), "WASMQ_MANIFEST": str(DEFAULT_MANIFEST), "WASMQ_REDIS_URL": "redis://wasmq-redis:6379/0"}
    app = make_app(Settings.from_env(env))  # raises ConfigError on inconsistent settings; connects to nothing
    assert app.conf.task_default_queue == env["WASMQ_QUEUE"]
    app.close()


def test_pdb_selects_the_worker_pods() -> None:
    pdb = find("PodDisruptionBudget", "wasmq-worker")["spec"]
    labels = worker_deployment()["spec"]["template"]["metadata"]["labels"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    assert pdb.get("maxUnavailable") == 1 or pdb.get("minAvailable") is not None


def test_redis_is_persistent_and_never_evicts() -> None:
    statefulset = find("StatefulSet", "wasmq-redis")
    pod = statefulset["spec"]["template"]["spec"]
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    conf = find("ConfigMap", "wasmq-redis")["data"]["redis.conf"]
    settings = dict(line.split(None, 1) for line in conf.splitlines() if line.strip() and not line.startswith("#"))
    assert mounts[claim["metadata"]["name"]] == settings["dir"] == "/data"
    assert settings["appendonly"] == "yes" and settings["maxmemory-policy"] == "noeviction"
    compose_conf = (ROOT / "deploy" / "redis" / "redis.conf").read_text()
    for key in ("appendonly", "appendfsync", "maxmemory-policy"):
        assert f"{key} {settings[key]}" in compose_conf, f"compose and Kubernetes Redis disagree on {key}"
    service = find("Service", "wasmq-redis")
    assert service["spec"]["selector"].items() <= statefulset["spec"]["template"]["metadata"]["labels"].items()
    url = next(e["value"] for e in worker_container()["env"] if e["name"] == "WASMQ_REDIS_URL")
    assert f"@{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/" in url


def test_network_policies_select_existing_pods() -> None:
    worker_labels = worker_deployment()["spec"]["template"]["metadata"]["labels"]
    redis_labels = find("StatefulSet", "wasmq-redis")["spec"]["template"]["metadata"]["labels"]
    redis_policy = find("NetworkPolicy", "wasmq-redis")["spec"]
    assert redis_policy["podSelector"]["matchLabels"].items() <= redis_labels.items()
    allowed = [p["podSelector"]["matchLabels"] for p in redis_policy["ingress"][0]["from"] if "podSelector" in p]
    assert any(sel.items() <= worker_labels.items() for sel in allowed), "workers could not reach Redis"
    worker_policy = find("NetworkPolicy", "wasmq-worker")["spec"]
    assert worker_policy["podSelector"]["matchLabels"].items() <= worker_labels.items()
    egress_to = [
        t["podSelector"]["matchLabels"] for rule in worker_policy["egress"] for t in rule["to"] if "podSelector" in t
    ]
    assert any(sel.items() <= redis_labels.items() for sel in egress_to)


PUBLISH_JOB = K8S / "publish" / "publish-job.yaml"


def secret_refs(container: Doc) -> dict[str, tuple[str, str]]:
    return {e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
            for e in container.get("env", []) if "valueFrom" in e}  # fmt: skip


def test_redis_users_and_who_holds_which_secret() -> None:
    """Redis defines the three users with the code's rules; workers hold the `wasmq` user's Secret and never
    the publisher's; the publish Job holds the publisher's and never the admin's."""
    redis = find("StatefulSet", "wasmq-redis")["spec"]["template"]["spec"]["containers"][0]
    passwords = check_users(redis["args"], reader="$(REDIS_USERNAME)")
    refs = secret_refs(redis)
    assert passwords == {"default": ">$(REDIS_ADMIN_PASSWORD)", "$(REDIS_USERNAME)": ">$(REDIS_PASSWORD)",
                         "publisher": ">$(PUBLISHER_PASSWORD)"}  # fmt: skip
    assert refs["REDIS_ADMIN_PASSWORD"] == refs["REDISCLI_AUTH"] == ("wasmq-redis-admin", "password")
    assert refs["PUBLISHER_PASSWORD"] == ("wasmq-publisher", "password")
    worker = secret_refs(worker_container())
    assert set(worker.values()) == {("wasmq-redis", "username"), ("wasmq-redis", "password")}
    assert refs["REDIS_USERNAME"] == worker["REDIS_USERNAME"] and refs["REDIS_PASSWORD"] == worker["REDIS_PASSWORD"]
    url = next(e["value"] for e in worker_container()["env"] if e["name"] == "WASMQ_REDIS_URL")
    assert url.startswith("redis://$(REDIS_USERNAME):$(REDIS_PASSWORD)@")
    (job,) = [d for d in yaml.safe_load_all(PUBLISH_JOB.read_text()) if d]
    publisher = job["spec"]["template"]["spec"]["containers"][0]
    held = set(secret_refs(publisher).values())
    assert ("wasmq-publisher", "password") in held and not any(name == "wasmq-redis-admin" for name, _ in held)
    env = {e["name"]: e.get("value") for e in publisher["env"]}
    assert env["WASMQ_PUBLISHER_URL"] == "redis://publisher:$(PUBLISHER_PASSWORD)@wasmq-redis:6379/0"
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels.get("wasmq.io/redis-client") == "true", "the Redis NetworkPolicy admits only labelled pods"


@pytest.mark.parametrize("version", VERSIONS)
def test_the_publish_job_matches_the_kubernetes_schema(version: str) -> None:
    for doc in yaml.safe_load_all(PUBLISH_JOB.read_text()):
        if doc:
            kubernetes_validate.validate(doc, version, strict=True)
