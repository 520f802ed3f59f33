"""Settings, passed explicitly to every function that needs one.

There are no module-level switches: a :class:`Settings` is frozen, so it can be shared
between threads, worker processes and the web server without surprises.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

from dicomsieve.errors import ConfigError

__all__ = ["Settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Limits and policies for scanning, and the tolerances of examine.

    Parameters
    ----------
    jobs
        Worker processes that parse files. ``0`` means one per core; ``1`` still uses
        one worker process (so a crash costs only one file).
    file_timeout_s
        Wall-clock seconds one file may take in a worker before the worker is killed
        and the file gets ``PARSE_TIMEOUT``.
    worker_memory_mb
        Address-space limit of each worker process (``RLIMIT_AS``), in MiB. ``0`` disables it.
    header_chunk_bytes
        First read of each file. Most headers fit; longer ones are read on demand.
    max_inflated_bytes
        Hard cap for a deflated dataset after inflation.
    inflate_floor_bytes
        A deflated dataset may always inflate to this size (small uniform images compress
        more than 50:1), up to ``max_inflated_bytes``.
    max_inflate_ratio
        Beyond the floor, a deflated dataset may inflate to this multiple of the file size.
    max_sequence_depth
        Deepest nesting of sequences accepted before ``PARSE_TOO_DEEP``.
    follow_symlinks_outside_root
        Follow symbolic links whose target lies outside the scanned root.
    batch_size
        Files sent to a worker at a time. (A scan writes what the workers send in
        transactions of about 256 files, or of what came in 0.2 s when reading is slow.)
    orientation_tolerance_deg
        Two images whose row or column directions differ by less than this angle share
        an orientation (examine clusters by it).
    position_tolerance_mm
        Two slices closer than this along the normal are at the same position.
    spacing_tolerance_mm, spacing_tolerance_rel
        Slice gaps are equal when they differ from the median gap by at most
        ``max(spacing_tolerance_mm, spacing_tolerance_rel * median gap)``.
    tilt_tolerance_deg
        Stacking that deviates from the slice normal by more than this is a gantry tilt.
    orthonormal_tolerance
        Largest accepted deviation of the direction cosines from unit length and from
        perpendicular (as a dot product).
    pixel_spacing_tolerance_mm
        PixelSpacing values closer than this are the same matrix.
    """

    jobs: int = 0
    file_timeout_s: float = 30.0
    worker_memory_mb: int = 2048
    header_chunk_bytes: int = 16 * 1024
    max_inflated_bytes: int = 256 * 1024 * 1024
    inflate_floor_bytes: int = 64 * 1024 * 1024
    max_inflate_ratio: int = 50
    max_sequence_depth: int = 32
    follow_symlinks_outside_root: bool = False
    batch_size: int = 64
    orientation_tolerance_deg: float = 1.0
    position_tolerance_mm: float = 0.01
    spacing_tolerance_mm: float = 0.05
    spacing_tolerance_rel: float = 0.01
    tilt_tolerance_deg: float = 0.5
    orthonormal_tolerance: float = 1e-3
    pixel_spacing_tolerance_mm: float = 1e-3

    def __post_init__(self) -> None:
        if self.jobs < 0:
            raise ConfigError(f"jobs must be >= 0, got {self.jobs}")
        if self.file_timeout_s <= 0:
            raise ConfigError(f"file_timeout_s must be > 0, got {self.file_timeout_s}")
        if self.worker_memory_mb < 0:
            raise ConfigError(f"worker_memory_mb must be >= 0, got {self.worker_memory_mb}")
        if self.header_chunk_bytes < 1024:
            raise ConfigError("header_chunk_bytes must be at least 1024")
        if self.max_sequence_depth < 1:
            raise ConfigError("max_sequence_depth must be at least 1")
        if self.batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        for name in (
            "orientation_tolerance_deg",
            "position_tolerance_mm",
            "spacing_tolerance_mm",
            "spacing_tolerance_rel",
            "tilt_tolerance_deg",
            "orthonormal_tolerance",
            "pixel_spacing_tolerance_mm",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")

    @property
    def worker_count(self) -> int:
        """The number of worker processes ``jobs`` stands for."""
        return self.jobs or (os.cpu_count() or 1)

    def inflate_cap(self, file_size: int) -> int:
        """Most bytes a deflated dataset of ``file_size`` bytes may inflate to."""
        by_ratio = max(file_size, 1) * self.max_inflate_ratio
        return min(self.max_inflated_bytes, max(self.inflate_floor_bytes, by_ratio))

    def with_changes(self, **changes: object) -> Settings:
        """Return a copy with some fields changed (validated like a new instance)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        return replace(self, **changes)  # type: ignore[arg-type]
