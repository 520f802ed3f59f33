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
from typing import Final

from dicomsieve.errors import ConfigError
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


def safe_component(text: str) -> str:
    """``text`` reduced to ``[A-Za-z0-9._+-]``, runs of anything else as one ``_``, no
    leading dots or dashes, at most 150 characters; never empty."""
    cleaned = re.sub(r"_{2,}", "_", _UNSAFE.sub("_", text)).strip("_")
    cleaned = cleaned.lstrip(".-")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    return cleaned[:_MAX_STEM].rstrip("._-") or "unnamed"


def check_template(template: str) -> None:
    """Raise :class:`ConfigError` for a template with unknown fields or bad syntax."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"bad name template {template!r}: {exc}") from exc
    for _, field, _, _ in parsed:
        if field is not None and field not in FIELDS:
            raise ConfigError(
                f"unknown field {{{field}}} in the name template; known: {', '.join(FIELDS)}"
            )


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
    text = template.format(**{k: "" if v is None else v for k, v in fields.items()})
    return safe_component(text)
