"""The `extism` ABI: unmodified Extism plugins on a kernel the host implements (`extism:host/env`)."""

from .plugin import ExtismPlugin, check_plugin, load_plugin
from .runner import ExtismRunner, ExtismUsage

__all__ = ["ExtismPlugin", "ExtismRunner", "ExtismUsage", "check_plugin", "load_plugin"]
