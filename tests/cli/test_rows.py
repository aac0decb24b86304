"""The files of `wasmq batch`: lines read lazily, rows, and resuming from a cut-off output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.cli.rows import count_lines, input_lines, resume, row
from worker.errors import InvalidInput, UsageError
from worker.outcome import Outcome


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


@pytest.mark.parametrize(
    "text", ["Alice", "", 'q"uo\\te', "\x01\x1f ctl", "\u2028 line sep", "Zoë 🌍 李雷", "x" * 5000]
)
def test_a_row_written_directly_is_the_row_json_would_write(text: str) -> None:
    for meta in ({"worker": "celery@h", "attempt": 2}, {}):
        got = row(3, text, Outcome(ok=True, output=f"Hello World, {text}!", meta=meta))
        want = {"index": 3, "input": text, "ok": True, "output": f"Hello World, {text}!",
                "worker": meta.get("worker"), "attempt": meta.get("attempt")}  # fmt: skip
        assert got == json.dumps(want, ensure_ascii=False) + "\n"
        assert json.loads(got) == want
