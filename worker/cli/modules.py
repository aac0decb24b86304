"""`wasmq modules add|list|verify`: publish a module version, see what is registered, check it all."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..catalog import ModuleCatalog
from ..config import get_settings
from ..errors import UsageError
from ..spec import ABIS
from .common import Parser, SubParsers, print_json

if TYPE_CHECKING:
    from ..catalog.publish import Published

LIMIT_FLAGS = ("--fuel", "--timeout-ms", "--memory-mb", "--max-input-bytes", "--max-output-bytes", "--max-retries")


def add_parser(sub: SubParsers) -> None:
    modules = sub.add_parser("modules", help="publish, list and verify modules")
    modules_sub = modules.add_subparsers(dest="modules_command", required=True, parser_class=Parser)
    add = modules_sub.add_parser("add", help="check a module file and add it to the manifest")
    add.add_argument("file")
    add.add_argument("--name", required=True)
    add.add_argument("--version", required=True)
    add.add_argument("--abi", required=True, choices=ABIS)
    add.add_argument("--function", action="append", required=True, help="a function to expose (repeatable)")
    add.add_argument("--batch", action="append", help="FUNCTION=EXPORT: the batch export of a packed function")
    add.add_argument("--manifest", help="manifest to add to (default: the first of WASMQ_MANIFEST)")
    add.add_argument("--description")
    add.add_argument("--wit", help="component ABI: the WIT file")
    add.add_argument("--world", help="component ABI: the world the component implements")
    for flag in LIMIT_FLAGS:
        add.add_argument(flag, type=int)
    modules_sub.add_parser("list", help="registered modules").add_argument("--json", action="store_true")
    modules_sub.add_parser("verify", help="check every registered module as a worker would")


def _manifest(args: argparse.Namespace) -> Path:
    if args.manifest:
        return Path(args.manifest)
    return get_settings().manifests[0]


def run(args: argparse.Namespace) -> int:
    from ..catalog.publish import add_module, verify

    if args.modules_command == "add":
        return _add(args, add_module)
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


def _add(args: argparse.Namespace, add_module: Callable[..., Published]) -> int:
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
