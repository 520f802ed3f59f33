"""The index rows of a header tree, built in a scan's reader processes.

The layout of the rows is the index's (:mod:`dicomsieve.index.store`); this module
reads them from a header tree, which is the scan's business.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Final

from dicomsieve.index.store import (
    RECORD_COLUMN_NAMES,
    RECORD_TUPLES,
    Compact,
    PreparedInstance,
    SeriesIdentity,
    compact_row,
    pixel_values,
    prepare_record,
)
from dicomsieve.model import PixelDataInfo
from dicomsieve.scan.extension import extension_function
from dicomsieve.scan.record import build_instance, extract, is_plain, plain_table
from dicomsieve.scan.tags import HeaderTree

__all__ = ["native_compact", "prepare_tree"]

# prepare_tree's extract table: the record columns, then the SeriesIdentity fields
# that are no column.
_PLAIN_NAMES: Final = [
    *RECORD_COLUMN_NAMES,
    *(n for n in SeriesIdentity._fields if n not in RECORD_COLUMN_NAMES),
]
_PLAIN_TABLE: Final = plain_table(_PLAIN_NAMES, RECORD_TUPLES)
_PLAIN_ROW_END: Final = len(RECORD_COLUMN_NAMES)
_PLAIN_SERIES: Final = operator.itemgetter(*map(_PLAIN_NAMES.index, SeriesIdentity._fields))
_PLAIN_SOP: Final = _PLAIN_NAMES.index("sop_instance_uid")
_PLAIN_TRANSFER_SYNTAX: Final = _PLAIN_NAMES.index("transfer_syntax_uid")


def prepare_tree(
    tree: HeaderTree,
    transfer_syntax: str | None,
    pixel: PixelDataInfo | None,
    *,
    native: bool = True,
) -> PreparedInstance | None:
    """The rows of one object's header tree, straight from the tree.

    The same as the instance :func:`~dicomsieve.index.store.prepare_outcome` makes of
    ``build_instance(tree, transfer_syntax, pixel)``; ``None`` where that is ``None``.
    A scan's reader processes run this on every file: a plain tree (the common case,
    see :func:`~dicomsieve.scan.record.is_plain`) is read into the row in one
    :func:`~dicomsieve.scan.record.extract` call, JSON text included, without the
    record in between; any other goes through the record.

    Parameters
    ----------
    tree, transfer_syntax, pixel
        What a header reader found (see :func:`~dicomsieve.scan.record.build_instance`).
    native
        Read in C when the extension is built (the default); ``False`` reads in Python,
        which gives the same rows (the tests compare them).

    Returns
    -------
    PreparedInstance or None
        ``None`` when an identifying UID is missing.
    """
    if not is_plain(tree, native=native):
        record = build_instance(tree, transfer_syntax, pixel, native=native)
        return None if record is None else prepare_record(record)
    values = extract(tree, _PLAIN_TABLE, native=native)
    series = _PLAIN_SERIES(values)
    sop = values[_PLAIN_SOP]
    if not (isinstance(sop, str) and sop and series[0] and series[1]):
        return None
    values[_PLAIN_TRANSFER_SYNTAX] = transfer_syntax
    del values[_PLAIN_ROW_END:]
    values += pixel_values(pixel)
    return PreparedInstance(sop, SeriesIdentity(*series), tuple(values), ())


native_compact: Final[Callable[[Sequence[object]], Compact]] = (
    extension_function("compact") or compact_row
)
""":func:`~dicomsieve.index.store.compact_row` in C when the extension is built
(``_native.compact``; the tests compare both): a scan's readers compact every row they
send, and the loop over its columns in Python cost a tenth of a file's read."""
