"""Walk folders safely: regular files only, links kept inside the root, loops cut.

The walk never opens a file. It yields :class:`Candidate` paths to read and, for
entries it skips, finished :class:`~dicomsieve.model.FileOutcome` values with the
:class:`~dicomsieve.codes.IgnoreRule` that skipped them (or an error for a folder
it may not list). Hidden files and files without an extension are ordinary files.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from typing import NamedTuple

from dicomsieve.codes import ErrorCode, FileState, IgnoreRule
from dicomsieve.model import FileOutcome

__all__ = ["Candidate", "walk"]


class Candidate(NamedTuple):
    """A regular file to read, with the ``stat`` values seen by the walk.

    A named tuple: the walk makes one per file, and a tuple is made in a fraction of
    the time of a frozen dataclass (which sets each field through ``object.__setattr__``).
    """

    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int


def _ignored(path: str, rule: IgnoreRule, st: os.stat_result | None = None) -> FileOutcome:
    return FileOutcome(
        path=path,
        state=FileState.IGNORED,
        code=rule,
        size=st.st_size if st else None,
        mtime_ns=st.st_mtime_ns if st else None,
        inode=st.st_ino if st else None,
        device=st.st_dev if st else None,
    )


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class _Walker:
    def __init__(self, follow_outside: bool) -> None:
        self.follow_outside = follow_outside
        self.seen_dirs: set[tuple[int, int]] = set()
        self.seen_files: set[tuple[int, int]] = set()

    def file(self, path: str, st: os.stat_result) -> Candidate | FileOutcome:
        if not stat.S_ISREG(st.st_mode):
            return _ignored(path, IgnoreRule.NOT_REGULAR_FILE, st)
        key = (st.st_dev, st.st_ino)
        if key in self.seen_files:
            return _ignored(path, IgnoreRule.SAME_FILE, st)
        self.seen_files.add(key)
        return Candidate(path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)

    def walk_root(self, root: str) -> Iterator[Candidate | FileOutcome]:
        root_abs = os.path.abspath(root)
        root_real = os.path.realpath(root_abs)
        try:
            st = os.stat(root_abs)
        except OSError as exc:
            yield FileOutcome(
                path=root_abs,
                state=FileState.ERROR,
                code=ErrorCode.FILE_VANISHED
                if exc.errno == errno.ENOENT
                else ErrorCode.FILE_UNREADABLE,
                message="cannot stat the path given to scan",
            )
            return
        if not stat.S_ISDIR(st.st_mode):
            yield self.file(root_abs, st)
            return
        self.seen_dirs.add((st.st_dev, st.st_ino))
        stack = [root_abs]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                yield FileOutcome(
                    path=folder,
                    state=FileState.ERROR,
                    code=ErrorCode.FILE_UNREADABLE,
                    message="cannot list this folder; its files are not known",
                )
                continue
            subfolders: list[str] = []
            for entry in entries:
                item = self.entry(entry, root_real, subfolders)
                if item is not None:
                    yield item
            stack.extend(reversed(subfolders))

    def entry(
        self, entry: os.DirEntry[str], root_real: str, subfolders: list[str]
    ) -> Candidate | FileOutcome | None:
        path = entry.path
        try:
            if entry.is_symlink():
                return self.link(path, root_real, subfolders)
            st = entry.stat(follow_symlinks=False)
        except OSError:
            return FileOutcome(
                path=path,
                state=FileState.ERROR,
                code=ErrorCode.FILE_VANISHED,
                message="disappeared during the walk",
            )
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key not in self.seen_dirs:  # a bind mount can bring a folder twice
                self.seen_dirs.add(key)
                subfolders.append(path)
            return None
        return self.file(path, st)

    def link(
        self, path: str, root_real: str, subfolders: list[str]
    ) -> Candidate | FileOutcome | None:
        try:
            st = os.stat(path)  # follows the link
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return _ignored(path, IgnoreRule.SYMLINK_LOOP)
            return _ignored(path, IgnoreRule.BROKEN_SYMLINK)
        target = os.path.realpath(path)
        if not self.follow_outside and not _inside(target, root_real):
            return _ignored(path, IgnoreRule.SYMLINK_OUTSIDE_ROOT, st)
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in self.seen_dirs:
                return _ignored(path, IgnoreRule.SYMLINK_LOOP, st)
            self.seen_dirs.add(key)
            subfolders.append(path)
            return None
        return self.file(path, st)


def walk(
    roots: list[str], *, follow_symlinks_outside_root: bool = False
) -> Iterator[Candidate | FileOutcome]:
    """Yield every file under ``roots``: a :class:`Candidate` to read or a finished outcome.

    Parameters
    ----------
    roots
        Folders or files. Folders are walked recursively in name order.
    follow_symlinks_outside_root
        Follow links whose target lies outside the root being walked.

    Notes
    -----
    A folder reached twice (a link back up the tree, a bind mount) is walked once, keyed
    by ``(st_dev, st_ino)``; a link to it is recorded as ``symlink_loop``. A file reached
    twice (hard links, links to files) is read once; the other paths are ``same_file``.
    FIFOs, sockets and devices are ``not_regular_file`` and are never opened.
    """
    walker = _Walker(follow_symlinks_outside_root)
    for root in roots:
        yield from walker.walk_root(root)
