"""Write a volume as NIfTI-1 or NRRD with a JSON sidecar, atomically.

Each file is written to a temporary name in the output folder and then moved into
place: a reader never sees half a file, and an interrupted conversion leaves only a
hidden temporary file. Without ``overwrite`` an existing output is kept: the move is a
hard link that fails if the name exists, so two conversions cannot clobber each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dicomsieve.codes import LoadErrorCode
from dicomsieve.errors import ConfigError, LoadError
from dicomsieve.load.stored import StoredPixels
from dicomsieve.load.volume import Volume
from dicomsieve.loadables.model import Loadable
from dicomsieve.write import FORMATS
from dicomsieve.write.names import safe_component
from dicomsieve.write.nifti import write_nifti, write_nifti_stored

__all__ = ["FORMATS", "WrittenOutput", "write_stored", "write_volume"]


@dataclass(frozen=True, slots=True)
class WrittenOutput:
    """One written image and its sidecar."""

    loadable: str
    kind: str
    path: str
    sidecar: str

    def to_dict(self) -> dict[str, str]:
        """The JSON form printed by ``convert --json``."""
        return {
            "loadable": self.loadable,
            "kind": self.kind,
            "path": self.path,
            "sidecar": self.sidecar,
        }


def write_volume(
    volume: Volume,
    outdir: str | os.PathLike[str],
    stem: str,
    *,
    fmt: str = "nii.gz",
    overwrite: bool = False,
) -> WrittenOutput:
    """Write ``volume`` to ``outdir/stem.<fmt>`` and ``outdir/stem.json``.

    Parameters
    ----------
    volume
        What to write.
    outdir
        The output folder (created if needed). Nothing is written outside it.
    stem
        The file name without extension; reduced to safe characters again here.
    fmt
        ``nii.gz``, ``nii`` or ``nrrd``.
    overwrite
        Replace existing files; otherwise an existing output raises ``OUTPUT_EXISTS``.

    Returns
    -------
    WrittenOutput

    Raises
    ------
    LoadError
        ``OUTPUT_EXISTS`` or ``WRITE_FAILED``.
    """
    writer = _write_nrrd if fmt == "nrrd" else _write_nifti
    return _write_pair(
        lambda tmp: writer(volume, tmp),
        volume.loadable,
        volume.metadata,
        {"resampled": volume.resampled, "scl_slope": None, "scl_inter": None},
        outdir,
        stem,
        fmt,
        overwrite,
    )


def write_stored(
    stored: StoredPixels,
    outdir: str | os.PathLike[str],
    stem: str,
    *,
    fmt: str = "nii.gz",
    overwrite: bool = False,
) -> WrittenOutput:
    """Write the stored values of a loadable to ``outdir/stem.<fmt>`` (NIfTI only), the
    rescale in the header, and ``outdir/stem.json``.

    The sidecar's ``dicomsieve`` block gives the header's ``scl_slope`` and
    ``scl_inter`` (both null when the stored values are the real ones).

    Parameters
    ----------
    stored
        From :func:`dicomsieve.load.stored.stored_pixels`.
    outdir, stem, overwrite
        As for :func:`write_volume`.
    fmt
        ``nii.gz`` or ``nii``.

    Returns
    -------
    WrittenOutput

    Raises
    ------
    LoadError
        ``OUTPUT_EXISTS``, ``WRITE_FAILED``, or an error reading the files
        (``PIXEL_DATA_SHORT``, ``FILE_CHANGED``).
    """
    if fmt not in ("nii.gz", "nii"):
        raise ConfigError(f"stored values are written as NIfTI (nii.gz or nii), not {fmt!r}")
    slope, inter = stored.scaling or (None, None)
    return _write_pair(
        lambda tmp: write_nifti_stored(stored, tmp),
        stored.loadable,
        stored.metadata,
        {"resampled": False, "scl_slope": slope, "scl_inter": inter},
        outdir,
        stem,
        fmt,
        overwrite,
    )


def _write_pair(
    write_image: Callable[[Path], object],
    loadable: Loadable,
    metadata: dict[str, Any],
    extra: dict[str, Any],
    outdir: str | os.PathLike[str],
    stem: str,
    fmt: str,
    overwrite: bool,
) -> WrittenOutput:
    """The image (by ``write_image``) and its sidecar, each atomically."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    folder = Path(outdir)
    folder.mkdir(parents=True, exist_ok=True)
    safe = safe_component(stem)
    image_path = folder / f"{safe}.{fmt}"
    sidecar_path = folder / f"{safe}.json"
    for path in (image_path, sidecar_path):
        if path.resolve().parent != folder.resolve():  # pragma: no cover - safe_component
            raise LoadError(LoadErrorCode.WRITE_FAILED, "an output name left the output folder")
        if path.exists() and not overwrite:
            raise LoadError(LoadErrorCode.OUTPUT_EXISTS, f"{path} exists (use overwrite)")
    _atomic(image_path, write_image, overwrite)
    sidecar = dict(metadata)
    block = dict(sidecar.get("dicomsieve", {}))
    block.update(extra, format=fmt)
    sidecar["dicomsieve"] = block
    text = json.dumps(sidecar, indent=2, default=_json_default) + "\n"
    _atomic(sidecar_path, lambda tmp: tmp.write_text(text), overwrite)
    return WrittenOutput(loadable.name, str(loadable.kind), str(image_path), str(sidecar_path))


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _atomic(final: Path, write: Callable[[Path], object], overwrite: bool) -> None:
    # The temporary name keeps the final extension: nibabel picks compression by it.
    tmp = final.with_name(f".{uuid.uuid4().hex[:12]}.tmp.{final.name}")
    try:
        write(tmp)
        if overwrite:
            os.replace(tmp, final)
        else:
            try:
                os.link(tmp, final)  # fails if ``final`` exists: no clobbering
            except FileExistsError as exc:
                raise LoadError(LoadErrorCode.OUTPUT_EXISTS, f"{final} exists") from exc
            except OSError:  # a file system without hard links
                if final.exists():
                    raise LoadError(LoadErrorCode.OUTPUT_EXISTS, f"{final} exists") from None
                os.replace(tmp, final)
    except LoadError:
        raise
    except OSError as exc:
        raise LoadError(LoadErrorCode.WRITE_FAILED, f"{final}: {exc.strerror or exc}") from exc
    except Exception as exc:  # a writer library refusing the data
        raise LoadError(
            LoadErrorCode.WRITE_FAILED, f"{final}: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _write_nifti(volume: Volume, path: Path) -> None:
    write_nifti(volume, path)


def _write_nrrd(volume: Volume, path: Path) -> None:
    import nrrd

    data: Any = volume.array
    spatial = volume.affine_lps[:3, :3].T  # one row per voxel axis
    directions: list[Any] = [spatial[0], spatial[1], spatial[2]]
    kinds = ["domain", "domain", "domain"]
    if volume.array.ndim - (1 if volume.is_rgb else 0) == 4:
        directions.append(np.full(3, np.nan))
        kinds.append("list")
    if volume.is_rgb:
        # NRRD puts colour on the fastest axis, which is the first with index_order F.
        data = np.moveaxis(data, -1, 0)
        directions.insert(0, np.full(3, np.nan))
        kinds.insert(0, "RGB-color")
    header = {
        "space": "left-posterior-superior",
        "space directions": np.array(directions, dtype=np.float64),
        "space origin": volume.affine_lps[:3, 3].astype(np.float64),
        "kinds": kinds,
        "encoding": "gzip",
    }
    nrrd.write(str(path), data, header)
