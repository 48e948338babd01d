"""Checksum algorithms by their BagIt names (``<algorithm>`` in ``manifest-<algorithm>.txt``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

# BagIt names (lowercase, as RFC 8493 section 2.4 asks) → hashlib constructor names.
_HASHLIB_NAMES: dict[str, str] = {
    "md5": "md5",
    "sha1": "sha1",
    "sha224": "sha224",
    "sha256": "sha256",
    "sha384": "sha384",
    "sha512": "sha512",
    "sha3-224": "sha3_224",
    "sha3-256": "sha3_256",
    "sha3-384": "sha3_384",
    "sha3-512": "sha3_512",
    "blake2b-512": "blake2b",
}

SUPPORTED: frozenset[str] = frozenset(_HASHLIB_NAMES)
DEFAULT_ALGORITHMS: tuple[str, ...] = ("sha256", "sha512")

# Big enough that hashlib drops the GIL while hashing it (it does above 2 KiB) and that syscall
# overhead vanishes; small enough that many files in parallel stay in constant memory.
CHUNK_SIZE = 1 << 20


def new_hasher(algorithm: str) -> hashlib._Hash:
    """A fresh hash object for the BagIt algorithm name ``algorithm``."""
    return hashlib.new(_HASHLIB_NAMES[algorithm])


def digest_size(algorithm: str) -> int:
    """Length in bytes of ``algorithm``'s digest."""
    return new_hasher(algorithm).digest_size


def check_algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    """Return ``algorithms`` de-duplicated, or raise ``ValueError`` naming an unknown one."""
    seen: list[str] = []
    for a in algorithms:
        if a not in SUPPORTED:
            raise ValueError(
                f"checksum algorithm {a!r} is not supported (use one of {sorted(SUPPORTED)})"
            )
        if a not in seen:
            seen.append(a)
    if not seen:
        raise ValueError("at least one checksum algorithm is required")
    return tuple(seen)


class MultiHasher:
    """Feeds the same bytes to several hash objects, counting them: one read, every algorithm."""

    def __init__(self, algorithms: Sequence[str]) -> None:
        self._hashers = [(a, new_hasher(a)) for a in algorithms]
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        for _, h in self._hashers:
            h.update(data)
        self.size += len(data)

    def hexdigests(self) -> dict[str, str]:
        return {a: h.hexdigest() for a, h in self._hashers}
