"""Private data elements, found through their private creator.

A private element has no fixed tag. A vendor reserves a block of its group by writing
its name, the *private creator*, in one of the elements (gggg,0010) to (gggg,00FF); the
creator in (gggg,00xx) owns the elements (gggg,xx00) to (gggg,xxFF). GE's
"GEMS_PARM_01" usually sits in (0043,0010), so its element 2F is (0043,102F), but
another block is as valid, and (0043,102F) under another creator means something else.

A :class:`PrivateTag` names an element by group, creator and the element's low byte.
The header readers keep that element in every block (:meth:`PrivateTag.tags`) together
with every creator element of the group; :func:`creator_blocks` then says which block
each creator owns in one object, and :meth:`PrivateTag.tag_in` gives the tag to read.
This module reads no file and imports nothing else from the package.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["BLOCKS", "PrivateTag", "creator_blocks", "creator_tags", "is_creator_tag"]

BLOCKS: Final = range(0x10, 0x100)
"""Blocks a private creator can reserve: (gggg,0010) to (gggg,00FF)."""


@dataclass(frozen=True, slots=True)
class PrivateTag:
    """One private data element: its group, its creator, its low byte and its VR.

    Parameters
    ----------
    group
        An odd group number above 0x0008.
    creator
        The private creator as the vendor writes it (compared after stripping padding).
    element
        The element's offset in the block, 0x00 to 0xFF.
    vr
        The value representation the vendor uses, for implicit VR files.
    """

    group: int
    creator: str
    element: int
    vr: str

    def __post_init__(self) -> None:
        if self.group % 2 == 0 or self.group <= 0x0008 or self.group > 0xFFFF:
            raise ValueError(f"({self.group:04X},xxxx) is not a private group")
        if not 0 <= self.element <= 0xFF:
            raise ValueError(f"element offset {self.element:#x} is not in 0x00..0xFF")

    def tag_in(self, block: int) -> int:
        """The tag of this element in ``block`` (0x10 to 0xFF)."""
        return self.group << 16 | block << 8 | self.element

    def tags(self) -> tuple[int, ...]:
        """The tag of this element in every block its creator might own."""
        return tuple(self.tag_in(block) for block in BLOCKS)


def creator_tags(group: int) -> tuple[int, ...]:
    """The tags (gggg,0010) to (gggg,00FF) that hold the private creators of ``group``."""
    return tuple(group << 16 | block for block in BLOCKS)


def is_creator_tag(tag: int) -> bool:
    """Whether ``tag`` is a private creator element (odd group, element 0x10-0xFF)."""
    group, element = tag >> 16, tag & 0xFFFF
    return group % 2 == 1 and group > 0x0008 and 0x10 <= element <= 0xFF


@functools.cache
def _creator_tag_set(groups: frozenset[int]) -> frozenset[int]:
    return frozenset(tag for group in groups for tag in creator_tags(group))


def creator_blocks(
    tree: Mapping[int, object], groups: frozenset[int]
) -> dict[tuple[int, str], int]:
    """Which block each private creator owns in one object, for the given groups.

    Parameters
    ----------
    tree
        Tags to normalized values (a tuple of strings for a creator, see
        :mod:`dicomsieve.scan.tags`).
    groups
        The private groups to look at.

    Returns
    -------
    dict
        ``{(group, creator): block}``. When a creator appears in two blocks of a group
        (which the standard does not allow), the lower block wins, whatever the order of
        ``tree``.
    """
    found: dict[tuple[int, str], int] = {}
    # Every object of a scan comes through here: look only at the creator elements it
    # has (one set intersection, in C) instead of testing each of its tags.
    for tag in _creator_tag_set(groups).intersection(tree):
        value = tree[tag]
        if not isinstance(value, tuple) or not value or not isinstance(value[0], str):
            continue
        key = (tag >> 16, value[0])
        block = tag & 0xFF
        if key not in found or block < found[key]:
            found[key] = block
    return found
