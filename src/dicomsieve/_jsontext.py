"""The JSON text the index stores for a record's tuples (ImageType, positions, ...).

Shared by the scan, which writes it in its reader processes (see
:mod:`dicomsieve.scan.rows`), and the index, which writes it for records it is given.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Final

__all__ = ["to_json"]


def _json_encoder() -> Callable[[object], str]:
    """``json.dumps`` with its default options, minus its set-up cost on every call.

    Every file of a scan stores several tuples as JSON; one C encoder made once and
    reused encodes them twice as fast. Without the C accelerator, plain ``json.dumps``.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has it
        return json.dumps
    encode = make(
        None, None, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
    return lambda value: "".join(encode(value, 0))


to_json: Final = _json_encoder()
"""``json.dumps`` of a record tuple: the text the index stores for it."""
