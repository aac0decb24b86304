"""`wasmq modules add|list|show|verify|yank`: publish to the shared registry, see what is registered (registry
and seed manifests), check it all, withdraw a version.

Publishing and yanking write with WASMQ_PUBLISHER_URL's credentials (the registry's URL where Redis has no
ACL users); listing, showing and verifying only read.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..catalog import ModuleCatalog
from ..config import get_settings
from ..errors import ModuleNotFound, UsageError
from ..spec import ABIS, ALLOWABLE, Capabilities, check_env
from .common import Parser, SubParsers, print_json

LIMIT_FLAGS = ("--fuel", "--timeout-ms", "--memory-mb", "--max-input-bytes", "--max-output-bytes", "--max-retries")


def add_parser(sub: SubParsers) -> None:
    modules = sub.add_parser("modules", help="publish, list, show, verify and yank modules")
    modules_sub = modules.add_subparsers(dest="modules_command", required=True, parser_class=Parser)
    add = modules_sub.add_parser("add", help="check a module file and publish it to the shared registry")
    add.add_argument("file")
    add.add_argument("--name", required=True)
    add.add_argument("--version", required=True)
    add.add_argument(
        "--function", action="append", required=True, metavar="F[:ABI]", help="a function to expose (repeatable)"
    )
    add.add_argument("--abi", choices=ABIS, help="the ABI of every --function that names none")
    add.add_argument("--batch", action="append", help="FUNCTION=EXPORT: the batch export of a packed function")
    add.add_argument("--allow", help=f"capabilities to grant, comma-separated: {', '.join(ALLOWABLE)}")
    add.add_argument("--env", action="append", metavar="KEY=VALUE", help="an environment variable (repeatable)")
    add.add_argument("--capture-output", type=int, metavar="BYTES", help="stdout/stderr kept per stream and call")
    add.add_argument("--config", action="append", metavar="KEY=VALUE", help="extism ABI: plugin config (repeatable)")
    add.add_argument("--description")
    add.add_argument("--wit", help="component ABI: the WIT file")
    add.add_argument("--world", help="component ABI: the world the component implements")
    for flag in LIMIT_FLAGS:
        add.add_argument(flag, type=int)
    listing = modules_sub.add_parser("list", help="registered modules (registry and seed manifests)")
    listing.add_argument("names", nargs="*", help="only these modules")
    listing.add_argument("--json", action="store_true")
    show = modules_sub.add_parser("show", help="one module version: functions, limits, capabilities, publisher")
    show.add_argument("module", help="NAME (its newest version) or NAME@VERSION")
    show.add_argument("--json", action="store_true")
    verify = modules_sub.add_parser("verify", help="check every registered module as a worker would")
    verify.add_argument("names", nargs="*", help="only these modules")
    yank = modules_sub.add_parser("yank", help="withdraw a version: new jobs for it fail with ModuleNotFound")
    yank.add_argument("module", help="NAME@VERSION")
    yank.add_argument("--reason", default="")


def run(args: argparse.Namespace) -> int:
    from ..catalog import publish

    settings = get_settings()
    if args.modules_command == "add":
        published = publish.publish(settings, Path(args.file), _publication(args))
        state = "published" if published.added else "already published (identical)"
        shared = ", compiled artifact shared" if published.artifact_shared else ""
        print(f"{published.entry.spec.ref} {state}: sha256 {published.entry.spec.sha256}{shared}")
        return 0
    if args.modules_command == "yank":
        entry, changed = publish.yank(settings, args.module, reason=args.reason)
        assert entry.yanked is not None
        print(f"{entry.spec.ref} {entry.yanked.describe() if changed else 'was yanked already'}")
        return 0
    catalog = ModuleCatalog.from_settings(settings)
    try:
        if args.modules_command == "list":
            return _list(catalog, args.names, as_json=args.json)
        if args.modules_command == "show":
            return _show(catalog, args.module, as_json=args.json)
        failed = 0
        for listed, problem in publish.verify(catalog, settings, names=args.names):
            yanked = listed.entry is not None and listed.entry.yanked is not None
            status = "yanked" if yanked else "ok  " if problem is None else "FAIL"
            print(f"{status} {listed.spec.ref}" + (f": {problem.message}" if problem and not yanked else ""))
            failed += problem is not None and not yanked
        return 1 if failed else 0
    finally:
        catalog.close()


def _publication(args: argparse.Namespace) -> Any:
    from ..catalog.publish import Publication

    batch: dict[str, str] = {}
    for item in args.batch or []:
        function, sep, export = item.partition("=")
        if not sep:
            raise UsageError(f"--batch takes FUNCTION=EXPORT, not {item!r}")
        batch[function] = export
    limits = {flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_")) for flag in LIMIT_FLAGS}
    wit = None
    if args.wit:
        try:
            wit = Path(args.wit).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the WIT file {args.wit}: {exc}") from None
    return Publication(
        name=args.name, version=args.version, functions=args.function, abi=args.abi, batch=batch,
        limits={k: v for k, v in limits.items() if v is not None}, capabilities=_capabilities(args),
        description=args.description or "", wit=wit, world=args.world, config=_config(args.config or []),
    )  # fmt: skip


def _config(items: list[str]) -> dict[str, str]:
    config: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--config takes KEY=VALUE, not {item!r}")
        if key in config:
            raise UsageError(f"--config gives {key!r} twice")
        config[key] = value
    return config


def _capabilities(args: argparse.Namespace) -> Capabilities:
    allowed = [a.strip() for a in (args.allow or "").split(",") if a.strip()]
    unknown = sorted(set(allowed) - set(ALLOWABLE))
    if unknown:
        raise UsageError(f"--allow knows {', '.join(ALLOWABLE)}, not {', '.join(unknown)}")
    pairs = []
    for item in args.env or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--env takes KEY=VALUE, not {item!r}")
        pairs.append((key, value))
    if args.capture_output is not None and args.capture_output < 0:
        raise UsageError(f"--capture-output must be a number of bytes, not {args.capture_output}")
    return Capabilities(
        clock="clock" in allowed, random="random" in allowed, env=check_env(pairs, "--env"),
        output_bytes=args.capture_output or 0,
    )  # fmt: skip


def _row(listed: Any) -> dict[str, Any]:
    spec, entry = listed.spec, listed.entry
    return {
        "name": spec.name, "version": spec.version, "abi": spec.abi, "sha256": spec.sha256,
        "functions": {f.name: f.abi for f in spec.functions.values()},
        "batch": {f.name: f.batch for f in spec.functions.values() if f.batch},
        "limits": spec.limits.to_dict(), "capabilities": spec.capabilities.to_dict(), "world": spec.world,
        "config": dict(spec.config) if spec.is_extism else None,
        "description": spec.description, "origin": listed.origin,
        "size": entry.size if entry else None, "published_by": entry.published_by if entry else None,
        "published_at": entry.published_at if entry else None,
        "yanked": vars(entry.yanked) if entry and entry.yanked else None,
        "problem": listed.problem.to_dict() if listed.problem and not (entry and entry.yanked) else None,
    }  # fmt: skip


def _list(catalog: ModuleCatalog, names: list[str], *, as_json: bool) -> int:
    listing = [listed for name in names for listed in catalog.listing(name)] if names else catalog.listing()
    if as_json:
        print_json({"modules": [_row(listed) for listed in listing]})
        return 0
    for listed in listing:
        spec, entry = listed.spec, listed.entry
        note = "  YANKED" if entry and entry.yanked else "  PROBLEM" if listed.problem else ""
        functions = ", ".join(f"{f.name}:{f.abi}" for f in spec.functions.values())
        print(f"{spec.ref:28} {spec.sha256[:16]}  {functions}  [{listed.origin}]{note}")
    return 0


def _show(catalog: ModuleCatalog, ref: str, *, as_json: bool) -> int:
    name, at, version = ref.partition("@")
    versions = [listed for listed in catalog.listing(name) if not at or listed.spec.version == version]
    if not at:  # the version a job naming only the module gets, or else the newest listed
        served = next((listed for listed in versions if listed.problem is None), None)
        versions = [served] if served else versions[:1]
    if not versions:
        raise ModuleNotFound(f"no module {ref!r} in the registry or the seed manifests")
    row = _row(versions[0])
    if as_json:
        print_json(row)
        return 0
    for key, value in row.items():
        if key != "batch" and value not in (None, ""):
            print(f"{key:13} {_text(key, value, row, versions[0])}")
    return 0


def _text(key: str, value: Any, row: dict[str, Any], listed: Any) -> str:
    """One field of `modules show` as text."""
    if key == "functions":
        return ", ".join(f"{f}:{abi}" + (f" (batch {row['batch'][f]})" if f in row["batch"] else "")
                         for f, abi in value.items())  # fmt: skip
    if key == "capabilities":
        return ", ".join(listed.spec.capabilities.granted()) or "none granted"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)
