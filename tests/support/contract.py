"""The message contract's JSON Schema (docs/contract/), for the tests that hold messages and results to it."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "docs" / "contract" / "wasmq.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())


def validator(definition: str) -> Draft202012Validator:
    """A validator of one definition of the schema (`message`, `result`, `error`, ...)."""
    return Draft202012Validator({"$ref": f"#/$defs/{definition}", "$defs": SCHEMA["$defs"]})


MESSAGE = validator("message")
RESULT = validator("result")


def from_redis_entry(entry: bytes | str) -> dict[str, Any]:
    """A Redis queue entry as the schema describes a message: the envelope's fields, its body decoded."""
    envelope = json.loads(entry)
    body = envelope["body"]
    if envelope["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body)
    return {
        "headers": envelope["headers"],
        "content-type": envelope.get("content-type"),
        "content-encoding": envelope.get("content-encoding"),
        "queue": envelope["properties"]["delivery_info"]["routing_key"],
        "body": json.loads(body),
    }


def problems(validator_: Draft202012Validator, value: Any) -> list[str]:
    """Why `value` breaks the schema (empty when it does not), short enough for an assertion message."""
    return [f"{list(e.absolute_path)}: {e.message[:300]}" for e in validator_.iter_errors(value)]
