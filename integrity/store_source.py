"""A bag kept as loose objects under one prefix of an object store (:mod:`storage`).

Lets :func:`integrity.validate.problems` deep-check a stored bag exactly as it checks a folder:
every object is streamed from the store and re-hashed against the manifests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

from integrity.errors import BagUnreadableError
from integrity.problems import BagProblem
from integrity.source import BagEntry
from storage.errors import StorageError, StoreUnavailable
from storage.store import ObjectStore


class StoreBagSource:
    """The bag whose objects are ``<prefix><path>`` in ``store`` (``prefix`` ends with ``/``).

    The bag's files are what the store *really* holds (:meth:`ObjectStore.list_actual`), so a
    file deleted or planted behind the store's back is found missing or unexpected (issue 15).
    An object store has no empty folders, so the payload directory ``data/`` counts as present
    whenever the bag declaration is: an empty-payload bag stays valid once stored.
    """

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self._store = store
        self._prefix = prefix
        self._files: list[BagEntry] | None = None
        self._known: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return f"{self._store.uri.rstrip('/')}/{self._prefix}"

    def files(self) -> Sequence[BagEntry]:
        if self._files is None:
            n = len(self._prefix)
            try:
                self._files = [BagEntry(info.key[n:], info.size)
                               for info in self._store.list_actual(self._prefix)]
            except StorageError as e:
                raise BagUnreadableError(f"bag {self.name}: cannot be listed ({e})") from e
            self._known = frozenset(e.path for e in self._files)
        return self._files

    def is_dir(self, path: str) -> bool:
        self.files()
        if path == "data" and "bagit.txt" in self._known:
            return True
        return any(p.startswith(path + "/") for p in self._known)

    def open(self, path: str) -> BinaryIO:
        self.files()
        if path not in self._known:
            raise FileNotFoundError(path)
        try:
            return self._store.open_read(self._prefix + path)
        except StoreUnavailable:
            raise  # the store is down: not a finding about the bag, the caller may retry
        except StorageError as e:
            # An object listed a moment ago that cannot be read is a finding about this bag.
            raise OSError(str(e)) from e

    def source_problems(self) -> Sequence[BagProblem]:
        return ()
