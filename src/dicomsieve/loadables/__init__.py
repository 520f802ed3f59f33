"""The examine layer: indexed records in, loadables out (pure functions, no I/O)."""

from __future__ import annotations

from dicomsieve.loadables.examine import examine_instances, examine_series
from dicomsieve.loadables.model import (
    Examination,
    ExamineWarning,
    Loadable,
    SeriesExamination,
    SliceRef,
    SourceInstance,
)
from dicomsieve.loadables.reference import ReferenceLine, reference_lines

__all__ = [
    "Examination",
    "ExamineWarning",
    "Loadable",
    "ReferenceLine",
    "SeriesExamination",
    "SliceRef",
    "SourceInstance",
    "examine_instances",
    "examine_series",
    "reference_lines",
]
