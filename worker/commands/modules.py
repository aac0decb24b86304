"""`wasmq modules add|list|verify`: publish a module version, see what is registered, check it all."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..catalog import ModuleCatalog
from ..config import get_settings
from ..publish import add_module, verify
from .common import UsageError, print_json


def _manifest(args: argparse.Namespace) -> Path:
    if args.manifest:
        return Path(args.manifest)
    return get_settings().manifests[0]


def run(args: argparse.Namespace) -> int:
    if args.modules_command == "add":
        return _add(args)
    catalog = ModuleCatalog.from_manifests(get_settings().manifests)
    if args.modules_command == "list":
        rows = [
            {"name": s.name, "version": s.version, "abi": s.abi, "sha256": s.sha256,
             "functions": {f.name: f.abi for f in s.functions.values()}, "limits": s.limits.to_dict()}
            for s in catalog
        ]  # fmt: skip
        if args.json:
            print_json({"modules": rows})
        else:
            for spec in catalog:
                print(f"{spec.ref:28} {spec.abi:9}  {spec.sha256[:16]}  {', '.join(spec.functions)}")
        return 0
    failed = 0
    for spec, problem in verify(catalog):
        print(f"{'ok  ' if problem is None else 'FAIL'} {spec.ref}" + (f": {problem.message}" if problem else ""))
        failed += problem is not None
    return 1 if failed else 0


def _add(args: argparse.Namespace) -> int:
    batch: dict[str, str] = {}
    for item in args.batch or []:
        function, sep, export = item.partition("=")
        if not sep:
            raise UsageError(f"--batch takes FUNCTION=EXPORT, not {item!r}")
        batch[function] = export
    limits = {
        k: v
        for k, v in {
            "fuel": args.fuel, "timeout_ms": args.timeout_ms, "memory_mb": args.memory_mb,
            "max_input_bytes": args.max_input_bytes, "max_output_bytes": args.max_output_bytes,
            "max_retries": args.max_retries,
        }.items()
        if v is not None
    }  # fmt: skip
    published = add_module(
        _manifest(args), Path(args.file), name=args.name, version=args.version, abi=args.abi,
        functions=args.function, batch=batch, limits=limits, description=args.description or "",
        wit=Path(args.wit) if args.wit else None, world=args.world,
    )  # fmt: skip
    state = "published" if published.added else "already published (same bytes)"
    print(f"{published.spec.ref} {state}: sha256 {published.spec.sha256}")
    return 0
