"""deploy/Dockerfile without a Docker engine: what it copies exists and is in the build context, it runs as
a non-root user with a healthcheck, and its cache-warming step works (run here exactly as the build runs it)."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
from pathlib import Path

from worker.catalog import ModuleCatalog

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"

Instruction = tuple[str, str]


def instructions() -> list[list[Instruction]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments), continuation lines joined."""
    stages: list[list[Instruction]] = []
    logical = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, args = logical.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword.upper(), args.strip()))
        logical = ""
    return stages


def final_stage() -> list[Instruction]:
    return instructions()[-1]


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    parts = Path(path.rstrip("/")).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        if pattern.startswith("!"):
            continue
        bare = pattern.removeprefix("**/")
        candidates = prefixes if bare == pattern else list(parts)
        if any(fnmatch.fnmatch(c, bare) for c in candidates):
            return True
    return False


def copy_sources() -> list[str]:
    sources = []
    for stage in instructions():
        for keyword, args in stage:
            if keyword in ("COPY", "ADD") and "--from" not in args:
                words = [w for w in args.split() if not w.startswith("--")]
                sources.extend(words[:-1])
    return sources


def test_the_final_stage_runs_as_a_fixed_non_root_user() -> None:
    stage = final_stage()
    users = [args for keyword, args in stage if keyword == "USER"]
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid not in ("root", "0") and uid.isdigit(), "a numeric uid lets Kubernetes check runAsNonRoot"
    keywords = [k for k, _ in stage]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    assert f"--uid {uid}" in " ".join(args for k, args in stage if k == "RUN")


def test_modules_are_baked_in_where_the_worker_looks() -> None:
    stage = final_stage()
    env = " ".join(args for keyword, args in stage if keyword == "ENV")
    manifest = re.search(r"WASMQ_MANIFEST=(\S+)", env)
    assert manifest, "WASMQ_MANIFEST is not set in the image"
    copies = [args.split() for keyword, args in stage if keyword == "COPY"]
    targets = {words[-1].rstrip("/"): words[-2] for words in copies}
    module_dir = str(Path(manifest.group(1)).parent)
    assert targets.get(module_dir, "").rstrip("/") == "modules"
    assert re.search(r"WASMQ_CACHE_DIR=/\S+", env), "the cache directory must be fixed at build time"


def test_the_cache_is_warmed_as_the_worker_user() -> None:
    stage = final_stage()
    keywords = [k for k, _ in stage]
    warm = next(i for i, (k, args) in enumerate(stage) if k == "RUN" and "warm_cache.py" in args)
    user = max(i for i, k in enumerate(keywords) if k == "USER")
    assert user < warm, "artifacts written as root could not be replaced by the worker"


def test_there_is_a_healthcheck_that_pings_this_node() -> None:
    checks = [args for keyword, args in final_stage() if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "inspect ping" in checks[0] and "celery@${HOSTNAME}" in checks[0]
    assert re.search(r"--timeout=\d+s", checks[0])


def test_everything_copied_is_in_the_build_context() -> None:
    patterns = dockerignore()
    sources = copy_sources()
    assert {"pyproject.toml", "README.md", "worker/", "modules/", "deploy/warm_cache.py"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
        assert not ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"


def test_the_dockerignore_keeps_local_state_out() -> None:
    patterns = dockerignore()
    for path in (".venv", ".git", "tests", "worker/__pycache__"):
        assert ignored(path, patterns), path


def test_warm_cache_compiles_every_module_and_a_second_run_loads_them(tmp_path: Path) -> None:
    """The build's `RUN python /opt/wasmq/warm_cache.py`, here with the repository's manifest."""
    manifest = ROOT / "modules" / "manifest.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMQ_")}
    env.update(WASMQ_MANIFEST=str(manifest), WASMQ_CACHE_DIR=str(tmp_path / "cache"))
    script = str(ROOT / "deploy" / "warm_cache.py")
    first = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, check=False, timeout=120)
    assert first.returncode == 0, first.stderr
    specs = list(ModuleCatalog.from_manifests((manifest,)))
    assert any(s.abi == "component" for s in specs)  # components are cached like core modules
    assert len(list((tmp_path / "cache").glob("*.cwasm"))) == len(specs)
    assert first.stdout.count(": compiled") == len(specs)
    second = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, check=False, timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count(": cached already") == len(specs)


def test_warm_cache_fails_the_build_on_a_rejected_module(tmp_path: Path) -> None:
    hostile = ROOT / "tests" / "corpora" / "hostile" / "manifest.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMQ_")}
    env.update(WASMQ_MANIFEST=str(hostile), WASMQ_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "warm_cache.py")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 1 and "REJECTED" in done.stderr, (done.stdout, done.stderr)


def test_the_dockerignore_keeps_module_toolchains_out() -> None:
    """modules/ is copied whole: the npm and pip toolchains of its builds, and the big components that are not in
    the manifest, stay out of the image."""
    patterns = dockerignore()
    for path in (
        "modules/greeting_extism/node_modules",
        "modules/greeting_js/node_modules",
        "modules/greeting_py/.venv",
        "modules/greeting_py/greeting_py.wasm",
        "modules/greeting_js/greeting_js.wasm",
    ):
        assert ignored(path, patterns), path
    assert not ignored("modules/greeting_extism/greeting_extism.wasm", patterns)
