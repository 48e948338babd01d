"""Streaming envelope encryption of payload files (format ``QORENC`` v1, see docs/encryption.md).

A file is a header followed by AES-256-GCM segments. The header names the key-encryption key
(KEK) and carries the wrapped bag data key, a random salt, a random nonce prefix, the segment
size and a key commitment; the whole header is the associated data of every segment. The file
key is HKDF-SHA256(bag data key, salt, info = label ‖ file id), so the same bag key never
repeats a (key, nonce) pair across files, and a segment or a whole file moved to another file
id does not authenticate. Each segment's nonce is ``nonce_prefix ‖ index (4 bytes) ‖ last flag``:
truncation, reordering and appending fail authentication.

Memory is constant (two ~1 MiB read buffers) whatever the file size; :func:`decrypt_range` reads and
decrypts only the segments a byte range touches.
"""

from __future__ import annotations

import hmac
import io
import secrets
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage.errors import DecryptionFailed, KeyNotFound, UnwrapFailed, WrongKey
from storage.keys import BagKey, Keyring, WrappedKey

MAGIC = b"QORENC"
VERSION = 1
#: Suite 1: AES-256-GCM segments with 16-byte tags, per-file key by HKDF-SHA256.
SUITE_AES256GCM_HKDF_SHA256 = 1
TAG_SIZE = 16
SALT_SIZE = 32
NONCE_PREFIX_SIZE = 7
COMMITMENT_SIZE = 32
DEFAULT_SEGMENT_SIZE = 64 * 1024
MIN_SEGMENT_SIZE = 16
MAX_SEGMENT_SIZE = 64 * 1024 * 1024
MAX_SEGMENTS = 2**32
HKDF_INFO_LABEL = b"qor-enc v1 file key\x00"
#: magic, version, suite, header length, segment size, salt, nonce prefix, key commitment
_FIXED = struct.Struct(f">6sBBHI{SALT_SIZE}s{NONCE_PREFIX_SIZE}s{COMMITMENT_SIZE}s")
#: Bytes a reader needs to learn the header's total length.
HEADER_PREFIX_SIZE = 10
#: What a chunk of input may be. Mutable buffers are copied (the producer may reuse them).
Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True)
class EnvelopeHeader:
    """The parsed header of an encrypted file. Nothing here is secret."""

    version: int
    suite: int
    segment_size: int
    salt: bytes = field(repr=False)
    nonce_prefix: bytes = field(repr=False)
    key_commitment: bytes = field(repr=False)
    wrapped: WrappedKey
    raw: bytes = field(repr=False)

    @property
    def length(self) -> int:
        """Header length in bytes; the first segment starts here."""
        return len(self.raw)

    @property
    def kek_id(self) -> str:
        return self.wrapped.kek_id

    def segment_count(self, cipher_size: int) -> int:
        """Number of segments in a file of ``cipher_size`` bytes (at least 1 when valid)."""
        body = cipher_size - self.length
        if body <= 0:
            return 0
        return -(-body // (self.segment_size + TAG_SIZE))

    def plaintext_size(self, cipher_size: int) -> int:
        """Plaintext length of a well-formed file of ``cipher_size`` bytes."""
        return max(0, cipher_size - self.length - TAG_SIZE * self.segment_count(cipher_size))


def header_size(wrapped: WrappedKey) -> int:
    """Bytes the header takes for this wrapping."""
    return (
        _FIXED.size
        + 1
        + len(wrapped.kek_id.encode())
        + 1
        + len(wrapped.algorithm.encode())
        + 2
        + len(wrapped.wrapped)
    )


def encrypted_size(
    plain_size: int,
    *,
    wrapped: WrappedKey,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> int:
    """Exact ciphertext size for ``plain_size`` bytes (for Payload-Oxum and upload planning)."""
    if plain_size < 0:
        raise ValueError("plain_size must be ≥ 0")
    segments = max(1, -(-plain_size // segment_size))
    return header_size(wrapped) + plain_size + TAG_SIZE * segments


def _encode_header(
    *, segment_size: int, salt: bytes, nonce_prefix: bytes, commitment: bytes, wrapped: WrappedKey
) -> bytes:
    kek = wrapped.kek_id.encode()
    alg = wrapped.algorithm.encode()
    if not 1 <= len(kek) <= 255 or not 1 <= len(alg) <= 255 or len(wrapped.wrapped) > 0xFFFF:
        raise ValueError("KEK id, wrap algorithm or wrapped key too long for the header")
    total = header_size(wrapped)
    if total > 0xFFFF:
        raise ValueError("header longer than 65535 bytes")
    fixed = _FIXED.pack(
        MAGIC,
        VERSION,
        SUITE_AES256GCM_HKDF_SHA256,
        total,
        segment_size,
        salt,
        nonce_prefix,
        commitment,
    )
    return b"".join(
        [
            fixed,
            bytes([len(kek)]),
            kek,
            bytes([len(alg)]),
            alg,
            struct.pack(">H", len(wrapped.wrapped)),
            wrapped.wrapped,
        ]
    )


def parse_header(raw: bytes, *, file_id: str = "<unknown>") -> EnvelopeHeader:
    """Parse and strictly check a complete header; :class:`DecryptionFailed` if malformed."""

    def bad(reason: str) -> DecryptionFailed:
        return DecryptionFailed(file_id, None, reason)

    if len(raw) < _FIXED.size:
        raise bad(f"header shorter than {_FIXED.size} bytes (file truncated?)")
    magic, version, suite, total, seg, salt, prefix, commitment = _FIXED.unpack_from(raw)
    if magic != MAGIC:
        raise bad("not a Qor encrypted file (magic differs)")
    if version != VERSION:
        raise bad(f"format version {version} is not supported (this Qor reads {VERSION})")
    if suite != SUITE_AES256GCM_HKDF_SHA256:
        raise bad(f"cipher suite {suite} is not supported")
    if total != len(raw):
        raise bad(f"header length field says {total}, header has {len(raw)} bytes")
    if not MIN_SEGMENT_SIZE <= seg <= MAX_SEGMENT_SIZE:
        raise bad(f"segment size {seg} out of range")
    pos = _FIXED.size
    try:
        n = raw[pos]
        kek_id = raw[pos + 1 : pos + 1 + n].decode("ascii")
        pos += 1 + n
        n = raw[pos]
        alg = raw[pos + 1 : pos + 1 + n].decode("ascii")
        pos += 1 + n
        (wlen,) = struct.unpack_from(">H", raw, pos)
        pos += 2
        wrapped = raw[pos : pos + wlen]
        pos += wlen
    except (IndexError, struct.error, UnicodeDecodeError) as e:
        raise bad(f"malformed key fields ({type(e).__name__})") from None
    if pos != len(raw) or len(wrapped) != wlen or not kek_id or not alg:
        raise bad("key fields do not fill the header exactly")
    return EnvelopeHeader(
        version=version,
        suite=suite,
        segment_size=seg,
        salt=salt,
        nonce_prefix=prefix,
        key_commitment=commitment,
        wrapped=WrappedKey(kek_id=kek_id, wrapped=wrapped, algorithm=alg),
        raw=bytes(raw),
    )


class _Reader(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def _read_exact(src: _Reader, n: int) -> bytes:
    """Up to ``n`` bytes; fewer only at end of stream (tolerates short reads of raw streams)."""
    first = src.read(n)
    if len(first) == n or not first:
        return bytes(first)
    parts = [first]
    got = len(first)
    while got < n:
        more = src.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class _IterReader:
    """``read(n)`` over an iterable of byte chunks (e.g. an S3 body's ``iter_chunks``)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""
        self._off = 0

    def read(self, n: int = -1, /) -> bytes:
        out: list[bytes] = []
        want = n
        while want != 0:
            if self._off >= len(self._buf):
                nxt = next(self._it, None)
                if nxt is None:
                    break
                self._buf, self._off = nxt, 0
                continue
            avail = len(self._buf) - self._off
            take = avail if want < 0 else min(avail, want)
            out.append(self._buf[self._off : self._off + take])
            self._off += take
            if want > 0:
                want -= take
        return b"".join(out)

    def remaining(self) -> Iterator[bytes]:
        """The chunks not read yet (the rest of the current one first)."""
        if self._off < len(self._buf):
            yield bytes(self._buf[self._off :])
        yield from self._it

    def readinto(self, view: memoryview) -> int:
        got = 0
        while got < len(view):
            if self._off >= len(self._buf):
                nxt = next(self._it, None)
                if nxt is None:
                    break
                self._buf, self._off = nxt, 0
                continue
            take = min(len(self._buf) - self._off, len(view) - got)
            view[got : got + take] = memoryview(self._buf)[self._off : self._off + take]
            self._off += take
            got += take
        return got


def _as_reader(src: BinaryIO | Iterable[bytes]) -> _Reader:
    if hasattr(src, "read"):
        return src  # type: ignore[return-value]
    return _IterReader(src)


def read_header(cipher: BinaryIO | _Reader, *, file_id: str = "<unknown>") -> EnvelopeHeader:
    """Read and parse the header at the stream's current position (keys are not needed).

    Auditors use this to see which KEK a file names without being able to decrypt it.
    """
    prefix = _read_exact(cipher, HEADER_PREFIX_SIZE)
    total = _hdr_len(prefix, file_id)
    rest = _read_exact(cipher, total - HEADER_PREFIX_SIZE)
    return parse_header(prefix + rest, file_id=file_id)


def _derive(data_key: bytes, salt: bytes, file_id: str) -> tuple[bytes, bytes]:
    """(file AEAD key, key commitment) = HKDF-SHA256(data key, salt, label ‖ file id)[0:64]."""
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=32 + COMMITMENT_SIZE,
        salt=salt,
        info=HKDF_INFO_LABEL + file_id.encode("utf-8"),
    ).derive(data_key)
    return okm[:32], okm[32:]


_NONCE = struct.Struct(f">{NONCE_PREFIX_SIZE}sIB")


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return _NONCE.pack(prefix, index, last)


#: Reads are batched into a reused buffer of about this size (at least two blocks).
BATCH_BYTES = 1024 * 1024


def _readinto(src: _Reader, view: memoryview) -> int:
    readinto = getattr(src, "readinto", None)
    if readinto is not None:
        return int(readinto(view) or 0)
    data = src.read(len(view))
    view[: len(data)] = data
    return len(data)


def _blocks(src: _Reader, block: int) -> Iterator[tuple[memoryview, bool]]:
    """``(view, is_last)`` for each ``block``-sized piece of ``src`` (the last may be shorter,
    or empty for an empty stream).

    Reads go into two reused buffers, alternately; each view is valid only until the next
    iteration. The last block of a full buffer is held back until the next read shows whether
    more data follows (which decides its last-segment flag).
    """
    per = max(1, BATCH_BYTES // block)
    bufs = (memoryview(bytearray(block * per)), memoryview(bytearray(block * per)))
    cur = 0
    held: memoryview | None = None
    while True:
        mv = bufs[cur]
        have = 0
        while have < len(mv):
            n = _readinto(src, mv[have:])
            if n == 0:
                break
            have += n
        eof = have < len(mv)
        if held is not None:
            yield held, have == 0
            if have == 0:
                return
        elif have == 0:
            yield mv[:0], True
            return
        off = 0
        while have - off > block:
            yield mv[off : off + block], False
            off += block
        if eof:
            yield mv[off:have], True
            return
        held = mv[off:have]
        cur ^= 1


def _blocks_of_chunks(chunks: Iterable[Buffer], block: int) -> Iterator[tuple[memoryview, bool]]:
    """Like :func:`_blocks` for an iterable of byte chunks, without copying ``bytes`` chunks:
    blocks inside a chunk are views of it; only blocks straddling two chunks are assembled."""
    held: memoryview | None = None
    pending = bytearray()
    for chunk in chunks:
        # Immutable bytes can be viewed safely after the iterator moves on; anything else
        # (a reused bytearray, a view of one) is copied.
        mv = memoryview(chunk if isinstance(chunk, bytes) else bytes(chunk))
        off = 0
        if pending:
            off = min(block - len(pending), len(mv))
            pending += mv[:off]
            if len(pending) < block:
                continue
            if held is not None:
                yield held, False
            held = memoryview(bytes(pending))
            pending.clear()
        while len(mv) - off >= block:
            if held is not None:
                yield held, False
            held = mv[off : off + block]
            off += block
        if off < len(mv):
            pending += mv[off:]
    if pending:
        if held is not None:
            yield held, False
        yield memoryview(bytes(pending)), True
    elif held is not None:
        yield held, True
    else:
        yield memoryview(b""), True


def _source_blocks(
    src: BinaryIO | Iterable[Buffer] | _Reader, block: int
) -> Iterator[tuple[memoryview, bool]]:
    if isinstance(src, _IterReader):
        rest = src.remaining()
        return _blocks_of_chunks(rest, block)
    if hasattr(src, "read"):
        return _blocks(src, block)  # type: ignore[arg-type]
    return _blocks_of_chunks(src, block)


def encrypt_chunks(
    plain: BinaryIO | Iterable[Buffer],
    *,
    bag_key: BagKey,
    file_id: str,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> Iterator[bytes]:
    """Encrypt a stream; yields the header, then one ciphertext segment (with its tag) at a time.

    ``file_id`` is the payload path inside the bag (e.g. ``data/access/KZ-000123.pdf``); the
    same id must be given to decrypt. Hash the yielded chunks to build manifests in one pass.
    """
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise ValueError(f"segment_size must be in [{MIN_SEGMENT_SIZE}, {MAX_SEGMENT_SIZE}]")
    salt = secrets.token_bytes(SALT_SIZE)
    prefix = secrets.token_bytes(NONCE_PREFIX_SIZE)
    file_key, commitment = _derive(bag_key.data_key, salt, file_id)
    header = _encode_header(
        segment_size=segment_size,
        salt=salt,
        nonce_prefix=prefix,
        commitment=commitment,
        wrapped=bag_key.wrapped,
    )
    aead = AESGCM(file_key)
    del file_key
    yield header
    for index, (view, last) in enumerate(_source_blocks(plain, segment_size)):
        if index >= MAX_SEGMENTS:
            raise ValueError("file too large for this segment size")
        # The final segment (possibly empty, for an empty file) carries the last flag.
        yield aead.encrypt(_nonce(prefix, index, last), view, header)


def _open_aead(
    header: EnvelopeHeader, keyring: Keyring, file_id: str, wrapped: WrappedKey | None
) -> AESGCM:
    use = wrapped or header.wrapped
    try:
        data_key = keyring.unwrap(use)
    except KeyNotFound as e:
        raise WrongKey(file_id, use.kek_id, f"keyring {keyring.where} does not hold it") from e
    except UnwrapFailed as e:
        raise WrongKey(file_id, use.kek_id, "the wrapped data key does not open with it") from e
    file_key, commitment = _derive(data_key, header.salt, file_id)
    if not hmac.compare_digest(commitment, header.key_commitment):
        raise WrongKey(
            file_id,
            use.kek_id,
            "the data key does not match the file's key commitment (another bag's key, "
            "another file id, or a damaged header)",
        )
    return AESGCM(file_key)


def _open_segment(
    aead: AESGCM,
    header: EnvelopeHeader,
    file_id: str,
    index: int,
    block: bytes | memoryview,
    last: bool,
) -> bytes:
    if len(block) < TAG_SIZE:
        raise DecryptionFailed(file_id, index, "segment shorter than its tag (truncated)")
    try:
        return aead.decrypt(_nonce(header.nonce_prefix, index, last), block, header.raw)
    except InvalidTag:
        pass
    # Say *why* when it is cheap to tell; no plaintext leaves this function either way.
    reason = "authentication failed (damaged, reordered or from another file)"
    if last:
        try:
            aead.decrypt(_nonce(header.nonce_prefix, index, False), block, header.raw)
            reason = "file ends after a segment that is not the final one (truncated)"
        except InvalidTag:
            pass
    raise DecryptionFailed(file_id, index, reason)


def decrypt_chunks(
    cipher: BinaryIO | Iterable[bytes],
    *,
    keyring: Keyring,
    file_id: str,
    wrapped: WrappedKey | None = None,
) -> Iterator[bytes]:
    """Decrypt a stream, yielding only authenticated plaintext, one segment at a time.

    ``wrapped`` is the bag's *current* wrapping (after rotation the header still names the
    original KEK); by default the header's own wrapping is used. A consumer must treat the
    output as final only when the iterator finishes without :class:`DecryptionFailed`: a
    truncated file is detected at its end.
    """
    src = _as_reader(cipher)
    header = read_header(src, file_id=file_id)
    aead = _open_aead(header, keyring, file_id, wrapped)
    for index, (view, last) in enumerate(_source_blocks(src, header.segment_size + TAG_SIZE)):
        if last and index == 0 and not view:
            raise DecryptionFailed(file_id, 0, "no segment after the header (truncated)")
        if index >= MAX_SEGMENTS:
            raise DecryptionFailed(file_id, index, "more segments than the format allows")
        yield _open_segment(aead, header, file_id, index, view, last)


RangeReader = Callable[[int, int], bytes]
"""``read(start, length) -> bytes``: fetches a byte range of the ciphertext (e.g. S3 GET Range)."""


def _range_source(
    cipher: BinaryIO | RangeReader, cipher_size: int | None
) -> tuple[RangeReader, int]:
    if callable(cipher) and not hasattr(cipher, "read"):
        if cipher_size is None:
            raise ValueError("cipher_size is required when reading through a range callable")
        return cipher, cipher_size
    f: BinaryIO = cipher  # type: ignore[assignment]
    size = f.seek(0, io.SEEK_END) if cipher_size is None else cipher_size

    def read(start: int, length: int) -> bytes:
        f.seek(start)
        return _read_exact(f, length)

    return read, size


def iter_decrypt_range(
    cipher: BinaryIO | RangeReader,
    offset: int,
    length: int,
    *,
    keyring: Keyring,
    file_id: str,
    wrapped: WrappedKey | None = None,
    cipher_size: int | None = None,
    segments_per_read: int = 16,
) -> Iterator[bytes]:
    """Like :func:`decrypt_range` but yields the plaintext range piece by piece."""
    if offset < 0 or length < 0:
        raise ValueError("offset and length must be ≥ 0")
    read, size = _range_source(cipher, cipher_size)
    total = _hdr_len(read(0, HEADER_PREFIX_SIZE), file_id)
    header = parse_header(read(0, total), file_id=file_id)
    aead = _open_aead(header, keyring, file_id, wrapped)
    n = header.segment_count(size)
    if n == 0:
        raise DecryptionFailed(file_id, 0, "no segment after the header (truncated)")
    if n > MAX_SEGMENTS:
        raise DecryptionFailed(file_id, None, "file larger than the format allows")
    if size - header.length - (n - 1) * (header.segment_size + TAG_SIZE) < TAG_SIZE:
        # No envelope ends so (its last segment holds at least its tag): cut short. Without
        # this, the plaintext size would come out as 0 and every range as b"".
        raise DecryptionFailed(file_id, n - 1, "segment shorter than its tag (truncated)")
    plain_size = header.plaintext_size(size)
    start, end = min(offset, plain_size), min(offset + length, plain_size)
    if start >= end:
        return
    seg, block = header.segment_size, header.segment_size + TAG_SIZE
    first, last = start // seg, (end - 1) // seg
    i = first
    while i <= last:
        j = min(last, i + segments_per_read - 1)
        c_start = header.length + i * block
        c_end = min(header.length + (j + 1) * block, size)
        data = read(c_start, c_end - c_start)
        if len(data) != c_end - c_start:
            raise DecryptionFailed(file_id, i, "store returned fewer bytes than the range asked")
        for k in range(i, j + 1):
            blk = data[(k - i) * block : (k - i + 1) * block]
            plain = _open_segment(aead, header, file_id, k, blk, k == n - 1)
            lo = start - k * seg if k == first else 0
            hi = end - k * seg if k == last else len(plain)
            yield plain[lo:hi]
        i = j + 1


def _hdr_len(prefix: bytes, file_id: str) -> int:
    if len(prefix) < HEADER_PREFIX_SIZE or prefix[:6] != MAGIC:
        raise DecryptionFailed(file_id, None, "not a Qor encrypted file (magic differs or empty)")
    (total,) = struct.unpack_from(">H", prefix, 8)
    if total < _FIXED.size:
        raise DecryptionFailed(file_id, None, f"header length field {total} too small")
    return int(total)


def decrypt_range(
    cipher: BinaryIO | RangeReader,
    offset: int,
    length: int,
    *,
    keyring: Keyring,
    file_id: str,
    wrapped: WrappedKey | None = None,
    cipher_size: int | None = None,
) -> bytes:
    """``plaintext[offset:offset + length]``, reading and decrypting only the segments needed.

    ``cipher`` is a seekable binary file or a ``read(start, length)`` callable (then
    ``cipher_size``, the ciphertext's total size, is required — e.g. from ``store.head``).
    Out-of-range requests are clamped like slicing. Every returned byte is authenticated;
    a truncation is detected only when the range touches the (apparent) last segment.
    """
    return b"".join(
        iter_decrypt_range(
            cipher,
            offset,
            length,
            keyring=keyring,
            file_id=file_id,
            wrapped=wrapped,
            cipher_size=cipher_size,
        )
    )


def decrypt_bytes(
    cipher: bytes, *, keyring: Keyring, file_id: str, wrapped: WrappedKey | None = None
) -> bytes:
    """Convenience for small files: the whole plaintext (authenticated) as bytes."""
    return b"".join(
        decrypt_chunks(io.BytesIO(cipher), keyring=keyring, file_id=file_id, wrapped=wrapped)
    )
