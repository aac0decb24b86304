#!/usr/bin/env python3
"""Rewrite (or check) the sha256 fields of module manifests.

Usage:
    update_hashes.py MANIFEST...          rewrite sha256 from the files
    update_hashes.py --check MANIFEST...  exit 1 if any sha256 is stale

Each manifest is ``{"modules": [{"name", "file", "sha256", ...}, ...]}`` with
``file`` relative to the manifest's folder. Entries listed in
``DELIBERATELY_WRONG`` carry a wrong hash on purpose (to test that the host
refuses a tampered module) and are left alone.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

DELIBERATELY_WRONG = {"tampered"}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def process(manifest: Path, check: bool) -> list[str]:
    data = json.loads(manifest.read_text(encoding="utf-8"))
    problems: list[str] = []
    changed = False
    for entry in data["modules"]:
        if entry["name"] in DELIBERATELY_WRONG:
            continue
        digest = sha256_of(manifest.parent / entry["file"])
        if entry.get("sha256") != digest:
            problems.append(f"{manifest}: {entry['name']}: {entry.get('sha256')} != {digest}")
            entry["sha256"] = digest
            changed = True
    if changed and not check:
        manifest.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return problems


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [Path(a) for a in argv if a != "--check"]
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    stale: list[str] = []
    for path in paths:
        problems = process(path, check)
        stale += problems
        if not check:
            print(f"{path}: {len(problems)} hash(es) updated")
    if check:
        for line in stale:
            print(f"stale: {line}", file=sys.stderr)
        return 1 if stale else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
