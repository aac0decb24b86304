"""Which modules exist: manifest files (the local seed), name and version lookup, publishing.

Above the sandbox: the catalog hands the sandbox specs and bytes, and publishing checks a module with the
sandbox exactly as a worker would before anything is registered.
"""

from .catalog import ModuleCatalog

__all__ = ["ModuleCatalog"]
