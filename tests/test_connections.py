"""`redact`: what any message, log line or error shows of a URL never holds its password, however written."""

from __future__ import annotations

import pytest

from worker.connections import redact

SECRET = "Sup3r-S3cret"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"redis://:{SECRET}@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        (f"redis://user:{SECRET}@h/0", "redis://user:***@h/0"),
        (f"rediss://:{SECRET}@h:6380", "rediss://:***@h:6380"),
        (f"amqp://guest:{SECRET}@rabbit:5672//", "amqp://guest:***@rabbit:5672//"),
        (f"redis://:{SECRET}@with@at@h/0", "redis://:***@h/0"),  # an unescaped @ in the password
        (f"redis://u:{SECRET}/slash@h/0", "redis://u:***@h/0"),  # an unescaped / in the password
        (f"redis://:{SECRET}%40enc@h/0", "redis://:***@h/0"),
        (f"redis://h:6379/0?password={SECRET}&db=1", "redis://h:6379/0?password=***&db=1"),
        (
            f"sentinel://:{SECRET}@s1:26379;sentinel://u:{SECRET}@s2:26379/0",
            "sentinel://:***@s1:26379;sentinel://u:***@s2:26379/0",
        ),
        (
            f"broker unreachable at 'redis://:{SECRET}@h:1/0': Error 111 (worker w1@host)",
            "broker unreachable at 'redis://:***@h:1/0': Error 111 (worker w1@host)",
        ),
        (
            f'{{"url": "redis://:{SECRET}@h/0", "other": "redis://x@y/1"}}',
            '{"url": "redis://:***@h/0", "other": "redis://x@y/1"}',
        ),
    ],
)
def test_passwords_are_hidden(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert SECRET not in redact(text)


@pytest.mark.parametrize("text", ["redis://127.0.0.1:6379/0", "redis://user@h/0", "worker w1@host done", "plain"])
def test_text_without_a_password_is_unchanged(text: str) -> None:
    assert redact(text) == text
