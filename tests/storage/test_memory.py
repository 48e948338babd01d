"""Constant memory: encrypting and decrypting a 2 GiB file stays within 64 MiB of growth.

Heavy (about half a minute); runs in CI like every other test. Measured in a fresh process so
earlier tests' high-water marks do not hide growth: peak RSS (``ru_maxrss``) before and after,
and Python's own peak allocation (``tracemalloc``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

GiB = 1024**3
LIMIT = 64 * 1024 * 1024

PROBE = textwrap.dedent(
    """
    import hashlib, json, resource, sys, tempfile, tracemalloc
    from pathlib import Path
    from storage import LocalKeyring, decrypt_chunks, encrypt_chunks
    from tests.storage.conftest import pattern_chunks

    total = int(sys.argv[1])
    kdir = Path(sys.argv[2])
    keyring = LocalKeyring(kdir)
    bag_key = keyring.new_bag_key()
    fid = "data/masters/KZ-000123-0001.tif"
    # Warm up every code path once so lazily-imported modules count in the baseline.
    list(decrypt_chunks(encrypt_chunks(pattern_chunks(3 << 20), bag_key=bag_key, file_id=fid),
                        keyring=keyring, file_id=fid))
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    h_in, h_cipher, h_out = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    cipher_size = 0

    def source():
        for c in pattern_chunks(total):
            h_in.update(c)
            yield c

    def tee(stream):
        global cipher_size
        for c in stream:
            h_cipher.update(c)
            cipher_size += len(c)
            yield c

    out_size = 0
    for piece in decrypt_chunks(tee(encrypt_chunks(source(), bag_key=bag_key, file_id=fid)),
                                keyring=keyring, file_id=fid):
        h_out.update(piece)
        out_size += len(piece)
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"rss_growth": rss - base_rss, "py_peak": py_peak, "out_size": out_size,
                      "cipher_size": cipher_size, "same": h_in.digest() == h_out.digest()}))
    """
)


def test_two_gib_round_trip_in_constant_memory(tmp_path: Path) -> None:
    keys = tmp_path / "private"
    keys.mkdir(mode=0o700)
    root = Path(__file__).parents[2]
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(2 * GiB), str(keys / "keys")],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["same"] and r["out_size"] == 2 * GiB
    assert r["cipher_size"] > 2 * GiB  # real ciphertext went through (header + tags)
    assert r["rss_growth"] < LIMIT, f"peak RSS grew by {r['rss_growth'] / 2**20:.1f} MiB"
    assert r["py_peak"] < LIMIT, f"Python allocations peaked at {r['py_peak'] / 2**20:.1f} MiB"
