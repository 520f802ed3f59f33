"""The splitting rules: one series in, drafts of loadables out, each with its reason.

The rules apply in a fixed hierarchy (see ``docs/examine.md``):

1. objects without pixel data apart (``unsupported``);
2. by matrix: Rows, Columns, SamplesPerPixel and PixelSpacing;
3. localizers: ImageType, then a description that says scout, then one or two images
   whose orientation differs from the majority;
4. by orientation;
5. within one orientation, only where positions repeat: by complex component
   (magnitude, phase... from ImageType, then from GE's private image type), by echo,
   then into a 4D sequence by temporal position,
   diffusion b-value and gradient, trigger time, acquisition number or acquisition
   order. Where only a few positions repeat, the extra copies are duplicates.

A set of slices with one position each is never split further.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace

from dicomsieve.codes import Level, LoadableKind, WarningCode
from dicomsieve.loadables.geometry import (
    Orientation,
    cluster_orientations,
    group_positions,
    orientation_of,
    plane_name,
)
from dicomsieve.loadables.model import ExamineWarning
from dicomsieve.loadables.slices import CROSS_SECTIONAL, Slice
from dicomsieve.settings import Settings

__all__ = ["Draft", "split_series"]

# Secondary Capture storage classes: screenshots and scanned documents.
_SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"


@dataclass(frozen=True, slots=True)
class Draft:
    """A loadable before its geometry is computed.

    ``timepoints`` holds one list of slices for a volume, a localizer or an image,
    and one list per time point for a sequence.
    """

    kind: LoadableKind
    timepoints: tuple[tuple[Slice, ...], ...]
    orientation: Orientation | None
    reasons: tuple[str, ...]
    qualifiers: tuple[str, ...] = ()
    warnings: tuple[ExamineWarning, ...] = ()
    selectable: bool = True
    base_confidence: float = 0.95
    sequence_axis: str | None = None

    @property
    def slices(self) -> tuple[Slice, ...]:
        return tuple(s for t in self.timepoints for s in t)

    def extend(self, reason: str, qualifier: str | None = None, *warnings: ExamineWarning) -> Draft:
        return replace(
            self,
            reasons=(*self.reasons, reason),
            qualifiers=(*self.qualifiers, qualifier) if qualifier else self.qualifiers,
            warnings=(*self.warnings, *warnings),
        )


@dataclass(slots=True)
class _Context:
    settings: Settings
    reasons: tuple[str, ...] = ()
    qualifiers: tuple[str, ...] = ()
    warnings: tuple[ExamineWarning, ...] = field(default=())

    def child(
        self, reason: str, qualifier: str | None = None, *warnings: ExamineWarning
    ) -> _Context:
        return _Context(
            self.settings,
            (*self.reasons, reason),
            (*self.qualifiers, qualifier) if qualifier else self.qualifiers,
            (*self.warnings, *warnings),
        )

    def draft(
        self,
        kind: LoadableKind,
        timepoints: Sequence[Sequence[Slice]],
        orientation: Orientation | None,
        reason: str | None = None,
        **extra: object,
    ) -> Draft:
        reasons = (*self.reasons, reason) if reason else self.reasons
        fields: dict[str, object] = {"qualifiers": self.qualifiers, "warnings": self.warnings}
        fields.update(extra)
        return Draft(
            kind=kind,
            timepoints=tuple(tuple(t) for t in timepoints),
            orientation=orientation,
            reasons=reasons,
            **fields,  # type: ignore[arg-type]
        )


def _group(
    slices: Sequence[Slice], key: Callable[[Slice], Hashable]
) -> dict[Hashable, list[Slice]]:
    groups: dict[Hashable, list[Slice]] = defaultdict(list)
    for s in slices:
        groups[key(s)].append(s)
    return groups


def _is_screenshot(s: Slice) -> bool:
    """A secondary capture that is derived, in colour or without geometry, or a derived
    secondary colour image of any class (a dose report, a rendered view)."""
    r = s.record
    secondary_capture = (r.sop_class_uid or "").startswith(_SECONDARY_CAPTURE_PREFIX)
    rgb = (r.samples_per_pixel or 1) > 1
    no_geometry = s.position is None or orientation_of(s) is None
    image_type = tuple(v.upper() for v in (r.image_type or ()))
    derived_secondary = image_type[:2] == ("DERIVED", "SECONDARY")
    if secondary_capture:
        return s.is_derived or rgb or no_geometry
    return rgb and derived_secondary


def _lone_image(ctx: _Context, s: Slice, orientation: Orientation | None) -> Draft:
    if _is_screenshot(s):
        return ctx.draft(
            LoadableKind.IMAGE,
            [[s]],
            orientation,
            "a derived screenshot (a secondary capture, or a derived secondary colour image)",
            selectable=False,
            base_confidence=0.9,
        )
    if s.record.modality in CROSS_SECTIONAL and (s.position is None or orientation is None):
        return ctx.draft(
            LoadableKind.IMAGE,
            [[s]],
            orientation,
            f"an image ({s.record.modality}) that cannot be placed: no position or orientation",
            selectable=False,
            base_confidence=0.9,
        )
    return ctx.draft(LoadableKind.IMAGE, [[s]], orientation, "a lone 2D image", base_confidence=0.9)


def split_series(slices: Sequence[Slice], settings: Settings) -> list[Draft]:
    """Apply the splitting rules to the slices of one series.

    Parameters
    ----------
    slices
        Every slice of the series (from :func:`~dicomsieve.loadables.slices.flatten`),
        in the canonical order.
    settings
        Tolerances.

    Returns
    -------
    list of Draft
        Every slice is in exactly one draft.
    """
    ctx = _Context(settings)
    drafts: list[Draft] = []
    non_image = [s for s in slices if not s.has_pixels]
    images = [s for s in slices if s.has_pixels]
    for sop_class, group in sorted(
        _group(non_image, lambda s: s.record.sop_class_uid or "absent").items(),
        key=lambda kv: str(kv[0]),
    ):
        drafts.append(
            ctx.draft(
                LoadableKind.UNSUPPORTED,
                [group],
                None,
                f"no pixel data (SOPClassUID {sop_class})",
                selectable=False,
                base_confidence=0.95,
                warnings=(
                    ExamineWarning(
                        WarningCode.NO_PIXEL_DATA,
                        Level.INFO,
                        f"{len(group)} object(s) without pixel data, Rows or Columns",
                    ),
                ),
            )
        )
    by_matrix = _group(images, _matrix_key(settings))
    if len(by_matrix) > 1:
        described = sorted(_describe_matrix(k) for k in by_matrix)  # type: ignore[arg-type]
        for key, group in sorted(by_matrix.items(), key=lambda kv: (-len(kv[1]), str(kv[0]))):
            note = ExamineWarning(
                WarningCode.INCONSISTENT_MATRIX,
                Level.INFO,
                f"the series mixes {len(by_matrix)} matrices ({'; '.join(described)}); "
                f"this part of the series has the {len(group)} slice(s) of "
                f"{_describe_matrix(key)}",  # type: ignore[arg-type]
            )
            child = ctx.child(
                f"split from the series by matrix {_describe_matrix(key)}",  # type: ignore[arg-type]
                _short_matrix(key),  # type: ignore[arg-type]
                note,
            )
            drafts.extend(_split_matrix_group(child, group))
    elif images:
        drafts.extend(_split_matrix_group(ctx, images))
    if len(drafts) == 1:
        drafts[0] = replace(drafts[0], reasons=("the whole series", *drafts[0].reasons))
    return drafts


def _matrix_key(settings: Settings) -> Callable[[Slice], Hashable]:
    places = max(0, -math.floor(math.log10(settings.pixel_spacing_tolerance_mm)))

    def key(s: Slice) -> Hashable:
        ps = s.pixel_spacing
        spacing = (round(ps[0], places), round(ps[1], places)) if ps is not None else None
        return (*s.matrix_key, spacing)

    return key


def _describe_matrix(key: tuple[int, int, int, tuple[float, float] | None]) -> str:
    rows, columns, samples, spacing = key
    text = f"{columns}x{rows}"
    if samples > 1:
        text += f"x{samples} samples"
    if spacing is not None:
        text += f" at {spacing[1]:g}x{spacing[0]:g} mm"
    return text


def _short_matrix(key: tuple[int, int, int, tuple[float, float] | None]) -> str:
    rows, columns, samples, _ = key
    return f"{columns}x{rows}" + ("RGB" if samples > 1 else "")


def _split_matrix_group(ctx: _Context, slices: list[Slice]) -> list[Draft]:
    drafts: list[Draft] = []
    flagged = [s for s in slices if s.localizer_token is not None]
    rest = [s for s in slices if s.localizer_token is None]
    if flagged:
        for token, group in sorted(_group(flagged, lambda s: s.localizer_token).items(), key=str):
            drafts.extend(_localizers(ctx, group, f"ImageType {token}", 0.95))
    if not rest:
        return drafts
    # The description decides only where no image carries a localizer ImageType: in a
    # series that flags its scouts, the unflagged images are the real ones.
    if not flagged and all(s.description_says_scout for s in rest):
        described = rest[0].described_by
        drafts.extend(_localizers(ctx, rest, f"the {described} says scout", 0.7))
        return drafts
    placed = [s for s in rest if s.position is not None]
    clusters, without = cluster_orientations(placed, ctx.settings)
    without = sorted([*without, *(s for s in rest if s.position is None)], key=lambda s: s.sort_key)
    if clusters:
        major_orientation, major = clusters[0]
        kept: list[tuple[Orientation, list[Slice]]] = [clusters[0]]
        for orientation, members in clusters[1:]:
            if len(members) <= 2 and len(major) > len(members) and len(major) >= 2:
                angle = _angle_between(major_orientation, orientation)
                drafts.extend(
                    _localizers(
                        ctx,
                        members,
                        f"{len(members)} image(s) in a {plane_name(orientation)} plane, "
                        f"{angle:.1f} degrees from the {len(major)} other slices",
                        0.8,
                    )
                )
            else:
                kept.append((orientation, members))
        several = len(kept) > 1
        for i, (orientation, members) in enumerate(kept, start=1):
            child = (
                ctx.child(
                    f"orientation {i} of {len(kept)} ({plane_name(orientation)})",
                    plane_name(orientation),
                )
                if several
                else ctx
            )
            drafts.extend(_split_orientation(child, members, orientation))
    drafts.extend(_without_geometry(ctx, without))
    return drafts


def _without_geometry(ctx: _Context, slices: list[Slice]) -> list[Draft]:
    """Slices without a usable orientation: the frames of one multi-frame object stay
    together (in frame order); any other slice is an image of its own."""
    out: list[Draft] = []
    for _, members in sorted(
        _group(slices, lambda s: (s.path, s.record.sop_instance_uid)).items(), key=str
    ):
        if len(members) == 1:
            out.append(_lone_image(ctx, members[0], None))
        else:
            out.append(
                ctx.draft(
                    LoadableKind.VOLUME,
                    [members],
                    None,
                    f"{len(members)} frames of one object without usable orientation, "
                    "in frame order",
                    base_confidence=0.6,
                )
            )
    return out


def _angle_between(a: Orientation, b: Orientation) -> float:
    cos = abs(float(sum(a.normal * b.normal)))
    return math.degrees(math.acos(min(1.0, cos)))


def _localizers(ctx: _Context, slices: list[Slice], why: str, confidence: float) -> list[Draft]:
    """Localizer drafts: a stack of 3 or more parallel slices at distinct positions is
    one 3D localizer; any other slice is a localizer of its own."""
    out: list[Draft] = []
    clusters, without = cluster_orientations(slices, ctx.settings)
    for orientation, members in clusters:
        groups = group_positions(members, orientation.normal, ctx.settings)
        plane = plane_name(orientation)
        if len(members) >= 3 and all(len(g) == 1 for g in groups):
            out.append(
                ctx.draft(
                    LoadableKind.LOCALIZER,
                    [members],
                    orientation,
                    f"localizer: {why}; {len(members)} parallel {plane} slices",
                    selectable=False,
                    base_confidence=confidence,
                    qualifiers=(*ctx.qualifiers, "localizer", plane),
                )
            )
            continue
        for s in members:
            out.append(
                ctx.draft(
                    LoadableKind.LOCALIZER,
                    [[s]],
                    orientation,
                    f"localizer: {why}; one {plane} image",
                    selectable=False,
                    base_confidence=confidence,
                    qualifiers=(*ctx.qualifiers, "localizer", plane),
                )
            )
    for s in without:
        out.append(
            ctx.draft(
                LoadableKind.LOCALIZER,
                [[s]],
                None,
                f"localizer: {why}; one image without orientation",
                selectable=False,
                base_confidence=confidence,
                qualifiers=(*ctx.qualifiers, "localizer"),
            )
        )
    return out


def _split_orientation(ctx: _Context, slices: list[Slice], orientation: Orientation) -> list[Draft]:
    groups = group_positions(slices, orientation.normal, ctx.settings)
    if all(len(g) == 1 for g in groups):
        if len(slices) == 1:
            return [_lone_image(ctx, slices[0], orientation)]
        return [ctx.draft(LoadableKind.VOLUME, [slices], orientation, _whole(ctx, len(slices)))]
    repeated = [g for g in groups if len(g) > 1]
    for name, key, describe in _SPLIT_KEYS:
        values = {key(s) for s in slices}
        if len(values) < 2 or not any(len({key(s) for s in g}) > 1 for g in repeated):
            continue
        parts = _group(slices, key)
        ordered = sorted(parts.items(), key=lambda kv: _value_order(kv[0]))
        out: list[Draft] = []
        for i, (value, members) in enumerate(ordered, start=1):
            label, qualifier = describe(value, i, len(ordered))
            out.extend(
                _split_orientation(
                    ctx.child(f"{label} (split by {name})", qualifier), members, orientation
                )
            )
        return out
    if len(repeated) * 2 < len(groups):
        return _with_duplicates(ctx, groups, orientation)
    return _sequence(ctx, groups, orientation)


def _slices(count: int) -> str:
    return f"{count} slice" if count == 1 else f"{count} slices"


def _whole(ctx: _Context, count: int) -> str:
    return f"{count} slices, one per position"


def _value_order(value: Hashable) -> tuple[tuple[int, float, str], ...]:
    """A sort key for split values: numbers as numbers (TE 5 before TE 10), tuples item by
    item, ``None`` last."""
    items = value if isinstance(value, tuple) else (value,)
    key: list[tuple[int, float, str]] = []
    for item in items:
        if item is None:
            key.append((2, 0.0, ""))
        elif isinstance(item, int | float) and not isinstance(item, bool):
            key.append((0, float(item), ""))
        else:
            key.append((1, 0.0, str(item)))
    return tuple(key)


def _describe_component(value: Hashable, index: int, count: int) -> tuple[str, str]:
    name = str(value) if value is not None else "unlabelled"
    return f"{name} images", name


def _describe_echo(value: Hashable, index: int, count: int) -> tuple[str, str]:
    text = f"echo {index} of {count}"
    if isinstance(value, tuple) and value[0] == "te":
        text += f" (TE {value[1]:g} ms)"
    elif isinstance(value, tuple) and value[0] == "number":
        text += f" (EchoNumbers {value[1]})"
    return text, f"echo {index}"


def _echo_key(s: Slice) -> Hashable:
    te = s.echo_time
    if te is not None:
        return ("te", round(te, 3))
    number = s.echo_number
    return ("number", number) if number is not None else None


def _describe_series_number(value: Hashable, index: int, count: int) -> tuple[str, str]:
    return f"SeriesNumber {value}", f"series {value}"


_SPLIT_KEYS: tuple[
    tuple[str, Callable[[Slice], Hashable], Callable[[Hashable, int, int], tuple[str, str]]], ...
] = (
    # One UID with several SeriesNumbers (an export that re-encoded one image several
    # times, say) holds distinct series.
    ("SeriesNumber", lambda s: s.record.series_number, _describe_series_number),
    ("ImageType", lambda s: s.component, _describe_component),
    # GE writes ImageType OTHER on magnitude and field map alike (see scan/ge.py).
    ("GE private image type", lambda s: s.record.private_image_type, _describe_component),
    ("echo", _echo_key, _describe_echo),
)


def _with_duplicates(
    ctx: _Context, groups: list[list[Slice]], orientation: Orientation
) -> list[Draft]:
    """A few positions hold more than one slice: keep the first of each in the volume
    and offer the extra copies on their own."""
    main = [g[0] for g in groups]
    extra = [s for g in groups for s in g[1:]]
    positions = [g for g in groups if len(g) > 1]
    files = tuple(s.label for g in positions for s in g)
    where = "; ".join(", ".join(s.short_name for s in g) for g in positions[:4])
    warning = ExamineWarning(
        WarningCode.DUPLICATE_POSITION,
        Level.WARNING,
        f"{len(positions)} of {len(groups)} positions hold more than one slice ({where}); "
        f"the volume keeps the first of each by InstanceNumber, the {len(extra)} other(s) "
        "are offered apart",
        files,
    )
    drafts = [
        ctx.draft(
            LoadableKind.VOLUME,
            [main],
            orientation,
            f"{len(main)} slices, the first at each position",
            warnings=(*ctx.warnings, warning),
        )
    ]
    dup_ctx = ctx.child(
        f"{len(extra)} slice(s) at positions that the volume already has", "duplicates"
    )
    for draft in _split_orientation(dup_ctx, extra, orientation):
        drafts.append(replace(draft, selectable=False, base_confidence=0.5))
    return drafts


_TIME_KEYS: tuple[tuple[str, Callable[[Slice], Hashable], bool], ...] = (
    # name, key, order time points by the key's value (else by acquisition order)
    ("temporal position", lambda s: s.temporal_position, True),
    ("diffusion b-value and gradient", lambda s: s.diffusion, False),
    ("trigger time", lambda s: s.trigger_time, True),
    ("acquisition number", lambda s: s.acquisition_number, True),
)


def _acquisition_order(s: Slice) -> tuple[float, tuple[int, str, int, str]]:
    t = s.time_s
    return (t if t is not None else math.inf, s.sort_key)


def _sequence(ctx: _Context, groups: list[list[Slice]], orientation: Orientation) -> list[Draft]:
    """Positions repeat: make time points, by the first tag that tells them apart."""
    slices = [s for g in groups for s in g]
    position_of = {id(s): i for i, g in enumerate(groups) for s in g}
    timepoints: list[list[Slice]] | None = None
    axis = ""
    for name, key, by_value in _TIME_KEYS:
        values = [key(s) for s in slices]
        if any(v is None for v in values) or len(set(values)) < 2:
            continue
        parts = _group(slices, key)
        if any(
            len({position_of[id(s)] for s in members}) != len(members) for members in parts.values()
        ):
            continue
        if by_value:
            ordered = [parts[k] for k in sorted(parts, key=_value_order)]
        else:
            ordered = sorted(parts.values(), key=lambda m: min(_acquisition_order(s) for s in m))
        timepoints, axis = ordered, name
        break
    order_warning: tuple[ExamineWarning, ...] = ()
    if timepoints is None:
        axis = "acquisition order"
        ranked: dict[int, list[Slice]] = defaultdict(list)
        for g in groups:
            for rank, s in enumerate(sorted(g, key=_acquisition_order)):
                ranked[rank].append(s)
        timepoints = [ranked[r] for r in sorted(ranked)]
        untold = any(s.time_s is None for s in slices) or any(
            len({s.time_s for s in g}) < len(g) for g in groups
        )
        declared = {s.record.number_of_temporal_positions for s in slices}
        if untold and declared != {len(timepoints)}:
            order_warning = (
                ExamineWarning(
                    WarningCode.REPEATS_BY_ORDER,
                    Level.WARNING,
                    f"{len(slices)} slices at {len(groups)} positions: no temporal position, "
                    "b-value, trigger time, acquisition number or acquisition time tells the "
                    f"repeats apart, so they are grouped into {len(timepoints)} time points "
                    "by InstanceNumber order; they may be different images (magnitude and "
                    "field map, say) rather than time points",
                ),
            )
    count = len(groups)
    complete = [t for t in timepoints if len(t) == count]
    incomplete = [(i, t) for i, t in enumerate(timepoints, start=1) if len(t) != count]
    drafts: list[Draft] = []
    warnings: tuple[ExamineWarning, ...] = order_warning
    if incomplete:
        warnings += (
            ExamineWarning(
                WarningCode.INCOMPLETE_SEQUENCE,
                Level.WARNING,
                f"{len(incomplete)} of {len(timepoints)} time points (by {axis}) lack slices: "
                + "; ".join(f"time point {i} has {len(t)} of {count}" for i, t in incomplete[:4])
                + "; they are offered apart",
                tuple(s.label for _, t in incomplete for s in t),
            ),
        )
    if len(complete) >= 2:
        drafts.append(
            ctx.draft(
                LoadableKind.SEQUENCE,
                complete,
                orientation,
                f"{len(complete)} time points of {_slices(count)} by {axis}",
                warnings=(*ctx.warnings, *warnings),
                base_confidence=0.9,
                sequence_axis=axis,
            )
        )
    elif len(complete) == 1:
        drafts.append(
            ctx.draft(
                LoadableKind.VOLUME,
                complete,
                orientation,
                f"the one complete time point of {_slices(count)} by {axis}",
                warnings=(*ctx.warnings, *warnings),
            )
        )
    for i, t in incomplete:
        part = ctx.child(f"time point {i} by {axis}: {len(t)} of {count} positions", f"t{i}")
        for draft in _split_orientation(part, t, orientation):
            drafts.append(
                replace(draft, selectable=not complete, warnings=(*draft.warnings, *warnings))
            )
    return drafts
