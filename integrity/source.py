"""Where a bag is read from: a folder now, a bag in an object store later.

The validator only needs to list the bag's regular files with their sizes, know whether a folder
exists, and open a file for reading; :class:`BagSource` is that seam.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from integrity.errors import BagUnreadableError
from integrity.problems import BagProblem, UnsafePath


@dataclass(frozen=True)
class BagEntry:
    """One regular file of a bag: its path relative to the bag's base directory (``/``-separated)
    and its size in bytes."""

    path: str
    size: int


class BagSource(Protocol):
    """Read access to one bag, wherever it lives."""

    @property
    def name(self) -> str:
        """How messages name the bag (a folder path or a store URI)."""
        ...

    def files(self) -> Sequence[BagEntry]:
        """Every regular file of the bag (tag files and payload), each once."""
        ...

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` (relative, ``/``-separated) is a folder of the bag."""
        ...

    def open(self, path: str) -> BinaryIO:
        """Open one of :meth:`files` for binary reading (the caller closes it)."""
        ...

    def source_problems(self) -> Sequence[BagProblem]:
        """What is wrong with the bag's layout itself (e.g. links escaping the bag)."""
        ...


class FileSystemBagSource:
    """A bag in a local folder.

    Symbolic links are never followed out of the bag: a link whose target lies outside the base
    directory is reported as :class:`~integrity.problems.UnsafePath` and its target is never read.
    Links to files inside the bag count as those files; links to folders are not descended into
    (a bag is a tree, not a graph).
    """

    def __init__(self, root: Path) -> None:
        try:
            self._root = root.resolve(strict=True)
        except OSError as e:
            raise BagUnreadableError(f"bag {root}: cannot be opened ({e.strerror or e})") from e
        if not self._root.is_dir():
            raise BagUnreadableError(f"bag {root}: not a folder")
        self._display = str(root)
        self._files: list[BagEntry] | None = None
        self._known: frozenset[str] = frozenset()
        self._dirs: set[str] = set()
        self._problems: list[BagProblem] = []

    @property
    def name(self) -> str:
        return self._display

    @property
    def root(self) -> Path:
        """The bag's base directory (symbolic links in its own path resolved)."""
        return self._root

    def _scan(self) -> list[BagEntry]:
        if self._files is not None:
            return self._files
        files: list[BagEntry] = []
        try:
            self._walk(self._root, "", files)
        except OSError as e:
            raise BagUnreadableError(f"bag {self._display}: cannot be listed ({e})") from e
        files.sort(key=lambda e: e.path)
        self._files = files
        self._known = frozenset(e.path for e in files)
        return files

    def _walk(self, folder: Path, prefix: str, out: list[BagEntry]) -> None:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            if entry.is_symlink():
                self._link(Path(entry.path), rel, out)
            elif entry.is_dir(follow_symlinks=False):
                self._dirs.add(rel)
                self._walk(Path(entry.path), rel + "/", out)
            elif entry.is_file(follow_symlinks=False):
                out.append(BagEntry(rel, entry.stat(follow_symlinks=False).st_size))
            # sockets, fifos, devices: not files of a bag; they are simply not payload.

    def _link(self, link: Path, rel: str, out: list[BagEntry]) -> None:
        try:
            target = link.resolve(strict=True)
        except (OSError, RuntimeError):
            self._problems.append(UnsafePath(rel, rel, "symbolic link to nothing"))
            return
        if not target.is_relative_to(self._root):
            self._problems.append(
                UnsafePath(rel, rel, f"symbolic link escapes the bag (points to {target})")
            )
            return
        if target.is_file():
            out.append(BagEntry(rel, target.stat().st_size))
        else:
            self._problems.append(
                UnsafePath(rel, rel, "symbolic link to a folder (not followed)")
            )

    def files(self) -> Sequence[BagEntry]:
        return self._scan()

    def is_dir(self, path: str) -> bool:
        self._scan()
        return path in self._dirs

    def open(self, path: str) -> BinaryIO:
        self._scan()
        if path not in self._known:  # never open anything the listing did not vouch for
            raise FileNotFoundError(path)
        return (self._root / path).open("rb")

    def source_problems(self) -> Sequence[BagProblem]:
        self._scan()
        return tuple(self._problems)
