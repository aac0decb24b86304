"""A progress bar on a terminal (rich), silence elsewhere; and the closing summary of a batch."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from ..outcome import Outcome

if TYPE_CHECKING:
    from ..producer.client import Progress


@contextmanager
def progress_bar(label: str, *, stream: IO[str] | None = None, force: bool = False) -> Iterator[Progress]:
    """Yield a `progress(done, total)` callback that draws a bar when `stream` is a terminal."""
    out = stream or sys.stderr
    if not (force or out.isatty()):
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    with Bar(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=out, force_terminal=force or None),
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


def summarize(outcomes: Sequence[Outcome], seconds: float) -> dict[str, Any]:
    """done, failed by error type, throughput."""
    failed = Counter(o.error.type for o in outcomes if o.error is not None)
    ok = sum(1 for o in outcomes if o.ok)
    return {
        "total": len(outcomes),
        "succeeded": ok,
        "failed": sum(failed.values()),
        "failed_by_type": dict(sorted(failed.items())),
        "seconds": round(seconds, 3),
        "per_second": round(len(outcomes) / seconds, 1) if seconds > 0 else None,
    }


def summary_text(summary: dict[str, Any]) -> str:
    lines = [
        f"done: {summary['total']} jobs in {summary['seconds']:.2f} s ({summary['per_second']} jobs/s)",
        f"  succeeded: {summary['succeeded']}",
        f"  failed:    {summary['failed']}",
    ]
    lines += [f"    {kind}: {count}" for kind, count in summary["failed_by_type"].items()]
    return "\n".join(lines)
