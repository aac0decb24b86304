"""kombu's compression header, bounded (worker/queue/compression.py): bombs stop at the limit, unknown or
unbounded formats are refused, honest compressed bodies still decompress."""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterator

import pytest
from kombu import compression as kombu_compression

from worker.config import Settings
from worker.errors import MalformedMessage
from worker.queue import compression

LIMIT = 1024 * 1024
FORMATS: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("zlib", zlib.compress), ("gzip", zlib.compress), ("application/x-gzip", zlib.compress),
    ("bzip2", bz2.compress), ("application/x-bz2", bz2.compress), ("xz", lzma.compress), ("lzma", lzma.compress),
]  # fmt: skip


@pytest.fixture(autouse=True)
def installed() -> Iterator[None]:
    compression.install(LIMIT)
    yield
    compression.install(Settings().max_message_bytes)  # as every app of this process installs it


@pytest.mark.parametrize(("name", "compress"), FORMATS, ids=[name for name, _ in FORMATS])
def test_a_bomb_stops_at_the_limit(name: str, compress: Callable[[bytes], bytes]) -> None:
    bomb = compress(b"\0" * (64 * LIMIT))
    assert len(bomb) < LIMIT
    with pytest.raises(MalformedMessage, match=f"decompresses to more than {LIMIT} bytes"):
        kombu_compression.decompress(bomb, name)


@pytest.mark.parametrize(("name", "compress"), FORMATS, ids=[name for name, _ in FORMATS])
def test_an_honest_body_decompresses(name: str, compress: Callable[[bytes], bytes]) -> None:
    body = b'[["greeting", "greet", "x", null], {}, {}]' * 100
    assert kombu_compression.decompress(compress(body), name) == body
    exactly = b"x" * LIMIT
    assert kombu_compression.decompress(compress(exactly), name) == exactly


def test_a_format_that_cannot_be_bounded_is_refused() -> None:
    kombu_compression.register(lambda b: b, lambda b: b * 1000, "application/x-made-up", aliases=["madeup"])
    try:
        compression.install(LIMIT)
        with pytest.raises(MalformedMessage, match="compression application/x-made-up is not accepted"):
            kombu_compression.decompress(b"x", "madeup")
    finally:
        kombu_compression._encoders.pop("application/x-made-up", None)
        kombu_compression._decoders.pop("application/x-made-up", None)
        kombu_compression._aliases.pop("madeup", None)


def test_an_unknown_format_is_an_error_for_kombu_to_report() -> None:
    with pytest.raises(KeyError):
        kombu_compression.decompress(b"x", "application/x-snappy")


def test_the_limit_follows_the_last_install() -> None:
    compression.install(2 * LIMIT)
    assert len(kombu_compression.decompress(zlib.compress(b"y" * (2 * LIMIT)), "zlib")) == 2 * LIMIT
