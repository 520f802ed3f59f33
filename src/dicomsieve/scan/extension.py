"""The optional C extension of the readers (``_native.c``), one function at a time.

It is built where a compiler was at hand at install; without it every reader runs its
Python code, which stays the reference (the tests compare both).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["extension_function"]


def extension_function(name: str) -> Any:
    """The function ``name`` of ``dicomsieve.scan._native``, or ``None`` where the
    extension is not built."""
    try:
        module = importlib.import_module("dicomsieve.scan._native")
    except ImportError:  # pragma: no cover - exercised on machines without a compiler
        return None
    return getattr(module, name)
