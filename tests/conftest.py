"""Shared fixtures: the shared real-data folder, a fresh index, small settings."""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomsieve.index.store import Index
from dicomsieve.settings import Settings

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data_dir() -> Path:
    """``../shared/data``: skip when absent, fail when absent under ``CI=true``."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the shared test data is missing at {SHARED_DATA}")
    pytest.skip(f"shared test data not found at {SHARED_DATA} (real DICOM collections)")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only folder of public DICOM collections."""
    return shared_data_dir()


@pytest.fixture(scope="session")
def shared_data_plain(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A copy of every DICOM input in ``../shared/data`` with ``.dcm.gz`` files gunzipped.

    Plain files are copied and gzipped ones decompressed into a temporary
    folder. The shared folder itself is never written.
    """
    out = tmp_path_factory.mktemp("shared-plain")
    for path in sorted(shared_data.rglob("*")):
        if not path.is_file():
            continue
        target = out / path.relative_to(shared_data)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.name.endswith(".dcm.gz"):
            with gzip.open(path) as src, open(target.with_suffix(""), "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            shutil.copyfile(path, target)
    return out


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    """A fresh index database in a temporary folder."""
    with Index(tmp_path / "index.sqlite") as db:
        yield db


@pytest.fixture
def settings() -> Settings:
    """Small, fast settings for tests: two workers, small batches, a short timeout."""
    return Settings(jobs=2, batch_size=8, file_timeout_s=20, inflate_floor_bytes=4 * 1024 * 1024)
