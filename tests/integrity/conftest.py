"""Fixtures for the integrity tests: bags written by hand, independently of Qor's builder."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

HASHLIB = {"sha3-256": "sha3_256"}


def digest(data: bytes, algorithm: str) -> str:
    return hashlib.new(HASHLIB.get(algorithm, algorithm), data).hexdigest()


def encode(path: str) -> str:
    return path.replace("%", "%25").replace("\n", "%0A").replace("\r", "%0D")


def write_bag(
    root: Path,
    payload: Mapping[str, bytes],
    *,
    algorithms: Sequence[str] = ("sha256", "sha512"),
    tag_manifests: bool = True,
    oxum: bool = True,
    version: str = "1.0",
    bag_info_extra: str = "",
    eol: str = "\n",
) -> Path:
    """Write a valid bag at ``root`` by hand; ``payload`` maps paths under data/ to bytes."""
    (root / "data").mkdir(parents=True)
    for name, data in payload.items():
        target = root / "data" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    tag: dict[str, bytes] = {
        "bagit.txt": (
            f"BagIt-Version: {version}{eol}Tag-File-Character-Encoding: UTF-8{eol}".encode()
        )
    }
    info = f"Source-Organization: Test Library{eol}External-Identifier: KZ-TEST-1{eol}"
    if oxum:
        info += f"Payload-Oxum: {sum(len(d) for d in payload.values())}.{len(payload)}{eol}"
    tag["bag-info.txt"] = (info + bag_info_extra).encode()
    for alg in algorithms:
        tag[f"manifest-{alg}.txt"] = "".join(
            f"{digest(d, alg)}  {encode('data/' + n)}{eol}" for n, d in sorted(payload.items())
        ).encode()
    for name, data in tag.items():
        (root / name).write_bytes(data)
    if tag_manifests:
        for alg in algorithms:
            (root / f"tagmanifest-{alg}.txt").write_bytes(
                "".join(f"{digest(d, alg)}  {n}{eol}" for n, d in sorted(tag.items())).encode()
            )
    return root


BagWriter = Callable[..., Path]


@pytest.fixture
def make_bag(tmp_path: Path) -> BagWriter:
    """Returns ``make(payload=..., **options)`` writing a fresh hand-made bag under tmp_path."""
    counter = iter(range(10_000))

    def make(payload: Mapping[str, bytes] | None = None, **options: object) -> Path:
        files = {"a.txt": b"alpha\n", "sub/b.bin": bytes(range(256)) * 4} if payload is None \
            else payload
        return write_bag(tmp_path / f"bag{next(counter)}", files, **options)  # type: ignore[arg-type]

    return make
