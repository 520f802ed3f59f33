"""Tests of the C extension: they skip where it is not built, and fail so under CI."""

from __future__ import annotations

import importlib
import os
from typing import Any, NoReturn

import pytest


def native_missing(what: str) -> NoReturn:
    """Skip the test (fail it under ``CI=true``): ``what`` is not built."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {what} (dicomsieve.scan._native) is not built")
    pytest.skip(f"{what} (dicomsieve.scan._native) is not built on this machine")


def native_function(name: str) -> Any:
    """The function ``name`` of the C extension (see :func:`native_missing`)."""
    try:
        module = importlib.import_module("dicomsieve.scan._native")
    except ImportError:
        native_missing("the C extension")
    return getattr(module, name)
