"""`python -m worker.cli ...` runs the `wasmq` command (the worker nodes the demo and tests start use it)."""

import sys

from .main import main

if __name__ == "__main__":  # importing this module (e.g. to check it imports) must not run the command
    sys.exit(main())
