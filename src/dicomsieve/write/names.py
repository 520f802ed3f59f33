"""Output file names from a template, safe by construction.

A name is built from header values through a template such as
``{SeriesNumber}_{SeriesDescription}_{kind}``; every character outside an allowlist
becomes ``_``, so nothing taken from DICOM can add a folder, climb out of the output
folder or hide a file. Patient identifiers are not offered as fields.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from dicomsieve.errors import ConfigError

if TYPE_CHECKING:
    from dicomsieve.loadables.model import Loadable

__all__ = ["DEFAULT_TEMPLATE", "FIELDS", "output_stem", "safe_component"]

DEFAULT_TEMPLATE: Final = "{SeriesNumber}_{SeriesDescription}{qualifiers}_{kind}"

FIELDS: Final = (
    "SeriesNumber",
    "SeriesDescription",
    "ProtocolName",
    "Modality",
    "AcquisitionTime",
    "kind",
    "name",
    "qualifiers",
    "index",
)
"""Fields a template may use. ``qualifiers`` is the bracketed part of the loadable's
name without the kind (``_echo-1_phase``), ``index`` its number within the series (1-based)."""

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._+-]+")
_MAX_STEM: Final = 150
_SUFFIX_ROOM: Final = 20


def safe_component(text: str, max_length: int = _MAX_STEM) -> str:
    """``text`` reduced to ``[A-Za-z0-9._+-]``: runs of anything else become one ``_``,
    runs of dots one dot, no dot, dash or underscore at either end, at most
    ``max_length`` characters, never empty. Applying it again changes nothing."""
    cleaned = _UNSAFE.sub("_", text)
    cleaned = re.sub(r"_{2,}", "_", cleaned)
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    cleaned = cleaned.strip("._-")[:max_length].strip("._-")
    return cleaned or "unnamed"


_NUMERIC_FIELDS: Final = frozenset({"SeriesNumber", "index"})


def check_template(template: str) -> None:
    """Raise :class:`ConfigError` for a template with unknown fields or bad syntax.

    The template is tried on sample values (numbers for ``SeriesNumber`` and ``index``,
    text for the rest), so bad conversions and format specs are caught before anything
    is written.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"bad name template {template!r}: {exc}") from exc
    for _, field, _, _ in parsed:
        if field is not None and field not in FIELDS:
            raise ConfigError(
                f"unknown field {{{field}}} in the name template; known: {', '.join(FIELDS)}"
            )
    sample = {name: (1 if name in _NUMERIC_FIELDS else "x") for name in FIELDS}
    try:
        template.format(**sample)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ConfigError(f"bad name template {template!r}: {exc}") from exc


def _render(template: str, fields: Mapping[str, object]) -> str:
    """Format field by field; a value that does not suit its format spec (a missing
    SeriesNumber under ``{SeriesNumber:03d}``) is written plainly instead."""
    out: list[str] = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        out.append(literal)
        if field is None:
            continue
        value = fields.get(field, "")
        if conversion == "r":
            value = repr(value)
        elif conversion in ("s", "a"):
            value = str(value) if conversion == "s" else ascii(value)
        try:
            out.append(format(value, spec or ""))
        except (ValueError, TypeError):
            out.append(str(value))
    return "".join(out)


def _qualifiers(loadable: Loadable) -> str:
    match = re.search(r"\[(.*)\]", loadable.name)
    if not match:
        return ""
    kind = str(loadable.kind)
    parts = [p.strip().replace(" ", "-") for p in match.group(1).split(",")]
    return "".join(f"_{p}" for p in parts if p and p != kind)


def output_stem(template: str, loadable: Loadable, values: Mapping[str, object], index: int) -> str:
    """The file name (without extension) of one loadable.

    Parameters
    ----------
    template
        A ``str.format`` template over :data:`FIELDS`.
    loadable
        The loadable written.
    values
        Header values by field name (missing ones become empty).
    index
        The loadable's 1-based number within its series.
    """
    check_template(template)
    fields: dict[str, object] = {name: values.get(name, "") or "" for name in FIELDS}
    fields.update(
        kind=str(loadable.kind), name=loadable.name, qualifiers=_qualifiers(loadable), index=index
    )
    # Room is left for the suffixes convert may add (_resampled, _2).
    return safe_component(_render(template, fields), max_length=_MAX_STEM - _SUFFIX_ROOM)
