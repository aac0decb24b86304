"""Which modules exist: the shared registry in Redis, the local seed manifests, lookup over both, publishing.

Above the sandbox: the catalog hands the sandbox specs and bytes (and, if enabled, shared precompiled
artifacts), and publishing checks a module with the sandbox exactly as a worker would before anything is
registered.
"""

from .catalog import ModuleCatalog

__all__ = ["ModuleCatalog"]
