"""The error taxonomy: type strings, retryable flags, JSON and pickle round trips."""

from __future__ import annotations

import ast
import json
import pickle
from pathlib import Path

import pytest

from worker.errors import (
    ERROR_TYPES,
    BrokerUnavailable,
    ConfigError,
    DeadlineExceeded,
    FuelExhausted,
    InternalError,
    InvalidInput,
    InvalidOutput,
    JobFailed,
    JobTimeout,
    MalformedMessage,
    MemoryLimitExceeded,
    ModuleNotFound,
    ModuleRejected,
    ModuleTrap,
    NotRequeueable,
    PublishConflict,
    PublishDenied,
    RegistryUnavailable,
    ResultTooLarge,
    UsageError,
    WasmqError,
    WorkerLost,
)

ROOT = Path(__file__).resolve().parent.parent
RETRYABLE: set[type[WasmqError]] = {
    DeadlineExceeded,
    WorkerLost,
    BrokerUnavailable,
    JobTimeout,
    RegistryUnavailable,
    ResultTooLarge,
}
NOT_RETRYABLE: set[type[WasmqError]] = {
    ModuleNotFound,
    ModuleRejected,
    InvalidInput,
    FuelExhausted,
    MemoryLimitExceeded,
    ModuleTrap,
    InvalidOutput,
    JobFailed,
    ConfigError,
    PublishConflict,
    PublishDenied,
    NotRequeueable,
    MalformedMessage,
    UsageError,
    InternalError,
}


def _type_name(cls: type[WasmqError]) -> str:
    return cls.type


ALL_TYPES = sorted(ERROR_TYPES.values(), key=_type_name)
RETRYABLE_TYPES = sorted(RETRYABLE, key=_type_name)
NOT_RETRYABLE_TYPES = sorted(NOT_RETRYABLE, key=_type_name)


def test_every_error_type_is_registered_under_its_type_string() -> None:
    assert set(ERROR_TYPES.values()) == RETRYABLE | NOT_RETRYABLE
    for name, cls in ERROR_TYPES.items():
        assert cls.type == name == cls.__name__
        assert issubclass(cls, WasmqError)
        assert cls.__doc__


@pytest.mark.parametrize("cls", RETRYABLE_TYPES, ids=_type_name)
def test_retryable(cls: type[WasmqError]) -> None:
    assert cls.retryable is True
    assert cls("x").to_dict()["retryable"] is True


@pytest.mark.parametrize("cls", NOT_RETRYABLE_TYPES, ids=_type_name)
def test_not_retryable(cls: type[WasmqError]) -> None:
    assert cls.retryable is False
    assert cls("x").to_dict()["retryable"] is False


@pytest.mark.parametrize("cls", ALL_TYPES, ids=_type_name)
def test_dict_round_trip(cls: type[WasmqError]) -> None:
    err = cls("it broke", {"trap_code": "unreachable", "usage": {"fuel": 5}}, exit_code=3)
    data = err.to_dict()
    assert data == {
        "type": cls.type,
        "message": "it broke",
        "retryable": cls.retryable,
        "trap_code": "unreachable",
        "usage": {"fuel": 5},
        "exit_code": 3,
    }
    back = WasmqError.from_dict(json.loads(json.dumps(data)))
    assert type(back) is cls
    assert back.message == err.message
    assert back.details == err.details
    assert back.to_dict() == data
    assert str(back) == "it broke"


@pytest.mark.parametrize("cls", ALL_TYPES, ids=_type_name)
def test_pickle_round_trip(cls: type[WasmqError]) -> None:
    err = cls("it broke", trap_code="stack_overflow")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert back.to_dict() == err.to_dict()


def test_rebuilding_from_args_keeps_details() -> None:
    # Celery's JSON result backend rebuilds an exception as cls(*args).
    err = ModuleTrap("trapped", trap_code="unreachable")
    back = ModuleTrap(*err.args)
    assert back.to_dict() == err.to_dict()


def test_unknown_type_becomes_job_failed() -> None:
    back = WasmqError.from_dict({"type": "SomethingNew", "message": "from the future", "retryable": True, "x": 1})
    assert type(back) is JobFailed
    assert back.message == "from the future"
    assert back.details == {"x": 1, "original_type": "SomethingNew"}
    assert back.retryable is False


def test_from_dict_tolerates_missing_fields() -> None:
    back = WasmqError.from_dict({})
    assert type(back) is JobFailed
    assert back.message == ""


def test_keyword_details_override_the_dict() -> None:
    assert InvalidOutput("m", {"a": 1, "b": 2}, b=3).details == {"a": 1, "b": 3}


def test_every_raised_wasmq_error_is_a_named_leaf() -> None:
    """No `raise WasmqError(...)` anywhere: a caller can always catch the specific failure by its class."""
    bare = []
    for path in sorted((ROOT / "worker").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                if isinstance(func, ast.Name) and func.id == "WasmqError":
                    bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bare == []
