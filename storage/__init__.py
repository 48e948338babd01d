"""Depository storage: object stores, streaming envelope encryption, keys and rotation.

R13: digital copies are kept "in a depository electronic store equipped with
information-protection and security technologies" — this package is that store's software:
create-only, checksum-verified object stores (filesystem or S3), authenticated encryption of
every payload file, and key-encryption keys that rotate without rewriting stored objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from storage.crypto import (
    DEFAULT_SEGMENT_SIZE,
    EnvelopeHeader,
    decrypt_bytes,
    decrypt_chunks,
    decrypt_range,
    encrypt_chunks,
    encrypted_size,
    header_size,
    iter_decrypt_range,
    parse_header,
    read_header,
)
from storage.errors import (
    ChecksumMismatch,
    DecryptionFailed,
    InsecureKeyFile,
    InvalidKey,
    KeyConflict,
    KeyNotFound,
    KeyringError,
    KeyringUnavailable,
    ObjectExists,
    ObjectNotFound,
    RetentionActive,
    StorageError,
    StoreRefused,
    StoreUnavailable,
    UnsupportedStoreURI,
    UnwrapFailed,
    WrongKey,
)
from storage.filestore import FileStore
from storage.keys import (
    BagKey,
    EnvKeyring,
    Keyring,
    KmsKeyring,
    LocalKeyring,
    MultiKeyring,
    RotationResult,
    WrappedKey,
    new_env_key,
    read_key_records,
    rotate_keys,
    usable_wrapping,
    write_key_record,
)
from storage.open import open_store
from storage.s3options import S3Options
from storage.store import ObjectInfo, ObjectStore, copy_object, validate_key

if TYPE_CHECKING:
    from storage.s3store import S3Store


def __getattr__(name: str) -> Any:
    # S3Store is loaded on first use: boto3 and botocore take about a second to import, which
    # a command on a file store (the embedded default) should not pay.
    if name == "S3Store":
        from storage.s3store import S3Store

        return S3Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "BagKey",
    "ChecksumMismatch",
    "DecryptionFailed",
    "EnvKeyring",
    "EnvelopeHeader",
    "FileStore",
    "InsecureKeyFile",
    "InvalidKey",
    "KeyConflict",
    "KeyNotFound",
    "Keyring",
    "KeyringError",
    "KeyringUnavailable",
    "KmsKeyring",
    "LocalKeyring",
    "MultiKeyring",
    "ObjectExists",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "RetentionActive",
    "RotationResult",
    "S3Options",
    "S3Store",
    "StorageError",
    "StoreRefused",
    "StoreUnavailable",
    "UnsupportedStoreURI",
    "UnwrapFailed",
    "WrappedKey",
    "WrongKey",
    "copy_object",
    "decrypt_bytes",
    "decrypt_chunks",
    "decrypt_range",
    "encrypt_chunks",
    "encrypted_size",
    "header_size",
    "iter_decrypt_range",
    "new_env_key",
    "open_store",
    "parse_header",
    "read_header",
    "read_key_records",
    "rotate_keys",
    "usable_wrapping",
    "validate_key",
    "write_key_record",
]
