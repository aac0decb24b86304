"""The `extism` ABI: unmodified Extism plugins, linked to a checked kernel of our own (kernel.wat)."""

from .plugin import ExtismPlugin, check_plugin, load_plugin
from .runner import ExtismRunner, ExtismUsage

__all__ = ["ExtismPlugin", "ExtismRunner", "ExtismUsage", "check_plugin", "load_plugin"]
