"""Keyrings and key rotation.

R13 ("information-protection technologies"): keys are kept private, can be rotated, and a
rotation never rewrites a stored payload object (objects may be under retention).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from pathlib import Path

import pytest

from storage import (
    EnvKeyring,
    FileStore,
    InsecureKeyFile,
    KeyNotFound,
    KeyringError,
    KeyringUnavailable,
    KmsKeyring,
    LocalKeyring,
    MultiKeyring,
    WrappedKey,
    WrongKey,
    decrypt_bytes,
    encrypt_chunks,
    new_env_key,
    read_key_records,
    rotate_keys,
    usable_wrapping,
    write_key_record,
)


def private_dir(tmp_path: Path) -> Path:
    d = tmp_path / "private"
    d.mkdir(mode=0o700, exist_ok=True)
    return d


def test_local_keyring_creates_private_key_files_on_first_use(tmp_path: Path) -> None:
    kr = LocalKeyring(private_dir(tmp_path) / "keys")
    kek_id = kr.current_kek_id
    assert re.fullmatch(r"kek-\d{8}-[0-9a-f]{4}", kek_id)
    assert stat.S_IMODE((kr.key_dir).stat().st_mode) == 0o700
    key_file = kr.key_dir / f"{kek_id}.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # A second keyring on the same folder sees the same key and can unwrap.
    bag = kr.new_bag_key()
    assert LocalKeyring(kr.key_dir).unwrap(bag.wrapped) == bag.data_key


@pytest.mark.parametrize("target", ["dir", "file"])
def test_key_files_readable_by_others_are_refused(tmp_path: Path, target: str) -> None:
    kr = LocalKeyring(private_dir(tmp_path) / "keys")
    kek_id = kr.current_kek_id
    path = kr.key_dir if target == "dir" else kr.key_dir / f"{kek_id}.key"
    path.chmod(0o755 if target == "dir" else 0o644)
    with pytest.raises(InsecureKeyFile) as ei:
        LocalKeyring(kr.key_dir).kek_ids()
    assert str(path) in str(ei.value)


def test_keyring_without_create_does_not_invent_keys(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="qor keys init"):
        LocalKeyring(private_dir(tmp_path) / "none", create=False).kek_ids()


def test_env_keyring_reads_keys_and_never_echoes_a_bad_value() -> None:
    entry = new_env_key("kek-env-1")
    older = new_env_key("kek-env-0")
    kr = EnvKeyring("QOR_KEK", environ={"QOR_KEK": f"{entry},{older}"})
    assert kr.current_kek_id == "kek-env-1" and kr.kek_ids() == ["kek-env-1", "kek-env-0"]
    bag = kr.new_bag_key()
    assert kr.unwrap(bag.wrapped) == bag.data_key
    secret = "kek-x:" + base64.b64encode(os.urandom(31)).decode()  # 31 bytes: invalid
    with pytest.raises(KeyringError) as ei:
        EnvKeyring("QOR_KEK", environ={"QOR_KEK": secret})
    assert secret.split(":")[1] not in str(ei.value)
    assert entry.split(":")[1] not in repr(kr)


def test_kms_keyring_unreachable_is_retryable_and_leaks_nothing() -> None:
    """What can be tested here without a KMS: the error path (no server listens there)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "kms",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="a",
        aws_secret_access_key="b",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    kr = KmsKeyring("arn:aws:kms:us-east-1:111122223333:key/qor-test", client=client)
    data_key = os.urandom(32)
    with pytest.raises(KeyringUnavailable) as ei:
        kr.wrap(data_key)
    assert ei.value.retryable
    assert data_key.hex() not in str(ei.value)
    assert base64.b64encode(data_key).decode() not in str(ei.value)
    assert kr.current_kek_id in repr(kr)


def test_multi_keyring_unwraps_with_whichever_holds_the_id(tmp_path: Path) -> None:
    a = LocalKeyring(private_dir(tmp_path) / "a")
    b = EnvKeyring("K", environ={"K": new_env_key("kek-b")})
    bag_a = a.new_bag_key()
    both = MultiKeyring(b, a)
    assert both.current_kek_id == "kek-b"
    assert both.unwrap(bag_a.wrapped) == bag_a.data_key
    moved = both.rewrap(bag_a.wrapped)
    assert moved.kek_id == "kek-b" and b.unwrap(moved) == bag_a.data_key


def test_wrapped_key_json_round_trip() -> None:
    w = WrappedKey("kek-1", os.urandom(60))
    assert WrappedKey.from_json(w.to_json()) == w
    with pytest.raises(KeyringError):
        WrappedKey.from_json({"kek_id": "kek-1", "algorithm": "x", "wrapped": "***"})


# --- rotation --------------------------------------------------------------------------------


def fingerprint(store: FileStore) -> dict[str, tuple[str | None, str, str | None]]:
    """Per payload object: stored SHA-256, SHA-256 of the bytes read back, version id."""
    return {
        i.key: (
            i.sha256,
            hashlib.sha256(store.read_range(i.key, 0, 10**9)).hexdigest(),
            i.version_id,
        )
        for i in store.list("bag-")
    }


def test_rotation_rewraps_every_bag_without_touching_payloads(tmp_path: Path) -> None:
    """`qor keys rotate`: new KEK, re-wrap, retire the old KEK → every bag still decrypts, and
    no stored object's bytes or checksums changed (they are under retention)."""
    from datetime import UTC, datetime, timedelta

    keyring = LocalKeyring(private_dir(tmp_path) / "keys")
    store = FileStore(tmp_path / "store", retention_days=30)
    register: dict[str, WrappedKey] = {}  # what the register keeps: bag id → current wrapping
    plains: dict[str, bytes] = {}
    for n in range(3):
        bag_id = f"bag-{n}"
        bag_key = keyring.new_bag_key()
        register[bag_id] = bag_key.wrapped
        write_key_record(store, bag_id, bag_key.wrapped)
        for name in ("data/access/p.pdf", "data/text/p.txt"):
            plain = os.urandom(5000 + n)
            plains[f"{bag_id}/{name}"] = plain
            store.put_chunks(
                f"{bag_id}/{name}",
                encrypt_chunks([plain], bag_key=bag_key, file_id=name, segment_size=1024),
            )
    old_kek = keyring.current_kek_id
    before = fingerprint(store)

    new_kek = keyring.create_key()
    assert new_kek != old_kek and keyring.current_kek_id == new_kek
    result = rotate_keys(keyring, register)
    assert set(result.rewrapped) == set(register) and result.unchanged == []
    register.update(result.rewrapped)
    for bag_id, w in result.rewrapped.items():
        write_key_record(store, bag_id, w)
    keyring.retire_key(old_kek)
    assert not (keyring.key_dir / f"{old_kek}.key").exists()

    fresh = LocalKeyring(keyring.key_dir)  # as a later process would see it
    assert fresh.kek_ids() == [new_kek]
    for key, plain in plains.items():
        bag_id, name = key.split("/", 1)
        cipher = store.read_range(key, 0, 10**9)
        assert decrypt_bytes(cipher, keyring=fresh, file_id=name, wrapped=register[bag_id]) == plain
        # The immutable header still names the retired KEK: without the current wrapping the
        # error says which key it needs.
        with pytest.raises(WrongKey) as ei:
            decrypt_bytes(cipher, keyring=fresh, file_id=name)
        assert ei.value.expected_kek_id == old_kek
    assert fingerprint(store) == before
    # The store-side records let a rebuilt register find the current wrapping.
    for bag_id in register:
        records = read_key_records(store, bag_id)
        assert {r.kek_id for r in records} == {old_kek, new_kek}
        assert usable_wrapping(fresh, records) == register[bag_id]
    # The objects are still under retention: rotation never needed to touch them.
    assert all(
        store.head(k).retain_until > datetime.now(UTC) + timedelta(days=29)  # type: ignore[operator]
        for k in plains
    )


def test_rotation_is_idempotent_and_needs_the_old_key(tmp_path: Path) -> None:
    keyring = LocalKeyring(private_dir(tmp_path) / "keys")
    w = keyring.new_bag_key().wrapped
    again = rotate_keys(keyring, {"b": w})
    assert again.rewrapped == {} and again.unchanged == ["b"]
    old = keyring.current_kek_id
    keyring.create_key()
    keyring.retire_key(old)
    with pytest.raises(KeyNotFound) as ei:
        rotate_keys(keyring, [("b", w)])
    assert ei.value.kek_id == old


def test_current_key_cannot_be_retired(tmp_path: Path) -> None:
    keyring = LocalKeyring(private_dir(tmp_path) / "keys")
    with pytest.raises(KeyringError, match="current"):
        keyring.retire_key(keyring.current_kek_id)
