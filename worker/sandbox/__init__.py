"""One sandboxed call: engine and epoch ticker, backends for core modules and components, output checks.

Below the catalog: the sandbox is handed specs and bytes (`loading.ModuleSource`) and never looks modules up.
"""

from .result import CallResult, Usage
from .runtime import Sandbox

__all__ = ["CallResult", "Sandbox", "Usage"]
