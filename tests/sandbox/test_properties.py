"""Property tests: for any name, every ABI of both modules answers the exact greeting or a typed InvalidInput."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.sandbox import GREETERS, greeting
from worker.errors import InvalidInput, WasmqError
from worker.sandbox import CallResult, Sandbox
from worker.sandbox.validate import decode_frames, encode_frames

SEED_C = "wasm_memory_c_format_hello_world"
SMALL_INPUT_LIMIT = 32  # bytes: narrowed per call so that "oversize" names are cheap to generate

# Any Unicode text (multi-byte characters drawn often, so some names exceed the small input limit), and in
# some examples one spoiler: a lone surrogate (not encodable as UTF-8) or NUL (no C string can carry it).
unicode_text = st.text(alphabet=st.one_of(st.characters(), st.sampled_from("é日🌍")), max_size=40)
spoilers = st.sampled_from([None, None, None, "\0", "\ud800", "\udfff", "\udc80"])


def _insert(parts: tuple[str, str | None, int]) -> str:
    text, spoiler, at = parts
    return text if spoiler is None else text[:at] + spoiler + text[at:]


names = st.tuples(unicode_text, spoilers, st.integers(0, 40)).map(_insert)
fast = settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _encodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def expected(function: str, name: str, max_input: int) -> str | None:
    """The greeting the call must answer, or None when it must be refused as InvalidInput."""
    if not _encodable(name) or len(name.encode()) > max_input:
        return None
    if function == SEED_C and "\0" in name:
        return None
    return greeting(name)


@pytest.mark.parametrize(("module", "function"), GREETERS)
@fast
@given(name=names)
def test_any_name_greets_or_is_refused(sandbox: Sandbox, module: str, function: str, name: str) -> None:
    want = expected(function, name, SMALL_INPUT_LIMIT)
    limits = {"max_input_bytes": SMALL_INPUT_LIMIT}
    if want is None:
        with pytest.raises(InvalidInput):
            sandbox.call(module, function, name, limits)
    else:
        assert sandbox.call(module, function, name, limits).output == want


@pytest.mark.parametrize(("module", "function"), GREETERS)
@fast
@given(name=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\0"), max_size=300))
def test_encodable_names_round_trip_under_the_module_limit(
    sandbox: Sandbox, module: str, function: str, name: str
) -> None:
    assert sandbox.call(module, function, name).output == greeting(name)


@pytest.mark.parametrize(("module", "function"), GREETERS)
def test_empty_and_oversize_names(sandbox: Sandbox, module: str, function: str) -> None:
    assert sandbox.call(module, function, "").output == greeting("")
    limit = sandbox.catalog.resolve(module).limits.max_input_bytes
    with pytest.raises(InvalidInput, match="over the limit"):
        sandbox.call(module, function, "n" * (limit + 1))


@pytest.mark.parametrize("module", ["greeting", "greeting-c"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(names, max_size=12))
def test_batch_equals_single_calls(sandbox: Sandbox, module: str, batch: list[str]) -> None:
    limits = {"max_input_bytes": SMALL_INPUT_LIMIT}
    results = sandbox.call_many(module, "greet", batch, limits)
    assert len(results) == len(batch)
    for name, result in zip(batch, results, strict=True):
        want = expected("greet", name, SMALL_INPUT_LIMIT)
        if want is None:
            assert isinstance(result, WasmqError) and result.type == "InvalidInput"
        else:
            assert isinstance(result, CallResult) and result.output == want


@settings(max_examples=100, deadline=None)
@given(items=st.lists(st.binary(max_size=64), max_size=20))
def test_frames_round_trip(items: list[bytes]) -> None:
    assert decode_frames(encode_frames(items), expected=len(items), max_item_bytes=64) == items
