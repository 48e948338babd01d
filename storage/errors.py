"""Errors raised by the depository store, the encryption format and the keyring.

Every class derives from :class:`qor.errors.QorError`; callers act on ``exit_code``,
``http_status`` and ``retryable`` and on the structured attributes, never on the wording.
No message ever contains key material: only key-encryption-key *ids* are named.
"""

from __future__ import annotations

from datetime import datetime

from qor.errors import QorError


class StorageError(QorError):
    """Base of every error of the ``storage`` package."""

    exit_code = 1
    http_status = 500


# --- object stores -------------------------------------------------------------------------


class InvalidKey(StorageError):  # noqa: N818
    """An object key is unsafe or malformed (empty segment, ``..``, backslash, too long, …)."""

    http_status = 400

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"invalid object key {key!r}: {reason}")
        self.key = key
        self.reason = reason


class ObjectNotFound(StorageError):  # noqa: N818
    """No object (or no such version) under the key."""

    http_status = 404

    def __init__(self, store_uri: str, key: str, version_id: str | None = None) -> None:
        where = f"{key!r} (version {version_id})" if version_id else repr(key)
        super().__init__(f"no object {where} in {store_uri}")
        self.store_uri = store_uri
        self.key = key
        self.version_id = version_id


class ObjectExists(StorageError):  # noqa: N818
    """Create-only refusal: an object already exists under the key and is never overwritten."""

    http_status = 409

    def __init__(self, store_uri: str, key: str) -> None:
        super().__init__(
            f"object {key!r} already exists in {store_uri}; stored objects are never overwritten"
        )
        self.store_uri = store_uri
        self.key = key


class KeyConflict(StorageError):  # noqa: N818
    """The key cannot be stored because it collides with another key's path (FileStore only).

    On a filesystem ``a`` cannot be both a file and the folder holding ``a/b``.
    """

    http_status = 409

    def __init__(self, store_uri: str, key: str, other: str) -> None:
        super().__init__(f"object {key!r} in {store_uri} collides with existing path {other!r}")
        self.store_uri = store_uri
        self.key = key
        self.other = other


class ChecksumMismatch(StorageError):  # noqa: N818
    """The bytes received do not have the checksum the caller (or the store) stated.

    Nothing is left visible under the key when this is raised by a put.
    """

    exit_code = 4
    http_status = 422

    def __init__(self, key: str, algorithm: str, expected: str, found: str | None) -> None:
        shown = found if found is not None else "(computed by the server, not returned)"
        super().__init__(
            f"checksum mismatch for {key!r}: {algorithm} expected {expected}, found {shown}"
        )
        self.key = key
        self.algorithm = algorithm
        self.expected = expected
        self.found = found


class RetentionActive(StorageError):  # noqa: N818
    """The object is under retention (object lock) and cannot be deleted or replaced yet."""

    http_status = 409

    def __init__(self, store_uri: str, key: str, retain_until: datetime | None) -> None:
        until = retain_until.isoformat() if retain_until else "an unknown date (server refused)"
        super().__init__(f"object {key!r} in {store_uri} is under retention until {until}")
        self.store_uri = store_uri
        self.key = key
        self.retain_until = retain_until


class StoreUnavailable(StorageError):  # noqa: N818
    """The store could not be reached or answered with a server error after retries."""

    exit_code = 3
    http_status = 503
    retryable = True

    def __init__(self, store_uri: str, operation: str, reason: str) -> None:
        super().__init__(f"store {store_uri} unavailable during {operation}: {reason}")
        self.store_uri = store_uri
        self.operation = operation
        self.reason = reason


class StoreRefused(StorageError):  # noqa: N818
    """The store answered with an error that retrying will not fix (access denied, bad request)."""

    exit_code = 3

    def __init__(self, store_uri: str, operation: str, reason: str) -> None:
        super().__init__(f"store {store_uri} refused {operation}: {reason}")
        self.store_uri = store_uri
        self.operation = operation
        self.reason = reason


class UnsupportedStoreURI(StorageError):  # noqa: N818
    """``open_store`` does not know the URI's scheme or the URI is malformed."""

    exit_code = 2
    http_status = 400

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"cannot open store {uri!r}: {reason}")
        self.uri = uri
        self.reason = reason


# --- encryption ----------------------------------------------------------------------------


class DecryptionFailed(StorageError):  # noqa: N818
    """Authentication failed: the ciphertext is damaged, truncated, reordered or not this file's.

    ``segment_index`` is ``None`` when the header itself is malformed. No plaintext of an
    unauthenticated segment is ever returned.
    """

    exit_code = 4
    http_status = 422

    def __init__(self, file_id: str, segment_index: int | None, reason: str) -> None:
        where = "header" if segment_index is None else f"segment {segment_index}"
        super().__init__(f"cannot decrypt {file_id!r}: {where}: {reason}")
        self.file_id = file_id
        self.segment_index = segment_index
        self.reason = reason


class WrongKey(DecryptionFailed):
    """The key available does not open this file; ``expected_kek_id`` names the one needed."""

    def __init__(self, file_id: str, expected_kek_id: str, reason: str) -> None:
        super().__init__(file_id, None, f"needs key-encryption key {expected_kek_id!r}: {reason}")
        self.expected_kek_id = expected_kek_id


# --- keys ----------------------------------------------------------------------------------


class KeyringError(StorageError):
    """Base of keyring problems (missing key, unsafe key file, unusable configuration)."""

    exit_code = 3


class KeyNotFound(KeyringError):  # noqa: N818
    """The keyring holds no key-encryption key with this id (retired, or never loaded here)."""

    def __init__(self, kek_id: str, where: str) -> None:
        super().__init__(f"no key-encryption key {kek_id!r} in {where}")
        self.kek_id = kek_id
        self.where = where


class UnwrapFailed(KeyringError):  # noqa: N818
    """A wrapped data key did not authenticate under the named key-encryption key."""

    exit_code = 4

    def __init__(self, kek_id: str, reason: str) -> None:
        super().__init__(f"wrapped data key does not open with {kek_id!r}: {reason}")
        self.kek_id = kek_id
        self.reason = reason


class InsecureKeyFile(KeyringError):  # noqa: N818
    """A key file or key folder is readable by others; the keyring refuses to use it."""

    def __init__(self, path: str, mode: int) -> None:
        super().__init__(
            f"key path {path} has permissions {mode:o}; it must not be accessible to group or "
            "others (chmod 600 for files, 700 for the folder)"
        )
        self.path = path
        self.mode = mode


class KeyringUnavailable(KeyringError):  # noqa: N818
    """A remote keyring (KMS) could not be reached; retrying may help."""

    retryable = True
    http_status = 503

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"keyring {where} unavailable: {reason}")
        self.where = where
        self.reason = reason
