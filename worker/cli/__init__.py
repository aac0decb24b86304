"""The `wasmq` command line: one module per sub-command, each owning its parser and its run."""

from .main import main

__all__ = ["main"]
