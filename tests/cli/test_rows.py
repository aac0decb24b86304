"""The files of `wasmq batch`: lines read lazily, rows, and resuming from a cut-off output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from worker.chunk_result import Answers
from worker.cli.rows import count_lines, input_lines, resume, row, slot_rows
from worker.errors import InvalidInput, ModuleTrap, UsageError
from worker.outcome import Outcome
from worker.producer.slots import Slot


def test_lines_are_read_one_by_one_and_a_bad_line_is_its_own_error(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes(b"a\r\nb\n\xff\nlast")
    with input_lines(str(path)) as lines:
        got = list(lines)
    assert got[:2] == ["a", "b"] and got[3] == "last"
    assert isinstance(got[2], InvalidInput) and "line 3" in got[2].message
    assert count_lines(str(path)) == 4
    path.write_bytes(b"x\ny\n")
    assert count_lines(str(path)) == 2


def _rows(names: list[str]) -> str:
    return "".join(row(i, n, Outcome(ok=True, output=f"Hello World, {n}!", meta={"worker": "w"}))
                   for i, n in enumerate(names))  # fmt: skip


def test_resume_keeps_whole_matching_rows_and_cuts_a_partial_one(tmp_path: Path) -> None:
    names = [f"n{i}" for i in range(10)]
    out = tmp_path / "out.jsonl"
    text = _rows(names[:4])
    out.write_text(text + text.splitlines()[0][:15])  # killed in the middle of writing a row
    lines = iter(names)
    assert resume(out, lines, source="in.txt") == 4
    assert next(lines) == "n4"  # the inputs already answered were consumed
    assert out.read_text() == text
    assert [json.loads(x)["worker"] for x in out.read_text().splitlines()] == ["w"] * 4
    assert resume(tmp_path / "missing.jsonl", iter(names), source="in.txt") == 0


def test_resume_refuses_rows_of_another_input(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(_rows(["a", "b"]))
    with pytest.raises(UsageError, match="not this batch's output"):
        resume(out, iter(["a", "z"]), source="in.txt")
    with pytest.raises(UsageError, match="more rows than"):
        resume(out, iter(["a"]), source="in.txt")


TEXTS = ["Alice", "", 'q"uo\\te', "\x01\x1f ctl", "\u2028 line sep", "Zoë 🌍 李雷", "x" * 5000]


def test_rows_written_directly_are_the_rows_json_would_write() -> None:
    """A chunk's common rows are formatted by hand; they must be exactly json.dumps' rows, whoever answered
    (two messages, one with no worker name), next to a failed input, a refused one and one that was not text."""
    texts = [*TEXTS, "fails", "", "refused"]
    refused = InvalidInput("input 9 must be a string, not int")
    slot = Slot(texts, {9: refused, 8: InvalidInput("too large")}, foreign={9})
    meta_a, meta_b = {"worker": "celery@h", "attempt": 2}, {"worker": None, "attempt": 1}
    answers = Answers([f"Hello World, {t}!" for t in TEXTS[:4]], {})
    slot.fill([0, 1, 2, 3], answers, meta_a)
    slot.fill([4, 5, 6, 7], Answers([f"Hello World, {t}!" for t in TEXTS[4:]] + [None], {3: ModuleTrap("x")}), meta_b)
    got = [line + "\n" for line in slot_rows(10, slot).split("\n")[:-1]]  # not splitlines: U+2028 is in a row
    assert len(got) == len(texts)
    for p, line in enumerate(got):
        outcome = slot.outcome(p)
        want: dict[str, Any] = {"index": 10 + p, "input": None if p == 9 else texts[p], "ok": outcome.ok}
        if outcome.ok:
            want["output"] = f"Hello World, {texts[p]}!"
        else:
            assert outcome.error is not None
            want["error"] = outcome.error.to_dict()
        want.update(worker=outcome.meta.get("worker"), attempt=outcome.meta.get("attempt"))
        assert line == json.dumps(want, ensure_ascii=False) + "\n"
    assert [json.loads(line)["ok"] for line in got].count(False) == 3


def test_rows_of_a_per_item_usage_chunk_carry_each_usage() -> None:
    slot = Slot(["a", "b"], {}, set())
    slot.fill([0, 1], Answers(["A", "B"], {}, [{"fuel": 1}, {"fuel": 2}]), {"worker": "w", "attempt": 1})
    assert [json.loads(line)["usage"] for line in slot_rows(0, slot).splitlines()] == [{"fuel": 1}, {"fuel": 2}]
