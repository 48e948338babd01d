"""Property test of the envelope decryptor (issue 15; R13: damage is refused, never returned as
plaintext): random bytes, and real envelopes with bits flipped, bytes cut off or appended, give
:class:`DecryptionFailed` and no plaintext — ``parse_header``, ``read_header``,
``decrypt_bytes``, ``decrypt_chunks`` (only authenticated segments, each the true plaintext,
before it fails) and ``decrypt_range`` (the true slice, or the refusal) — each example within a
time bound (the deadline) and a memory bound (peak RSS growth)."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from storage import (
    BagKey,
    DecryptionFailed,
    LocalKeyring,
    decrypt_bytes,
    decrypt_chunks,
    decrypt_range,
    encrypt_chunks,
    read_header,
)
from storage.crypto import MAGIC, VERSION, EnvelopeHeader, parse_header
from tests.bounds import MiB, peak_growth_below

FILE_ID = "data/access/KZ-000123.pdf"
SEG = 64
PLAIN = bytes((i * 7 + 3) % 256 for i in range(700))  # 10 full segments and a short one
DEADLINE = timedelta(seconds=2)
MEMORY = 16 * MiB
FUZZ = settings(max_examples=150, deadline=DEADLINE, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def module_keyring(tmp_path_factory: pytest.TempPathFactory) -> LocalKeyring:
    private: Path = tmp_path_factory.mktemp("crypto-fuzz") / "private"
    private.mkdir(mode=0o700)
    return LocalKeyring(private / "keys")


@pytest.fixture(scope="module")
def envelope(module_keyring: LocalKeyring) -> bytes:
    bag_key: BagKey = module_keyring.new_bag_key()
    return b"".join(encrypt_chunks([PLAIN], bag_key=bag_key, file_id=FILE_ID,
                                   segment_size=SEG))


@st.composite
def damaged(draw: st.DrawFn, cipher: bytes) -> bytes:
    """The envelope with 1-8 bits flipped, or cut, or lengthened, or a mix."""
    out = bytearray(cipher)
    kind = draw(st.sampled_from(["flip", "cut", "append", "flip+cut"]), label="kind")
    if "flip" in kind:
        for _ in range(draw(st.integers(1, 8), label="flips")):
            out[draw(st.integers(0, len(out) - 1))] ^= 1 << draw(st.integers(0, 7))
    if "cut" in kind:
        out = out[: draw(st.integers(0, len(out) - 1), label="cut")]
    if kind == "append":
        out += draw(st.binary(min_size=1, max_size=200), label="appended")
    if bytes(out) == cipher:  # flips that cancel out: flip one more bit
        out[0] ^= 1
    return bytes(out)


def _header_or_refusal(raw: bytes) -> None:
    try:
        header = parse_header(raw, file_id=FILE_ID)
    except DecryptionFailed as e:
        assert e.file_id == FILE_ID
        return
    assert isinstance(header, EnvelopeHeader) and header.length == len(raw)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=400),
                     st.binary(max_size=400).map(lambda b: MAGIC + bytes([VERSION]) + b)))
@example(raw=MAGIC + bytes([VERSION, 1]) + b"\xff\xff" + b"\x00" * 200)  # header length 65535
@example(raw=b"")
def test_random_headers_parse_or_are_refused(raw: bytes) -> None:
    with peak_growth_below(MEMORY, "parse_header/read_header"):
        _header_or_refusal(raw)
        try:
            header = read_header(io.BytesIO(raw), file_id=FILE_ID)
        except DecryptionFailed as e:
            assert e.file_id == FILE_ID
        else:
            assert raw.startswith(header.raw)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=2000),
                     st.binary(max_size=2000).map(lambda b: MAGIC + bytes([VERSION]) + b)))
def test_random_bytes_never_decrypt(raw: bytes, module_keyring: LocalKeyring) -> None:
    with peak_growth_below(MEMORY, "decrypting random bytes"):
        with pytest.raises(DecryptionFailed):
            decrypt_bytes(raw, keyring=module_keyring, file_id=FILE_ID)
        with pytest.raises(DecryptionFailed):
            decrypt_range(io.BytesIO(raw), 0, 100, keyring=module_keyring, file_id=FILE_ID)


@FUZZ
@given(data=st.data())
def test_a_damaged_envelope_gives_decryption_failed_and_no_false_plaintext(
    data: st.DataObject, envelope: bytes, module_keyring: LocalKeyring,
) -> None:
    bad = data.draw(damaged(envelope), label="envelope")
    with peak_growth_below(MEMORY, "decrypting a damaged envelope"):
        with pytest.raises(DecryptionFailed):
            decrypt_bytes(bad, keyring=module_keyring, file_id=FILE_ID)
        # Streamed: whatever comes out before the refusal is the true plaintext, in order.
        got = bytearray()
        with pytest.raises(DecryptionFailed):
            for piece in decrypt_chunks(io.BytesIO(bad), keyring=module_keyring,
                                        file_id=FILE_ID):
                got += piece
        assert PLAIN.startswith(bytes(got))
        # A range: the true slice (damage elsewhere is not read) or the refusal.
        offset = data.draw(st.integers(0, len(PLAIN)), label="offset")
        length = data.draw(st.integers(0, len(PLAIN)), label="length")
        try:
            part = decrypt_range(io.BytesIO(bad), offset, length, keyring=module_keyring,
                                 file_id=FILE_ID)
        except DecryptionFailed:
            return
        # Never a false byte; the whole slice unless the file was cut short (a range past a
        # cut at a segment boundary is clamped to the apparent end, like slicing).
        assert part == PLAIN[offset : offset + len(part)]
        if len(bad) >= len(envelope):
            assert part == PLAIN[offset : offset + length]


def test_the_intact_envelope_decrypts(envelope: bytes, module_keyring: LocalKeyring) -> None:
    """The control: what the damaged examples start from is a good file."""
    assert decrypt_bytes(envelope, keyring=module_keyring, file_id=FILE_ID) == PLAIN


def test_regression_a_range_of_a_file_cut_inside_its_first_tag_is_refused(
    envelope: bytes, module_keyring: LocalKeyring,
) -> None:
    """Found by the property test: cut to the header and 13 bytes, the plaintext size came out
    as 0 and ``decrypt_range(0, 1)`` returned ``b""`` instead of refusing the file."""
    hlen = read_header(io.BytesIO(envelope)).length
    with pytest.raises(DecryptionFailed) as ei:
        decrypt_range(io.BytesIO(envelope[: hlen + 13]), 0, 1, keyring=module_keyring,
                      file_id=FILE_ID)
    assert ei.value.segment_index == 0
