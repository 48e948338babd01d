"""The streaming envelope encryption format (docs/encryption.md) and its failure modes.

R13: the depository store is "equipped with information-protection technologies" — every
payload file is authenticated-encrypted, and any damage, truncation, reordering or splicing is
refused rather than returned as plaintext.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import (
    BagKey,
    DecryptionFailed,
    EnvKeyring,
    LocalKeyring,
    WrongKey,
    decrypt_bytes,
    decrypt_chunks,
    decrypt_range,
    encrypt_chunks,
    encrypted_size,
    read_header,
)

VECTORS = Path(__file__).parents[1] / "data" / "encryption"
FILE_ID = "data/access/KZ-000123.pdf"
SEG = 64


def vector_keyring() -> EnvKeyring:
    return EnvKeyring("QOR_KEK", environ={"QOR_KEK": (VECTORS / "kek.txt").read_text().strip()})


def vectors() -> list[dict[str, object]]:
    manifest = json.loads((VECTORS / "vectors.json").read_text())
    out: list[dict[str, object]] = manifest["vectors"]
    return out


def encrypt(plain: bytes, bag_key: BagKey, file_id: str = FILE_ID, seg: int = SEG) -> bytes:
    return b"".join(encrypt_chunks([plain], bag_key=bag_key, file_id=file_id, segment_size=seg))


@pytest.fixture
def bag_key(keyring: LocalKeyring) -> BagKey:
    return keyring.new_bag_key()


@pytest.fixture
def small_file(bag_key: BagKey) -> tuple[bytes, bytes]:
    """(plaintext, ciphertext) of a 5-segment file: 4 full 64-byte segments + 44 bytes."""
    plain = bytes((i * 7 + 3) % 256 for i in range(300))
    return plain, encrypt(plain, bag_key)


# --- test vectors ----------------------------------------------------------------------------


@pytest.mark.parametrize("vec", vectors(), ids=lambda v: str(v["name"]))
def test_committed_vectors_decrypt(vec: dict[str, object]) -> None:
    plain = (VECTORS / str(vec["plaintext"])).read_bytes()
    cipher = (VECTORS / str(vec["ciphertext"])).read_bytes()
    assert hashlib.sha256(cipher).hexdigest() == vec["ciphertext_sha256"]
    got = decrypt_bytes(cipher, keyring=vector_keyring(), file_id=str(vec["file_id"]))
    assert got == plain
    assert hashlib.sha256(got).hexdigest() == vec["plaintext_sha256"]
    header = read_header(io.BytesIO(cipher))
    assert header.kek_id == "kek-20260101-test"
    assert header.segment_size == vec["segment_size"]


def spec_decrypt(cipher: bytes, data_key: bytes, file_id: str) -> bytes:
    """An independent decoder written from docs/encryption.md alone (no storage.crypto)."""
    assert cipher[:6] == b"QORENC" and cipher[6] == 1 and cipher[7] == 1
    (hlen, seg) = struct.unpack(">HI", cipher[8:14])
    salt, prefix, commit = cipher[14:46], cipher[46:53], cipher[53:85]
    header = cipher[:hlen]
    okm = HKDF(hashes.SHA256(), 64, salt, b"qor-enc v1 file key\x00" + file_id.encode()).derive(
        data_key
    )
    assert okm[32:] == commit
    aead = AESGCM(okm[:32])
    body = cipher[hlen:]
    blocks = [body[i : i + seg + 16] for i in range(0, len(body), seg + 16)]
    return b"".join(
        aead.decrypt(prefix + struct.pack(">IB", i, i == len(blocks) - 1), b, header)
        for i, b in enumerate(blocks)
    )


@pytest.mark.parametrize("vec", vectors(), ids=lambda v: str(v["name"]))
def test_vectors_match_the_documented_byte_format(vec: dict[str, object]) -> None:
    manifest = json.loads((VECTORS / "vectors.json").read_text())
    data_key = bytes.fromhex(manifest["data_key_hex"])
    cipher = (VECTORS / str(vec["ciphertext"])).read_bytes()
    plain = (VECTORS / str(vec["plaintext"])).read_bytes()
    assert spec_decrypt(cipher, data_key, str(vec["file_id"])) == plain
    # The documented wrapping: AES-256-GCM, nonce ‖ ct ‖ tag, AAD "A256GCM-KW1\0" ‖ kek id.
    kek = (VECTORS / "kek.txt").read_text().strip().split(":", 1)
    import base64

    wrapped = base64.b64decode(manifest["wrapped_data_key"]["wrapped"])
    aad = b"A256GCM-KW1\x00" + kek[0].encode()
    assert AESGCM(base64.b64decode(kek[1])).decrypt(wrapped[:12], wrapped[12:], aad) == data_key


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 128, 300, 4096])
def test_round_trip_and_exact_size(size: int, bag_key: BagKey, keyring: LocalKeyring) -> None:
    plain = bytes(range(256)) * (size // 256 + 1)
    plain = plain[:size]
    cipher = encrypt(plain, bag_key)
    assert len(cipher) == encrypted_size(size, wrapped=bag_key.wrapped, segment_size=SEG)
    assert decrypt_bytes(cipher, keyring=keyring, file_id=FILE_ID) == plain


def test_input_chunking_does_not_change_plaintext(bag_key: BagKey, keyring: LocalKeyring) -> None:
    plain = bytes(range(256)) * 40
    pieces = [plain[:1], plain[1:200], plain[200:201], plain[201:5000], plain[5000:]]
    cipher = b"".join(encrypt_chunks(pieces, bag_key=bag_key, file_id=FILE_ID, segment_size=SEG))
    from_file = b"".join(
        encrypt_chunks(io.BytesIO(plain), bag_key=bag_key, file_id=FILE_ID, segment_size=SEG)
    )
    assert decrypt_bytes(cipher, keyring=keyring, file_id=FILE_ID) == plain
    assert decrypt_bytes(from_file, keyring=keyring, file_id=FILE_ID) == plain
    # Decrypting from an iterator of odd-sized ciphertext chunks works too.
    odd = [cipher[i : i + 77] for i in range(0, len(cipher), 77)]
    assert b"".join(decrypt_chunks(odd, keyring=keyring, file_id=FILE_ID)) == plain


def test_producer_reusing_its_buffer_is_safe(bag_key: BagKey, keyring: LocalKeyring) -> None:
    """A source that refills one bytearray for every chunk (as readinto loops do)."""
    plain = bytes(range(256)) * 20

    def reused() -> Iterator[bytearray]:
        buf = bytearray(100)
        for i in range(0, len(plain), 100):
            piece = plain[i : i + 100]
            buf[: len(piece)] = piece
            yield buf if len(piece) == 100 else bytearray(piece)

    cipher = b"".join(encrypt_chunks(reused(), bag_key=bag_key, file_id=FILE_ID, segment_size=SEG))
    assert decrypt_bytes(cipher, keyring=keyring, file_id=FILE_ID) == plain


def test_two_encryptions_of_the_same_file_differ(bag_key: BagKey) -> None:
    assert encrypt(b"same", bag_key) != encrypt(b"same", bag_key)


# --- tampering -------------------------------------------------------------------------------


def test_every_single_byte_flip_fails(
    small_file: tuple[bytes, bytes], keyring: LocalKeyring
) -> None:
    """Header, every segment body and every tag: each of the file's bytes flipped fails."""
    _, cipher = small_file
    for i in range(len(cipher)):
        for mask in (0x01, 0x80):
            bad = bytearray(cipher)
            bad[i] ^= mask
            with pytest.raises(DecryptionFailed):
                decrypt_bytes(bytes(bad), keyring=keyring, file_id=FILE_ID)


def test_truncation_anywhere_fails(
    small_file: tuple[bytes, bytes], keyring: LocalKeyring, bag_key: BagKey
) -> None:
    _, cipher = small_file
    hlen = read_header(io.BytesIO(cipher)).length
    boundaries = [hlen + k * (SEG + 16) for k in range(5)]
    for cut in boundaries:
        with pytest.raises(DecryptionFailed) as ei:
            decrypt_bytes(cipher[:cut], keyring=keyring, file_id=FILE_ID)
        if cut > hlen:
            assert "truncated" in str(ei.value)
    for cut in range(len(cipher)):
        with pytest.raises(DecryptionFailed):
            decrypt_bytes(cipher[:cut], keyring=keyring, file_id=FILE_ID)
    # Extra bytes appended are refused as well.
    with pytest.raises(DecryptionFailed):
        decrypt_bytes(cipher + b"\x00" * 16, keyring=keyring, file_id=FILE_ID)


def test_streaming_decrypt_yields_nothing_unauthenticated(
    small_file: tuple[bytes, bytes], keyring: LocalKeyring
) -> None:
    plain, cipher = small_file
    hlen = read_header(io.BytesIO(cipher)).length
    bad = bytearray(cipher)
    bad[hlen + 2 * (SEG + 16) + 5] ^= 1  # inside segment 2
    got: list[bytes] = []
    with pytest.raises(DecryptionFailed) as ei:
        for piece in decrypt_chunks(io.BytesIO(bytes(bad)), keyring=keyring, file_id=FILE_ID):
            got.append(piece)
    assert ei.value.segment_index == 2
    assert b"".join(got) == plain[: 2 * SEG]


def test_swapping_two_segments_fails(
    small_file: tuple[bytes, bytes], keyring: LocalKeyring
) -> None:
    _, cipher = small_file
    hlen = read_header(io.BytesIO(cipher)).length
    b = SEG + 16
    segs = [cipher[hlen + k * b : hlen + (k + 1) * b] for k in range(5)]
    for i, j in [(0, 1), (1, 3), (2, 3)]:
        s = list(segs)
        s[i], s[j] = s[j], s[i]
        with pytest.raises(DecryptionFailed) as ei:
            decrypt_bytes(cipher[:hlen] + b"".join(s), keyring=keyring, file_id=FILE_ID)
        assert ei.value.segment_index == i


def test_segment_spliced_from_another_file_of_the_same_bag_fails(
    bag_key: BagKey, keyring: LocalKeyring
) -> None:
    plain = bytes(300)
    a = encrypt(plain, bag_key, "data/a.txt")
    b = encrypt(plain, bag_key, "data/b.txt")
    hlen = read_header(io.BytesIO(a)).length
    seg1 = slice(hlen + (SEG + 16), hlen + 2 * (SEG + 16))
    spliced = a[: seg1.start] + b[seg1] + a[seg1.stop :]
    with pytest.raises(DecryptionFailed) as ei:
        decrypt_bytes(spliced, keyring=keyring, file_id="data/a.txt")
    assert ei.value.segment_index == 1


def test_whole_file_moved_to_another_path_fails(bag_key: BagKey, keyring: LocalKeyring) -> None:
    cipher = encrypt(b"page text", bag_key, "data/text/KZ-1.txt")
    with pytest.raises(DecryptionFailed):
        decrypt_bytes(cipher, keyring=keyring, file_id="data/text/KZ-2.txt")


# --- keys ------------------------------------------------------------------------------------


def test_wrong_keyring_names_the_expected_kek(
    small_file: tuple[bytes, bytes], bag_key: BagKey, tmp_path: Path
) -> None:
    _, cipher = small_file
    other_dir = tmp_path / "other"
    other_dir.mkdir(mode=0o700)
    other = LocalKeyring(other_dir / "keys")
    with pytest.raises(WrongKey) as ei:
        decrypt_bytes(cipher, keyring=other, file_id=FILE_ID)
    assert ei.value.expected_kek_id == bag_key.kek_id
    assert bag_key.kek_id in str(ei.value)


def test_same_kek_id_with_different_key_material_is_wrong_key(
    small_file: tuple[bytes, bytes], bag_key: BagKey
) -> None:
    _, cipher = small_file
    import base64
    import os

    impostor = EnvKeyring(
        "K", environ={"K": f"{bag_key.kek_id}:{base64.b64encode(os.urandom(32)).decode()}"}
    )
    with pytest.raises(WrongKey) as ei:
        decrypt_bytes(cipher, keyring=impostor, file_id=FILE_ID)
    assert ei.value.expected_kek_id == bag_key.kek_id


def test_another_bags_data_key_is_wrong_key(
    small_file: tuple[bytes, bytes], keyring: LocalKeyring
) -> None:
    _, cipher = small_file
    other_bag = keyring.new_bag_key()
    with pytest.raises(WrongKey, match="key commitment"):
        decrypt_bytes(cipher, keyring=keyring, file_id=FILE_ID, wrapped=other_bag.wrapped)


def test_key_material_never_in_repr_errors_or_logs(
    small_file: tuple[bytes, bytes],
    bag_key: BagKey,
    keyring: LocalKeyring,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import base64

    caplog.set_level(logging.DEBUG)
    kek_file = next(keyring.key_dir.glob("*.key"))
    kek_b64 = json.loads(kek_file.read_text())["key"]
    secrets_shown = [
        bag_key.data_key.hex(),
        base64.b64encode(bag_key.data_key).decode(),
        repr(bag_key.data_key),
        kek_b64,
        base64.b64decode(kek_b64).hex(),
    ]
    _, cipher = small_file
    texts = [repr(bag_key), str(bag_key), repr(keyring), repr(bag_key.wrapped)]
    bad = bytearray(cipher)
    bad[-1] ^= 1
    for attempt in (bytes(bad), cipher[:-20]):
        try:
            decrypt_bytes(attempt, keyring=keyring, file_id=FILE_ID)
        except DecryptionFailed as e:
            texts += [str(e), repr(e)]
    texts += [r.getMessage() for r in caplog.records]
    joined = "\n".join(texts)
    for s in secrets_shown:
        assert s not in joined


# --- random access ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def range_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, LocalKeyring]:
    d = tmp_path_factory.mktemp("range")
    d.chmod(0o700)
    kr = LocalKeyring(d / "keys")
    plain = hashlib.shake_256(b"range").digest(10_000)
    return plain, encrypt(plain, kr.new_bag_key(), seg=256), kr


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(offset=st.integers(0, 10_500), length=st.integers(0, 12_000))
def test_decrypt_range_equals_slicing(
    range_case: tuple[bytes, bytes, LocalKeyring], offset: int, length: int
) -> None:
    plain, cipher, kr = range_case
    got = decrypt_range(io.BytesIO(cipher), offset, length, keyring=kr, file_id=FILE_ID)
    assert got == plain[offset : offset + length]


def test_decrypt_range_reads_only_the_segments_it_needs(
    range_case: tuple[bytes, bytes, LocalKeyring],
) -> None:
    plain, cipher, kr = range_case
    reads: list[tuple[int, int]] = []

    def read(start: int, length: int) -> bytes:
        reads.append((start, length))
        return cipher[start : start + length]

    got = decrypt_range(read, 5000, 300, keyring=kr, file_id=FILE_ID, cipher_size=len(cipher))
    assert got == plain[5000:5300]
    body_reads = [r for r in reads if r[0] > 200]
    assert sum(n for _, n in body_reads) <= 2 * (256 + 16)


def test_decrypt_range_detects_damage_in_the_range(
    range_case: tuple[bytes, bytes, LocalKeyring],
) -> None:
    _, cipher, kr = range_case
    bad = bytearray(cipher)
    bad[-100] ^= 1
    with pytest.raises(DecryptionFailed):
        decrypt_range(io.BytesIO(bytes(bad)), 9_800, 10, keyring=kr, file_id=FILE_ID)
    with pytest.raises(DecryptionFailed):  # truncated at a segment boundary
        hlen = read_header(io.BytesIO(cipher)).length
        decrypt_range(io.BytesIO(cipher[: hlen + 10 * 272]), 2500, 10, keyring=kr, file_id=FILE_ID)
