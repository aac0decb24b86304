"""Compile every module of the configured manifests into the precompiled cache (run at image build time).

Reads the same `WASMQ_*` settings as a worker (`WASMQ_MANIFEST`, `WASMQ_CACHE_DIR`), so the artifacts land
where the worker looks for them and carry the same engine fingerprint. Fails (exit 1) when there is no cache
directory or when any module is rejected: an image must not ship a module that every job would refuse.
"""

from __future__ import annotations

import sys

from worker.catalog import ModuleCatalog
from worker.config import get_settings
from worker.errors import WasmqError
from worker.sandbox import Sandbox


def main() -> int:
    settings = get_settings()
    if settings.cache_dir is None:
        print("WASMQ_CACHE_DIR is empty: nothing to warm", file=sys.stderr)
        return 1
    catalog = ModuleCatalog.from_manifests(settings.manifests)
    sandbox = Sandbox(catalog, settings=settings)
    failed = 0
    try:
        for spec in catalog:
            artifact = sandbox.precompiled.path(spec)
            cached = artifact is not None and artifact.exists()
            try:
                sandbox.load(spec)  # modules and components alike: checked, compiled, kept in the cache
            except WasmqError as exc:
                print(f"REJECTED {spec.ref}: {exc}", file=sys.stderr)
                failed += 1
                continue
            print(f"{spec.ref}: {'cached already' if cached else 'compiled'}")
    finally:
        sandbox.close()
    artifacts = sorted(settings.cache_dir.glob("*.cwasm"))
    print(f"{len(artifacts)} precompiled artifacts in {settings.cache_dir}")
    return 1 if failed or not artifacts else 0


if __name__ == "__main__":
    sys.exit(main())
