"""Types of the C element walk (``_native.c``); see ``fastread._walk_natively``."""

from collections.abc import Callable, Sequence
from typing import Any

def compile_spec(spec: dict[int, object], /) -> object: ...
def walk(
    buffer: bytes,
    size: int,
    pos: int,
    little: bool,
    explicit: bool,
    spec: object,
    max_depth: int,
    vr_of: dict[int, str],
    pixel_tags: frozenset[int],
    presence: object,
    /,
) -> tuple[Any, ...]: ...
def decode(
    tree: dict[int, object],
    little: bool,
    codec: str | None,
    raw_tags: frozenset[int],
    decode_text: Callable[[str, bytes, str | None], tuple[object, ...]],
    /,
) -> dict[int, object]: ...
def extract(
    tree: dict[int, object], table: tuple[tuple[int, int, int | None], ...], /
) -> list[object]: ...
def meta(buffer: bytes, size: int, pos: int, wanted: frozenset[int], /) -> tuple[Any, ...]: ...
def json(value: object, /) -> str: ...
def has_creator(tree: dict[int, object], creators: dict[int, frozenset[str]], /) -> bool: ...
def walk_decoded(
    buffer: bytes,
    size: int,
    pos: int,
    little: bool,
    explicit: bool,
    spec: object,
    max_depth: int,
    vr_of: dict[int, str],
    pixel_tags: frozenset[int],
    presence: object,
    raw_tags: frozenset[int],
    /,
) -> tuple[Any, ...]: ...
def compact(row: Sequence[object], /) -> tuple[int, tuple[object, ...]]: ...
