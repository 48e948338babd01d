"""Streaming encryption throughput: Qor's QORENC format vs plain AESGCM vs `openssl speed`.

    .venv/bin/python bench/crypto_vs_openssl.py [--size-mib 1024] [--segment 65536] [--rounds 3]

One run, one core (the process is pinned to one CPU), the same 1 GiB of bytes (CI: 256 MiB),
the contenders interleaved round by round (a burst of load on the shared machine hits each of
them alike) and the best round of each compared:

* **in memory** — Qor's ``encrypt_chunks`` / ``decrypt_chunks`` streaming over a list of 8 MiB
  buffers into a discarding sink, against **plain AESGCM**: ``cryptography``'s
  ``AESGCM.encrypt`` / ``decrypt`` over the same bytes in segment-size pieces, outputs
  discarded — no format, no key derivation: the ceiling of Python + OpenSSL at this segment
  size (ciphertexts for the decrypt side are made beforehand, untimed);
* **file to file** — a page-cached file encrypted to a file and that file decrypted into a
  discarding sink, by Qor and by plain AESGCM reading and writing the same segment sizes with a
  reused buffer: what ``qor digitise`` does, I/O included;
* **openssl speed -evp aes-256-gcm** at the same block size: OpenSSL's own ceiling, no Python.

Prints every throughput and the ratios Qor / plain AESGCM (issue 18 asks >= 0.9x).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage import EnvKeyring, decrypt_chunks, encrypt_chunks, new_env_key

MiB = 1024 * 1024
FILE_ID = "data/masters/bench.bin"


def qor_encrypt_file(plain: Path, cipher: Path, keyring: EnvKeyring, segment: int) -> float:
    bag_key = keyring.new_bag_key()
    t = time.perf_counter()
    with plain.open("rb") as src, cipher.open("wb") as out:
        for c in encrypt_chunks(src, bag_key=bag_key, file_id=FILE_ID, segment_size=segment):
            out.write(c)
    return time.perf_counter() - t


def qor_decrypt_file(cipher: Path, keyring: EnvKeyring) -> float:
    t = time.perf_counter()
    n = 0
    with cipher.open("rb") as f:
        for c in decrypt_chunks(f, keyring=keyring, file_id=FILE_ID):
            n += len(c)
    return time.perf_counter() - t


def qor_in_memory(chunks: list[bytes], keyring: EnvKeyring, segment: int) -> tuple[float, float]:
    """Qor streaming over the same list of buffers, outputs consumed and dropped."""
    bag_key = keyring.new_bag_key()
    t = time.perf_counter()
    for _ in encrypt_chunks(chunks, bag_key=bag_key, file_id=FILE_ID, segment_size=segment):
        pass
    enc = time.perf_counter() - t
    cipher = list(encrypt_chunks(chunks, bag_key=bag_key, file_id=FILE_ID, segment_size=segment))
    t = time.perf_counter()
    n = 0
    for c in decrypt_chunks(cipher, keyring=keyring, file_id=FILE_ID):
        n += len(c)
    dec = time.perf_counter() - t
    assert n == sum(len(c) for c in chunks)
    return enc, dec


def plain_aesgcm(chunks: list[bytes], segment: int) -> tuple[float, float]:
    """Encrypt, then decrypt, the same buffers in segment-size pieces; outputs dropped."""
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    prefix = os.urandom(7)
    pieces = [
        memoryview(c)[off : off + segment] for c in chunks for off in range(0, len(c), segment)
    ]
    t = time.perf_counter()
    for i, p in enumerate(pieces):
        aead.encrypt(prefix + struct.pack(">IB", i, 0), p, None)
    enc = time.perf_counter() - t
    sealed = [
        aead.encrypt(prefix + struct.pack(">IB", i, 0), p, None) for i, p in enumerate(pieces)
    ]
    t = time.perf_counter()
    for i, c in enumerate(sealed):
        aead.decrypt(prefix + struct.pack(">IB", i, 0), c, None)
    dec = time.perf_counter() - t
    return enc, dec


def plain_encrypt_file(plain: Path, cipher: Path, segment: int) -> float:
    """Plain AESGCM file to file: segment-size reads into one reused buffer, each sealed and
    written — the same I/O as Qor's, without the format."""
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    prefix = os.urandom(7)
    buf = memoryview(bytearray(segment))
    t = time.perf_counter()
    with plain.open("rb", buffering=0) as src, cipher.open("wb") as out:
        i = 0
        while n := src.readinto(buf):
            out.write(aead.encrypt(prefix + struct.pack(">IB", i, 0), buf[:n], None))
            i += 1
    return time.perf_counter() - t


def plain_decrypt_file(plain: Path, cipher: Path, segment: int) -> float:
    """Plain AESGCM file to a discarding sink (after sealing ``plain`` with a key of its own)."""
    key = AESGCM.generate_key(bit_length=256)
    aead = AESGCM(key)
    prefix = os.urandom(7)
    with plain.open("rb") as src, cipher.open("wb") as out:
        i = 0
        while data := src.read(segment):
            out.write(aead.encrypt(prefix + struct.pack(">IB", i, 0), data, None))
            i += 1
    buf = memoryview(bytearray(segment + 16))
    t = time.perf_counter()
    n_out = 0
    with cipher.open("rb", buffering=0) as f:
        i = 0
        while n := f.readinto(buf):
            n_out += len(aead.decrypt(prefix + struct.pack(">IB", i, 0), buf[:n], None))
            i += 1
    return time.perf_counter() - t


def openssl_speed(segment: int) -> float | None:
    """MiB/s of `openssl speed -evp aes-256-gcm` at this block size (None if unavailable)."""
    exe = shutil.which("openssl")
    if exe is None:
        return None
    r = subprocess.run(
        [exe, "speed", "-evp", "aes-256-gcm", "-bytes", str(segment), "-seconds", "3"],
        capture_output=True,
        text=True,
        check=False,
    )
    m = re.search(r"^AES-256-GCM\s+([\d.]+)k", r.stdout, re.M | re.I)
    return float(m.group(1)) * 1000 / MiB if m else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--segment", type=int, default=64 * 1024)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    size: int = args.size_mib * MiB
    keyring = EnvKeyring("K", environ={"K": new_env_key("kek-bench")})
    # The same buffers for both sides: 8 MiB chunks of random bytes (what a file reader yields).
    chunk = 8 * MiB
    chunks = [os.urandom(min(chunk, size - off)) for off in range(0, size, chunk)]
    best: dict[str, float] = {}

    def keep(name: str, seconds: float) -> None:
        best[name] = min(seconds, best.get(name, seconds))

    for n in range(1, args.rounds + 1):
        print(f"round {n} of {args.rounds}: in memory", flush=True)
        q_enc, q_dec = qor_in_memory(chunks, keyring, args.segment)
        p_enc, p_dec = plain_aesgcm(chunks, args.segment)
        for name, sec in (("q_enc", q_enc), ("q_dec", q_dec), ("p_enc", p_enc), ("p_dec", p_dec)):
            keep(name, sec)
    with tempfile.TemporaryDirectory(prefix="qor-bench-") as d:
        plain, cipher = Path(d) / "plain.bin", Path(d) / "cipher.qenc"
        with plain.open("wb") as f:
            for c in chunks:
                f.write(c)
        del chunks
        for n in range(1, args.rounds + 1):
            print(f"round {n} of {args.rounds}: file to file", flush=True)
            keep("qf_enc", qor_encrypt_file(plain, cipher, keyring, args.segment))
            keep("qf_dec", qor_decrypt_file(cipher, keyring))
            cipher.unlink()
            keep("pf_enc", plain_encrypt_file(plain, cipher, args.segment))
            cipher.unlink()
            keep("pf_dec", plain_decrypt_file(plain, cipher, args.segment))
            cipher.unlink()
    ossl = openssl_speed(args.segment)
    mib = size / MiB

    def rate(name: str) -> float:
        return mib / best[name]

    print(f"bytes: {mib:.0f} MiB, segment {args.segment} B, one core, best of {args.rounds} "
          "interleaved round(s)")
    print("                            encrypt MiB/s   decrypt MiB/s")
    print(f"Qor, in memory              {rate('q_enc'):13.0f}   {rate('q_dec'):13.0f}")
    print(f"plain AESGCM, in memory     {rate('p_enc'):13.0f}   {rate('p_dec'):13.0f}")
    print(f"Qor, file to file           {rate('qf_enc'):13.0f}   {rate('qf_dec'):13.0f}")
    print(f"plain AESGCM, file to file  {rate('pf_enc'):13.0f}   {rate('pf_dec'):13.0f}")
    if ossl:
        print(f"openssl speed               {ossl:13.0f}   {'(same)':>13}")
    print(f"ratio Qor / plain AESGCM, in memory:    encrypt {best['p_enc'] / best['q_enc']:.2f}x, "
          f"decrypt {best['p_dec'] / best['q_dec']:.2f}x (goal >= 0.9)")
    print(f"ratio Qor / plain AESGCM, file to file: encrypt "
          f"{best['pf_enc'] / best['qf_enc']:.2f}x, decrypt {best['pf_dec'] / best['qf_dec']:.2f}x"
          " (goal >= 0.9)")
    if ossl:
        print(f"ratio Qor / openssl speed (in memory): encrypt {rate('q_enc') / ossl:.2f}x, "
              f"decrypt {rate('q_dec') / ossl:.2f}x")


if __name__ == "__main__":
    main()
