"""Types of the C element walk (``_walk.c``); see ``fastread._walk_natively``."""

from typing import Any

def walk(
    buffer: bytes,
    size: int,
    pos: int,
    little: bool,
    explicit: bool,
    spec: dict[int, object],
    max_depth: int,
    vr_of: dict[int, str],
    pixel_tags: frozenset[int],
    presence: object,
    /,
) -> tuple[Any, ...]: ...
