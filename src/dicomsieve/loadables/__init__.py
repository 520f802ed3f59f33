"""The examine layer: indexed records in, loadables out (pure functions, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from dicomsieve._lazy import lazy_attributes

if TYPE_CHECKING:
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

# Imported on first use: the index layer needs the model, not examine's numpy.
_EXPORTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Examination": "dicomsieve.loadables.model",
        "ExamineWarning": "dicomsieve.loadables.model",
        "Loadable": "dicomsieve.loadables.model",
        "ReferenceLine": "dicomsieve.loadables.reference",
        "SeriesExamination": "dicomsieve.loadables.model",
        "SliceRef": "dicomsieve.loadables.model",
        "SourceInstance": "dicomsieve.loadables.model",
        "examine_instances": "dicomsieve.loadables.examine",
        "examine_series": "dicomsieve.loadables.examine",
        "reference_lines": "dicomsieve.loadables.reference",
    }
)


__getattr__ = lazy_attributes(__name__, _EXPORTS, globals())


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
