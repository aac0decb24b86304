"""WASI is linked with nothing granted: no files, no environment; output is bounded; proc_exit is a trap."""

from __future__ import annotations

import pytest

from worker.errors import ModuleTrap
from worker.sandbox import Sandbox
from worker.sandbox.wasi import CapturedStream

CHATTY_BYTES = 1024 * 1024  # chatty writes 16 x 64 KiB to stdout and to stderr (tests/corpora/hostile/wasi_probe.rs)


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "/etc/hostname", "/proc/self/environ", "secret.txt", "../../../../etc/passwd", ".", "/"]
)
def test_file_open_is_denied(sandbox: Sandbox, path: str) -> None:
    output = sandbox.call("wasi-probe", "read_secret", path).output
    assert output.startswith("denied:"), output
    assert "root:" not in output


def test_environment_is_not_visible(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASMQ_UNIT_SECRET", "hunter2")
    for name in ("HOME", "PATH", "WASMQ_UNIT_SECRET"):
        assert sandbox.call("wasi-probe", "env_probe", name).output == "unset"


def test_chatty_output_is_bounded(sandbox: Sandbox) -> None:
    limit = sandbox.settings.max_captured_output
    result = sandbox.call("wasi-probe", "chatty", "Bob")
    assert result.output == "Hello World, Bob!"
    for captured in (result.stdout, result.stderr):
        note = f"\n[... {CHATTY_BYTES - limit} more bytes dropped]"
        assert captured.endswith(note)
        assert captured[: -len(note)] == "x" * limit
        assert len(captured) <= limit + len(note)


def test_quiet_modules_capture_nothing(sandbox: Sandbox) -> None:
    result = sandbox.call("wasi-probe", "env_probe", "HOME")
    assert (result.stdout, result.stderr) == ("", "")


def test_exit_is_a_trap_with_its_code(sandbox: Sandbox) -> None:
    with pytest.raises(ModuleTrap) as info:
        sandbox.call("wasi-probe", "exit_now", "")
    assert info.value.details["trap_code"] == "exit"
    assert info.value.details["exit_code"] == 3
    assert sandbox.call("wasi-probe", "env_probe", "HOME").output == "unset"


def test_captured_stream_keeps_a_prefix_and_counts_the_rest() -> None:
    stream = CapturedStream(5)
    assert stream.write(b"abc") == 3
    assert stream.write(b"defgh") == 5  # the guest is told everything was written
    assert stream.write(b"ij") == 2
    assert stream.kept == 5
    assert stream.dropped == 5
    assert stream.text() == "abcde\n[... 5 more bytes dropped]"


def test_captured_stream_under_the_limit_has_no_note() -> None:
    stream = CapturedStream(100)
    stream.write("héllo".encode())
    assert stream.text() == "héllo"
