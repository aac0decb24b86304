"""`wasmq call`: one call in this process, on a registered module or on any module file (no queue).

The command waits for wasmtime to let go of a WASI module's output streams before it returns (bounded,
`release_wasi_streams`): wasmtime drops them on its own runtime threads a few milliseconds after the call,
and each drop calls back into Python (wasmtime-py's stream finalizer). A callback that arrives while the
interpreter is finalizing makes CPython end that thread with `pthread_exit`, whose forced unwinding goes
through Rust frames that must not unwind: the process aborted (SIGABRT) after printing its result, about
one run in thirty with the WASI probe module.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

from ..catalog import ModuleCatalog
from ..config import get_settings
from ..errors import UsageError, WasmqError
from ..outcome import Outcome
from ..sandbox import Sandbox
from ..spec import CORE_ABIS, FunctionSpec, Limits, ModuleSpec
from .common import SubParsers, add_input, add_limits, limits_from, read_input, report_outcome


def add_parser(sub: SubParsers) -> None:
    call = sub.add_parser("call", help="run one call in this process (no queue)")
    call.add_argument("module", nargs="?", help="registered module (name or name@version)")
    call.add_argument("function", nargs="?", help="function to call")
    call.add_argument("--wasm", help="a module file instead of a registered module")
    call.add_argument("--abi", choices=CORE_ABIS, default="packed")
    call.add_argument("--function", dest="function_opt", help="function to call (with --wasm)")
    add_input(call)
    add_limits(call)


def _file_spec(path: str, abi: str, function: str, limits: dict[str, int]) -> ModuleSpec:
    """An ad hoc spec for a module file: the author's own limits apply, defaults where none are given."""
    file = Path(path)
    try:
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError as exc:
        raise UsageError(f"cannot read module file {path}: {exc.strerror}") from None
    return ModuleSpec(
        name=file.stem,
        version="local",
        path=file.resolve(),
        sha256=digest,
        abi=abi,
        functions={function: FunctionSpec(name=function, abi=abi)},
        limits=Limits(**limits),
    )


def release_wasi_streams(timeout_s: float = 2.0) -> bool:
    """Wait until wasmtime-py holds no WASI output stream callback (see the module docstring); False if some
    were still held after `timeout_s`."""
    try:
        from wasmtime._wasi import CUSTOM_OUTPUTS
    except ImportError:  # another wasmtime-py layout: nothing known to wait for
        return True
    handles = getattr(CUSTOM_OUTPUTS, "handles", None)
    deadline = time.monotonic() + timeout_s
    while handles and time.monotonic() < deadline:
        time.sleep(0.002)
    return not handles


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    finally:
        release_wasi_streams()


def _run(args: argparse.Namespace) -> int:
    limits = limits_from(args)
    for key, value in limits.items():
        if value <= 0:
            raise UsageError(f"--{key.replace('_', '-')} must be positive, not {value}")
    settings = get_settings()
    if args.wasm:
        if args.module or args.function:
            raise UsageError("with --wasm, give the function as --function F, not as positional arguments")
        if not args.function_opt:
            raise UsageError("--wasm needs --function F")
        spec = _file_spec(args.wasm, args.abi, args.function_opt, limits)
        catalog, module, function, asked = ModuleCatalog([spec]), spec, args.function_opt, None
    else:
        if not args.module or not args.function:
            raise UsageError("give MODULE FUNCTION, or --wasm FILE --function F")
        catalog = ModuleCatalog.from_settings(settings)
        module, function, asked = args.module, args.function, limits
    text = read_input(args.input, args.input_file)
    with Sandbox(catalog, settings=settings) as sandbox:
        try:
            result = sandbox.call(module, function, text, asked)
        except WasmqError as exc:
            return report_outcome(Outcome.failed(exc), as_json=args.json)
        finally:
            catalog.close()
    if not args.json:
        for name, captured in (("stdout", result.stdout), ("stderr", result.stderr)):
            if captured:
                print(f"[module {name}]\n{captured}", file=sys.stderr)
    return report_outcome(Outcome(ok=True, output=result.output, usage=result.usage.to_dict()), as_json=args.json)
