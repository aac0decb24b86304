"""`python -m worker.cli ...` runs the `wasmq` command (the worker nodes the demo and tests start use it)."""

import sys

from .main import main

sys.exit(main())
