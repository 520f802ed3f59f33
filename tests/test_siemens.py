"""The CSA image header parser: what mosaics need, bounded on bad input."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from dicomsieve.scan.siemens import mosaic_info, parse_csa


def csa2(items: dict[str, list[str]]) -> bytes:
    """A CSA2 ("SV10") header holding ``items``, encoded as Siemens scanners do."""
    out = bytearray(b"SV10\x04\x03\x02\x01")
    out += struct.pack("<II", len(items), 77)
    for name, values in items.items():
        out += name.encode().ljust(64, b"\0")
        out += struct.pack("<i4sii", len(values), b"FD\0\0", 4, len(values))
        out += struct.pack("<i", 77)
        for value in values:
            data = value.encode() + b"\0"
            out += struct.pack("<4i", len(data), len(data), 77, len(data))
            out += data.ljust((len(data) + 3) // 4 * 4, b"\0")
    return bytes(out)


HEADER = csa2(
    {
        "EchoLinePosition": ["32"],
        "NumberOfImagesInMosaic": ["35"],
        "SliceNormalVector": ["0.0", "0.10799944", "0.99415095"],
    }
)


def test_mosaic_info_reads_count_and_normal() -> None:
    assert mosaic_info(HEADER) == (35, (0.0, 0.10799944, 0.99415095))


def test_not_a_mosaic_without_the_count() -> None:
    assert mosaic_info(csa2({"SliceNormalVector": ["0", "0", "1"]})) is None
    assert mosaic_info(b"") is None
    assert mosaic_info(b"CSA1 header of the old kind") is None


def test_unusable_values_are_refused() -> None:
    for count in ("nan", "inf", "-3", "0", "1e9", "many"):
        assert mosaic_info(csa2({"NumberOfImagesInMosaic": [count]})) is None
    bad_normal = csa2({"NumberOfImagesInMosaic": ["4"], "SliceNormalVector": ["nan", "0", "1"]})
    assert mosaic_info(bad_normal) == (4, None)


def test_every_truncation_is_refused_or_partial() -> None:
    for end in range(len(HEADER)):
        items = parse_csa(HEADER[:end])
        assert set(items) <= {"NumberOfImagesInMosaic", "SliceNormalVector"}
        if "NumberOfImagesInMosaic" in items:
            assert items["NumberOfImagesInMosaic"] == ("35",)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=0, max_value=len(HEADER)))
def test_never_raises_on_damaged_headers(noise: bytes, at: int) -> None:
    damaged = HEADER[:at] + noise + HEADER[at + len(noise) :]
    parse_csa(damaged)
    mosaic_info(damaged)
    parse_csa(b"SV10" + noise)
