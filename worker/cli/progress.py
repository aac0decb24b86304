"""Progress while a batch runs, and the closing summary.

On a terminal: a bar (rich) with items done, rate, ETA and failures so far. Elsewhere (a log file, CI): one
plain line every `LINE_EVERY_S` seconds and one at the end, so a long batch in the background says how it is
doing without drawing control characters into its log.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from ..outcome import Outcome

if TYPE_CHECKING:
    from ..producer.client import Progress

LINE_EVERY_S = 5.0
DRAW_EVERY_S = 0.1


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


class BatchProgress:
    """`update(done, failed)` as rows are written; drawn at most every `DRAW_EVERY_S` (a bar) or
    `LINE_EVERY_S` (lines)."""

    def __init__(self, label: str, total: int | None, *, stream: IO[str] | None = None, bar: bool | None = None,
                 start: int = 0) -> None:  # fmt: skip
        self.label, self.total, self.out = label, total, stream or sys.stderr
        self.start, self.watch = start, Stopwatch()
        self._bar: Any = None
        self._task: Any = None
        self._next = 0.0
        self._every = DRAW_EVERY_S
        self._last: tuple[int, int] = (start, 0)
        if self.out.isatty() if bar is None else bar:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TextColumn("ETA {task.fields[eta]}"),
                TextColumn("failed {task.fields[failed]}"), TimeElapsedColumn(),
                console=Console(file=self.out, force_terminal=bool(bar) or None),
            )  # fmt: skip
            self._bar.start()
            self._task = self._bar.add_task(label, total=total, completed=start, rate="", eta="?", failed=0)
        else:
            self._every = LINE_EVERY_S
            self._next = LINE_EVERY_S

    def update(self, done: int, failed: int, *, final: bool = False) -> None:
        self._last = (done, failed)
        now = self.watch.seconds
        if not final and now < self._next:
            return
        self._next = now + self._every
        rate = (done - self.start) / now if now > 0 else 0.0
        eta = (self.total - done) / rate if self.total is not None and rate > 0 else None
        if self._bar is not None:
            self._bar.update(self._task, completed=done, rate=f"{rate:,.0f}/s", eta=_duration(eta), failed=failed)
            return
        of = f"/{self.total}" if self.total is not None else ""
        pct = f" ({100 * done / self.total:.0f}%)" if self.total else ""
        print(f"{self.label}: {done}{of} done{pct}, {rate:,.0f}/s, {failed} failed, ETA {_duration(eta)}",
              file=self.out, flush=True)  # fmt: skip

    def close(self) -> None:
        self.update(*self._last, final=True)
        if self._bar is not None:
            self._bar.stop()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else (
        f"{seconds // 60}:{seconds % 60:02d}")  # fmt: skip


@contextmanager
def progress_bar(label: str, *, stream: IO[str] | None = None, force: bool = False) -> Iterator[Progress]:
    """A `progress(done, total)` callback for `Client.map`: a bar on a terminal, lines elsewhere."""
    shown: BatchProgress | None = None

    def update(done: int, total: int) -> None:
        nonlocal shown
        if shown is None:
            shown = BatchProgress(label, total, stream=stream, bar=True if force else None)
        shown.update(done, 0)

    try:
        yield update
    finally:
        if shown is not None:
            shown.close()


def summarize(done: int, failed: Counter[str] | dict[str, int], seconds: float) -> dict[str, Any]:
    """done, failed by error type, throughput."""
    failures = sum(failed.values())
    return {
        "total": done,
        "succeeded": done - failures,
        "failed": failures,
        "failed_by_type": dict(sorted(failed.items())),
        "seconds": round(seconds, 3),
        "per_second": round(done / seconds, 1) if seconds > 0 else None,
    }


def summarize_outcomes(outcomes: Iterable[Outcome], seconds: float) -> dict[str, Any]:
    outcomes = list(outcomes)
    return summarize(len(outcomes), Counter(o.error.type for o in outcomes if o.error is not None), seconds)


def summary_text(summary: dict[str, Any]) -> str:
    lines = [
        f"done: {summary['total']} jobs in {summary['seconds']:.2f} s ({summary['per_second']} jobs/s)",
        f"  succeeded: {summary['succeeded']}",
        f"  failed:    {summary['failed']}",
    ]
    lines += [f"    {kind}: {count}" for kind, count in summary["failed_by_type"].items()]
    return "\n".join(lines)
