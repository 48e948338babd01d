"""Regenerate the encryption test vectors (run once; the outputs are committed).

    .venv/bin/python tests/data/encryption/make_vectors.py

Salts, nonce prefixes and the wrapping nonce are random, so a rerun gives different
ciphertext for the same plaintext; the tests only need *some* committed ciphertext that
today's code (and the byte-level spec in docs/encryption.md) must still decrypt.
The key-encryption key in ``kek.txt`` is a TEST KEY, published on purpose.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from pathlib import Path

from storage import EnvKeyring, encrypt_chunks

HERE = Path(__file__).parent
KEK_ID = "kek-20260101-test"

CASES = [
    # name, file id, plaintext, segment size
    ("empty", "data/text/empty.txt", b"", 64),
    ("one-byte", "data/text/one.txt", b"Q", 64),
    ("two-full-segments", "data/text/two.txt", bytes(range(128)), 64),
    (
        "kazakh-text",
        "data/text/KZ-000123.txt",
        ("Қазақстан Республикасының Ұлттық кітапханасы. Әліппе: ә ғ қ ң ө ұ ү һ і.\n" * 9).encode(),
        64,
    ),
    (
        "default-segment",
        "data/access/KZ-000123.pdf",
        hashlib.shake_256(b"qor").digest(70_000),
        65_536,
    ),
]


def main() -> None:
    kek_file = HERE / "kek.txt"
    if not kek_file.exists():
        kek_file.write_text(f"{KEK_ID}:{base64.b64encode(secrets.token_bytes(32)).decode()}\n")
    keyring = EnvKeyring("QOR_KEK", environ={"QOR_KEK": kek_file.read_text().strip()})
    bag_key = keyring.new_bag_key()
    vectors = []
    for name, file_id, plain, seg in CASES:
        (HERE / f"{name}.plain").write_bytes(plain)
        cipher = b"".join(
            encrypt_chunks([plain], bag_key=bag_key, file_id=file_id, segment_size=seg)
        )
        (HERE / f"{name}.qenc").write_bytes(cipher)
        vectors.append(
            {
                "name": name,
                "file_id": file_id,
                "segment_size": seg,
                "plaintext": f"{name}.plain",
                "ciphertext": f"{name}.qenc",
                "plaintext_sha256": hashlib.sha256(plain).hexdigest(),
                "ciphertext_sha256": hashlib.sha256(cipher).hexdigest(),
            }
        )
    manifest = {
        "format": "QORENC v1",
        "kek_file": "kek.txt",
        "kek_id": KEK_ID,
        "wrapped_data_key": bag_key.wrapped.to_json(),
        # The plaintext data key, so an independent implementation can check its HKDF step.
        "data_key_hex": bag_key.data_key.hex(),
        "vectors": vectors,
    }
    (HERE / "vectors.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
