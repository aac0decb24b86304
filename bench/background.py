"""A measurement that runs in a thread for as long as a `with` block: started on entry, stopped and joined
on exit. Subclasses write `_run`, which returns once `self._stop` is set."""

from __future__ import annotations

import threading
from typing import Self


class Background:
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
