"""Building Qor bags: one pass per file, manifests over the stored (transformed) bytes, atomic."""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import BinaryIO

import bagit
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from integrity.bag import BagFileRecord, BagInfo, PayloadFile, Transform, build_bag
from integrity.errors import BagBuildError, BagExistsError
from integrity.validate import problems
from qor.errors import QorError

KEY = bytes(range(32))
SEGMENT = 64 * 1024


class Reads:
    """Counts how often, and how much, the transform read each source."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.bytes: dict[str, int] = {}


def aesgcm_transform(reads: Reads) -> Transform:
    """A real streaming AES-256-GCM transform (segment index in the nonce), counting its reads."""

    def transform(source: BinaryIO, file_id: str) -> Iterator[bytes]:
        reads.calls[file_id] = reads.calls.get(file_id, 0) + 1
        aead = AESGCM(KEY)
        prefix = hashlib.sha256(file_id.encode()).digest()[:4]
        index = 0
        while chunk := source.read(SEGMENT):
            reads.bytes[file_id] = reads.bytes.get(file_id, 0) + len(chunk)
            yield aead.encrypt(prefix + struct.pack(">Q", index), chunk, file_id.encode())
            index += 1

    return transform


def decrypt(data: bytes, file_id: str) -> bytes:
    aead = AESGCM(KEY)
    prefix = hashlib.sha256(file_id.encode()).digest()[:4]
    step = SEGMENT + 16
    return b"".join(
        aead.decrypt(prefix + struct.pack(">Q", i), data[o : o + step], file_id.encode())
        for i, o in enumerate(range(0, len(data), step))
    )


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "src"
    folder.mkdir()
    files = {
        "access/KZ-0001.pdf": os.urandom(300_000),
        "text/KZ-0001.txt": "Қазақ тілі: ә ғ қ ң ө ұ ү һ і\n".encode(),
        "masters/0001.tif": os.urandom(5),
        "empty.bin": b"",
    }
    out = {}
    for i, (name, data) in enumerate(files.items()):
        p = folder / f"f{i}"
        p.write_bytes(data)
        out[name] = p
    return out


INFO = BagInfo(
    source_organization="National Library of Kazakhstan",
    external_identifier="KZ-0001",
    bag_group_identifier="batch-2025-001",
    bagging_date=date(2025, 3, 1),
    encryption_format="qor-aead-1",
    key_id="kek-2025-01",
)


def payload(sources: dict[str, Path]) -> list[PayloadFile]:
    return [PayloadFile(p, name) for name, p in sources.items()]


def test_built_bag_is_valid_for_qor_and_for_bagit_python(
    tmp_path: Path, sources: dict[str, Path]
) -> None:
    reads = Reads()
    summary = build_bag(tmp_path / "bag", payload=payload(sources), info=INFO,
                        transform=aesgcm_transform(reads),
                        metadata_files={"dc.xml": b"<dc/>\n"})
    assert problems(summary.path) == []
    bagit.Bag(str(summary.path)).validate(processes=1)


def test_each_source_is_read_once_and_manifests_cover_the_stored_bytes(
    tmp_path: Path, sources: dict[str, Path]
) -> None:
    reads = Reads()
    summary = build_bag(tmp_path / "bag", payload=payload(sources), info=INFO,
                        transform=aesgcm_transform(reads))
    for name, src in sources.items():
        file_id = f"data/{name}"
        assert reads.calls[file_id] == 1
        assert reads.bytes.get(file_id, 0) == src.stat().st_size
        stored = (summary.path / file_id).read_bytes()
        assert decrypt(stored, file_id) == src.read_bytes()
        record = next(r for r in summary.payload if r.path == file_id)
        assert record.size == len(stored)
        assert record.digests == {"sha256": hashlib.sha256(stored).hexdigest(),
                                  "sha512": hashlib.sha512(stored).hexdigest()}
    manifest = (summary.path / "manifest-sha256.txt").read_text()
    assert f"{hashlib.sha256((summary.path / 'data/access/KZ-0001.pdf').read_bytes()).hexdigest()}"\
        "  data/access/KZ-0001.pdf\n" in manifest


def test_without_transform_payload_is_copied(tmp_path: Path, sources: dict[str, Path]) -> None:
    summary = build_bag(tmp_path / "bag", payload=payload(sources), info=INFO,
                        algorithms=("sha512",), workers=1)
    for name, src in sources.items():
        assert (summary.path / "data" / name).read_bytes() == src.read_bytes()
    assert sorted(p.name for p in summary.path.iterdir()) == [
        "bag-info.txt", "bagit.txt", "data", "manifest-sha512.txt", "tagmanifest-sha512.txt"]
    assert problems(summary.path) == []


def test_bag_declaration_and_bag_info(tmp_path: Path, sources: dict[str, Path]) -> None:
    summary = build_bag(tmp_path / "bag", payload=payload(sources), info=INFO)
    assert (summary.path / "bagit.txt").read_bytes() == (
        b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    lines = (summary.path / "bag-info.txt").read_text(encoding="utf-8").splitlines()
    fields = dict(line.split(": ", 1) for line in lines)
    octets = sum(src.stat().st_size for src in sources.values())
    assert fields["Source-Organization"] == "National Library of Kazakhstan"
    assert fields["External-Identifier"] == "KZ-0001"  # R14: the inventory number
    assert fields["Bag-Group-Identifier"] == "batch-2025-001"
    assert fields["Bagging-Date"] == "2025-03-01"
    assert fields["Payload-Oxum"] == f"{octets}.4" == summary.payload_oxum
    assert fields["Qor-Encryption-Format"] == "qor-aead-1"
    assert fields["Qor-Key-Id"] == "kek-2025-01"
    assert fields["Bag-Software-Agent"].startswith("Qor")
    assert "Bag-Size" in fields and "BagIt-Profile-Identifier" in fields


def test_metadata_can_be_made_from_the_payload_records(
    tmp_path: Path, sources: dict[str, Path]
) -> None:
    seen: list[BagFileRecord] = []

    def premis(records: Sequence[BagFileRecord]) -> bytes:
        seen.extend(records)
        return "".join(f"{r.path} {r.digests['sha256']}\n" for r in records).encode()

    summary = build_bag(tmp_path / "bag", payload=payload(sources), info=INFO,
                        metadata_files={"premis.xml": premis})
    assert [r.path for r in seen] == sorted(f"data/{n}" for n in sources)
    text = (summary.path / "metadata" / "premis.xml").read_text()
    for r in summary.payload:
        assert f"{r.path} {r.digests['sha256']}" in text
    tagmanifest = (summary.path / "tagmanifest-sha256.txt").read_text()
    assert "  metadata/premis.xml\n" in tagmanifest and "  manifest-sha512.txt\n" in tagmanifest
    assert problems(summary.path) == []


def test_existing_destination_is_never_overwritten(
    tmp_path: Path, sources: dict[str, Path]
) -> None:
    dest = tmp_path / "bag"
    dest.mkdir()
    (dest / "keep.txt").write_text("precious")
    with pytest.raises(BagExistsError):
        build_bag(dest, payload=payload(sources), info=INFO)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_failure_half_way_leaves_nothing(tmp_path: Path, sources: dict[str, Path]) -> None:
    class KeyMissingError(QorError):
        pass

    def failing(source: BinaryIO, file_id: str) -> Iterator[bytes]:
        yield source.read(10)
        raise KeyMissingError("key-encryption key kek-x not found")

    with pytest.raises(KeyMissingError):
        build_bag(tmp_path / "bag", payload=payload(sources), info=INFO,
                  transform=failing)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.parametrize("bad", ["../escape.pdf", "/abs.pdf", "a//b", "a/./b", "", "x%y",
                                 "new\nline", "back\\slash"])
def test_bad_payload_paths_are_refused(
    tmp_path: Path, sources: dict[str, Path], bad: str
) -> None:
    with pytest.raises(BagBuildError) as info:
        build_bag(tmp_path / "bag", payload=[PayloadFile(sources["empty.bin"], bad)], info=INFO)
    assert repr(bad) in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_duplicate_payload_paths_are_refused(tmp_path: Path, sources: dict[str, Path]) -> None:
    with pytest.raises(BagBuildError):
        build_bag(tmp_path / "bag", info=INFO, payload=[
            PayloadFile(sources["empty.bin"], "x.bin"), PayloadFile(sources["empty.bin"], "x.bin")])


def test_missing_source_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(BagBuildError) as info:
        build_bag(tmp_path / "bag", payload=[PayloadFile(tmp_path / "nope.tif", "m/1.tif")],
                  info=INFO)
    assert "nope.tif" in str(info.value)
    assert not (tmp_path / "bag").exists()


def test_unknown_algorithm_and_multiline_value_are_refused(
    tmp_path: Path, sources: dict[str, Path]
) -> None:
    with pytest.raises(BagBuildError):
        build_bag(tmp_path / "a", payload=payload(sources), info=INFO, algorithms=("crc32",))
    with pytest.raises(BagBuildError):
        build_bag(tmp_path / "b", payload=payload(sources),
                  info=BagInfo("Org\nInjected: yes", "KZ-1"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_empty_payload(tmp_path: Path) -> None:
    summary = build_bag(tmp_path / "bag", payload=[], info=INFO)
    assert summary.payload_oxum == "0.0"
    assert problems(summary.path) == []
    bagit.Bag(str(summary.path)).validate()


def test_built_bag_meets_the_published_profile(tmp_path: Path, sources: dict[str, Path]) -> None:
    import json
    from importlib import resources

    profile = json.loads(resources.files("integrity.profiles")
                         .joinpath("qor-bag-profile-1.0.json").read_text(encoding="utf-8"))
    summary = build_bag(tmp_path / "bag", payload=payload(sources), info=INFO,
                        metadata_files={"dc.xml": b"<dc/>\n", "premis.xml": b"<premis/>\n"})
    labels = [line.split(": ", 1)[0] for line in
              (summary.path / "bag-info.txt").read_text(encoding="utf-8").splitlines()]
    for label, rule in profile["Bag-Info"].items():
        if rule["required"]:
            assert label in labels, label
        if not rule["repeatable"]:
            assert labels.count(label) <= 1, label
    assert dict(summary.bag_info)["BagIt-Profile-Identifier"] == \
        profile["BagIt-Profile-Info"]["BagIt-Profile-Identifier"]
    for alg in profile["Manifests-Required"]:
        assert (summary.path / f"manifest-{alg}.txt").is_file()
    for alg in profile["Tag-Manifests-Required"]:
        assert (summary.path / f"tagmanifest-{alg}.txt").is_file()
    for name in profile["Tag-Files-Required"]:
        assert (summary.path / name).is_file()
    assert not (summary.path / "fetch.txt").exists()
    version = (summary.path / "bagit.txt").read_text().splitlines()[0].split(": ")[1]
    assert version in profile["Accept-BagIt-Version"]
