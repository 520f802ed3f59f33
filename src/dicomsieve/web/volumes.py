"""Stored loadables by database id, loaded volumes in a bounded cache.

The web app addresses a loadable by its database id. :func:`stored_loadable` finds the
stored examine result it belongs to; :class:`VolumeCache` keeps recently loaded volumes
(and thumbnails) in memory up to a byte budget, least recently used first out, and loads
each at most once at a time however many requests ask for it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Final, TypeVar

from dicomsieve.codes import LoadableKind, LoadErrorCode
from dicomsieve.index.browse import LoadableRef, loadable_ids, loadable_ref
from dicomsieve.index.store import Index
from dicomsieve.loadables.model import Loadable, SliceRef

__all__ = [
    "LOAD_ERROR_HINTS",
    "StoredLoadable",
    "VolumeCache",
    "middle_slice",
    "slice_ref",
    "stored_loadable",
]

T = TypeVar("T")

LOAD_ERROR_HINTS: Final[dict[str, str]] = {
    str(LoadErrorCode.NOT_LOADABLE): "this object has no pixels to show",
    str(LoadErrorCode.FILE_CHANGED): "a file changed or is gone since it was indexed: import again",
    str(LoadErrorCode.DECODE_FAILED): "the pixel data could not be decoded",
    str(LoadErrorCode.PIXEL_DATA_SHORT): "the pixel data is shorter than the header promises",
    str(LoadErrorCode.INCONSISTENT_SLICES): "the slices differ in matrix or bit depth",
    str(LoadErrorCode.UNSUPPORTED_PIXELS): "dicomsieve does not convert this pixel format",
    str(LoadErrorCode.NO_GEOMETRY): "the slices have no position or orientation",
    str(LoadErrorCode.OUTPUT_EXISTS): "the output file exists",
    str(LoadErrorCode.WRITE_FAILED): "the output could not be written",
}
"""What each load error code means, for messages that must not quote file paths."""


@dataclass(frozen=True, slots=True)
class StoredLoadable:
    """A stored loadable with its database id and where it sits."""

    ref: LoadableRef
    loadable: Loadable


def stored_loadable(index: Index, loadable_id: int) -> StoredLoadable | None:
    """The stored loadable with this database id, as the last examination left it.

    Parameters
    ----------
    index
        An open index.
    loadable_id
        Database id of the loadable.

    Returns
    -------
    StoredLoadable or None
        ``None`` for an unknown id (or one replaced by a newer examination).
    """
    ref = loadable_ref(index, loadable_id)
    if ref is None:
        return None
    stored = index.stored_examination(ref.series_instance_uid)
    if stored is None:
        return None
    ids = loadable_ids(index, ref.series_id)
    if len(ids) != len(stored.loadables) or ids[ref.ordinal] != loadable_id:
        return None  # re-examined between the two reads
    return StoredLoadable(ref, stored.loadables[ref.ordinal])


def slice_ref(loadable: Loadable, k: int, t: int = 0) -> SliceRef:
    """The slice reference holding slice ``k`` of time point ``t``.

    Parameters
    ----------
    loadable
        Any loadable with slices.
    k, t
        Slice and time point (clamped to the last slice reference).

    Returns
    -------
    SliceRef
        For a mosaic (Siemens, UIH VFRAME) every reference is one mosaic image (all
        slices of a time point); otherwise slices are listed time point after time point.
    """
    if loadable.mosaic_slices is not None:
        return loadable.slices[min(t, len(loadable.slices) - 1)]
    per_volume = loadable.shape[2] if len(loadable.shape) >= 3 else 1
    return loadable.slices[min(t * per_volume + k, len(loadable.slices) - 1)]


def middle_slice(loadable: Loadable) -> Loadable:
    """The loadable cut down to its middle slice (of the first time point), for thumbnails.

    Parameters
    ----------
    loadable
        Any loadable; one without pixels is returned as it is.

    Returns
    -------
    Loadable
        One slice, shape ``(columns, rows, 1)``. A mosaic keeps its first image, which
        holds every slice: loading it costs one file.
    """
    if loadable.kind is LoadableKind.UNSUPPORTED or len(loadable.shape) < 3:
        return loadable
    columns, rows, slices = loadable.shape[0], loadable.shape[1], loadable.shape[2]
    if loadable.mosaic_slices is not None:
        return replace(loadable, slices=loadable.slices[:1], shape=(columns, rows, slices))
    k = slices // 2
    return replace(loadable, slices=(loadable.slices[k],), shape=(columns, rows, 1))


class VolumeCache:
    """A least-recently-used cache bounded by bytes, safe to share between threads.

    Parameters
    ----------
    max_bytes
        Budget; an item larger than this is returned but not kept.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}

    @property
    def size(self) -> int:
        """Bytes held now."""
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def _get(self, key: Hashable) -> object | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def _put(self, key: Hashable, value: object, size: int) -> None:
        with self._lock:
            if size > self.max_bytes or key in self._items:
                return
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def get_or_load(self, key: Hashable, load: Callable[[], T], size_of: Callable[[T], int]) -> T:
        """The cached value of ``key``, or ``load()`` (called once for concurrent askers).

        Parameters
        ----------
        key
            Identifies the value; include whatever makes a stale value different.
        load
            Makes the value; its exceptions propagate and nothing is cached.
        size_of
            The value's size in bytes.

        Returns
        -------
        The value.
        """
        found = self._get(key)
        if found is not None:
            return found  # type: ignore[return-value]
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
        try:
            with gate:
                found = self._get(key)
                if found is not None:
                    return found  # type: ignore[return-value]
                value = load()
                self._put(key, value, size_of(value))
                return value
        finally:
            with self._lock:
                if self._loading.get(key) is gate and not gate.locked():
                    del self._loading[key]
