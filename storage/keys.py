"""Key management: key-encryption keys (KEKs) by id, wrapping of per-bag data keys, rotation.

Envelope encryption (конверттік шифрлау / конвертное шифрование): every bag gets one random
256-bit *data key*; each payload file is encrypted under a key derived from it
(:mod:`storage.crypto`). The data key is stored only *wrapped* (encrypted) under a
key-encryption key held by a :class:`Keyring`. Rotation re-wraps data keys under a new KEK;
payload objects, which may be under retention, are never rewritten.

Key material never appears in ``repr``, logs or error messages: only KEK ids do.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import re
import secrets
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.errors import (
    InsecureKeyFile,
    KeyNotFound,
    KeyringError,
    KeyringUnavailable,
    ObjectExists,
    ObjectNotFound,
    UnwrapFailed,
)

if TYPE_CHECKING:
    from storage.store import ObjectStore

logger = logging.getLogger(__name__)

DATA_KEY_BYTES = 32
#: Wrapping by a local or environment KEK: AES-256-GCM, 12-byte random nonce, the KEK id and the
#: algorithm name as associated data. Wrapped form: nonce ‖ ciphertext ‖ tag (60 bytes).
WRAP_AES_GCM = "A256GCM-KW1"
#: Wrapping by AWS KMS ``Encrypt`` with an encryption context; the blob is KMS's own.
WRAP_AWS_KMS = "AWS-KMS1"

_KMS_TRANSIENT = frozenset(
    {"ThrottlingException", "KMSInternalException", "DependencyTimeoutException"}
)
_KEK_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,254}$")


def _check_kek_id(kek_id: str) -> str:
    if not _KEK_ID_RE.fullmatch(kek_id) or len(kek_id.encode()) > 255:
        raise KeyringError(
            f"invalid key-encryption key id {kek_id!r}: 1-255 ASCII letters, digits or ._:/+=@-"
        )
    return kek_id


@dataclass(frozen=True)
class WrappedKey:
    """A bag's data key encrypted under the key-encryption key ``kek_id`` (not secret)."""

    kek_id: str
    wrapped: bytes = field(repr=False)
    algorithm: str = WRAP_AES_GCM

    def to_json(self) -> dict[str, str]:
        """A JSON-safe form, e.g. for the register or a key record."""
        return {
            "kek_id": self.kek_id,
            "algorithm": self.algorithm,
            "wrapped": base64.b64encode(self.wrapped).decode("ascii"),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> WrappedKey:
        """Inverse of :meth:`to_json`; raises :class:`KeyringError` on a malformed record."""
        try:
            return cls(
                kek_id=_check_kek_id(str(obj["kek_id"])),
                algorithm=str(obj["algorithm"]),
                wrapped=base64.b64decode(str(obj["wrapped"]), validate=True),
            )
        except (KeyError, ValueError, binascii.Error) as e:
            raise KeyringError(f"malformed wrapped-key record: {type(e).__name__}") from e


@dataclass(frozen=True)
class BagKey:
    """A bag's plaintext data key together with its wrapping. ``repr`` never shows the key."""

    data_key: bytes = field(repr=False)
    wrapped: WrappedKey

    def __post_init__(self) -> None:
        if len(self.data_key) != DATA_KEY_BYTES:
            raise KeyringError(f"a data key has {DATA_KEY_BYTES} bytes")

    @property
    def kek_id(self) -> str:
        return self.wrapped.kek_id


class Keyring(ABC):
    """Key-encryption keys by id. Subclasses implement :meth:`wrap` and :meth:`unwrap`."""

    #: Human-readable location for messages (a folder, an environment variable, a KMS region).
    where: str = "keyring"

    @property
    @abstractmethod
    def current_kek_id(self) -> str:
        """The id new bag keys are wrapped under."""

    @abstractmethod
    def kek_ids(self) -> list[str]:
        """Ids of every key-encryption key this keyring can use."""

    @abstractmethod
    def wrap(self, data_key: bytes, *, kek_id: str | None = None) -> WrappedKey:
        """Encrypt ``data_key`` under ``kek_id`` (default: the current KEK)."""

    @abstractmethod
    def unwrap(self, wrapped: WrappedKey) -> bytes:
        """Recover the data key; :class:`KeyNotFound` or :class:`UnwrapFailed` otherwise."""

    def has_key(self, kek_id: str) -> bool:
        return kek_id in self.kek_ids()

    def new_bag_key(self) -> BagKey:
        """A fresh random data key for one bag, wrapped under the current KEK."""
        data_key = secrets.token_bytes(DATA_KEY_BYTES)
        return BagKey(data_key=data_key, wrapped=self.wrap(data_key))

    def open_bag_key(self, wrapped: WrappedKey) -> BagKey:
        """The :class:`BagKey` for an existing wrapping (to add files to a bag, or to read)."""
        return BagKey(data_key=self.unwrap(wrapped), wrapped=wrapped)

    def rewrap(self, wrapped: WrappedKey, *, to_kek_id: str | None = None) -> WrappedKey:
        """The same data key wrapped under ``to_kek_id`` (default: the current KEK).

        Needs the old KEK to still be present; payload ciphertext is untouched.
        """
        target = to_kek_id or self.current_kek_id
        if wrapped.kek_id == target:
            return wrapped
        return self.wrap(self.unwrap(wrapped), kek_id=target)


def _aes_wrap(kek: bytes, kek_id: str, data_key: bytes) -> WrappedKey:
    nonce = secrets.token_bytes(12)
    aad = f"{WRAP_AES_GCM}\x00{kek_id}".encode()
    return WrappedKey(kek_id, nonce + AESGCM(kek).encrypt(nonce, data_key, aad), WRAP_AES_GCM)


def _aes_unwrap(kek: bytes, wrapped: WrappedKey) -> bytes:
    if wrapped.algorithm != WRAP_AES_GCM:
        raise UnwrapFailed(wrapped.kek_id, f"algorithm {wrapped.algorithm!r} is not this keyring's")
    if len(wrapped.wrapped) != 12 + DATA_KEY_BYTES + 16:
        raise UnwrapFailed(wrapped.kek_id, f"wrapped key has {len(wrapped.wrapped)} bytes, not 60")
    aad = f"{WRAP_AES_GCM}\x00{wrapped.kek_id}".encode()
    try:
        return AESGCM(kek).decrypt(wrapped.wrapped[:12], wrapped.wrapped[12:], aad)
    except InvalidTag as e:
        raise UnwrapFailed(
            wrapped.kek_id, "authentication failed (different key under this id?)"
        ) from e


class _Secret:
    """Holds key bytes; its repr is opaque so a traceback's locals never print them."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<secret>"


class LocalKeyring(Keyring):
    """Key-encryption keys in local files — the embedded default (``qor keys init``).

    Layout of ``key_dir`` (mode 0700)::

        kek-20260126-3fa9.key   one JSON file per KEK (mode 0600): id, created, key (base64)
        CURRENT                 the id of the KEK new bags are wrapped under

    The folder and a first key are created on first use. A key file or folder accessible to
    group or others is refused (:class:`InsecureKeyFile`), as ssh does.
    """

    def __init__(self, key_dir: Path, *, create: bool = True) -> None:
        self.key_dir = Path(key_dir)
        self.where = str(self.key_dir)
        self._keys: dict[str, _Secret] = {}
        self._create = create
        self._loaded = False

    def __repr__(self) -> str:
        return f"LocalKeyring({str(self.key_dir)!r})"

    # -- loading ------------------------------------------------------------------------------

    def _ensure_dir(self) -> None:
        if not self.key_dir.exists():
            if not self._create:
                raise KeyringError(
                    f"key folder {self.key_dir} does not exist (run `qor keys init`)"
                )
            # Missing parents too are made 0700 (mkdir(parents=True) would make them 0755): the
            # data folder holds the register's personal data beside the keys (issue 15).
            for folder in reversed([self.key_dir, *self.key_dir.parents]):
                if not folder.exists():
                    folder.mkdir(mode=0o700, exist_ok=True)
            logger.info("created key folder %s", self.key_dir)
        mode = stat.S_IMODE(self.key_dir.stat().st_mode)
        if mode & 0o077:
            raise InsecureKeyFile(str(self.key_dir), mode)

    def _load(self) -> None:
        if self._loaded:
            return
        self._ensure_dir()
        for path in sorted(self.key_dir.glob("*.key")):
            kek_id = path.name[: -len(".key")]
            self._keys[kek_id] = _Secret(self._read_key_file(path, kek_id))
        if not self._keys and self._create:
            self.create_key()
        self._loaded = True

    def _read_key_file(self, path: Path, kek_id: str) -> bytes:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise InsecureKeyFile(str(path), mode)
        try:
            obj = json.loads(path.read_text("utf-8"))
            key = base64.b64decode(obj["key"], validate=True)
            if obj["kek_id"] != kek_id:
                raise ValueError("id in file differs from its name")
        except (ValueError, KeyError, TypeError, binascii.Error) as e:
            # The exception text could quote the file's content: name only the file and the type.
            raise KeyringError(f"key file {path} is malformed ({type(e).__name__})") from None
        if len(key) != 32:
            raise KeyringError(f"key file {path} does not hold a 256-bit key")
        return key

    # -- management ---------------------------------------------------------------------------

    def create_key(self) -> str:
        """Create a new KEK file (0600), make it current, and return its id."""
        self._ensure_dir()
        day = datetime.now(UTC).strftime("%Y%m%d")
        while True:
            kek_id = f"kek-{day}-{secrets.token_hex(2)}"
            path = self.key_dir / f"{kek_id}.key"
            key = secrets.token_bytes(32)
            body = json.dumps(
                {
                    "kek_id": kek_id,
                    "created": datetime.now(UTC).isoformat(),
                    "algorithm": "AES-256",
                    "key": base64.b64encode(key).decode("ascii"),
                }
            ).encode()
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "wb") as f:
                f.write(body + b"\n")
                f.flush()
                os.fsync(f.fileno())
            break
        self._keys[kek_id] = _Secret(key)
        self._write_current(kek_id)
        logger.info("created key-encryption key %s in %s", kek_id, self.key_dir)
        return kek_id

    def _write_current(self, kek_id: str) -> None:
        tmp = self.key_dir / f".CURRENT.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(kek_id + "\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.key_dir / "CURRENT")
        dfd = os.open(self.key_dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def set_current(self, kek_id: str) -> None:
        """Make an existing KEK the one new bags are wrapped under."""
        self._load()
        if kek_id not in self._keys:
            raise KeyNotFound(kek_id, self.where)
        self._write_current(kek_id)

    def retire_key(self, kek_id: str) -> None:
        """Delete a KEK file (after every wrapping under it has been re-wrapped).

        The current KEK cannot be retired.
        """
        self._load()
        if kek_id == self.current_kek_id:
            raise KeyringError(f"{kek_id!r} is the current key-encryption key; rotate first")
        if kek_id not in self._keys:
            raise KeyNotFound(kek_id, self.where)
        (self.key_dir / f"{kek_id}.key").unlink()
        del self._keys[kek_id]
        logger.info("retired key-encryption key %s from %s", kek_id, self.key_dir)

    # -- Keyring ------------------------------------------------------------------------------

    @property
    def current_kek_id(self) -> str:
        self._load()
        cur = self.key_dir / "CURRENT"
        if cur.exists():
            kek_id = cur.read_text("utf-8").strip()
            if kek_id in self._keys:
                return kek_id
            raise KeyNotFound(kek_id, f"{self.where} (named by CURRENT)")
        if len(self._keys) == 1:
            return next(iter(self._keys))
        raise KeyringError(f"{self.where} has several keys and no CURRENT file")

    def kek_ids(self) -> list[str]:
        self._load()
        return sorted(self._keys)

    def wrap(self, data_key: bytes, *, kek_id: str | None = None) -> WrappedKey:
        kek_id = kek_id or self.current_kek_id
        self._load()
        if kek_id not in self._keys:
            raise KeyNotFound(kek_id, self.where)
        return _aes_wrap(self._keys[kek_id].value, kek_id, data_key)

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        self._load()
        secret = self._keys.get(wrapped.kek_id)
        if secret is None:
            raise KeyNotFound(wrapped.kek_id, self.where)
        return _aes_unwrap(secret.value, wrapped)


class EnvKeyring(Keyring):
    """Key-encryption keys from an environment variable (for containers and CI).

    Format: ``id:base64key[,id:base64key…]``; the first entry is current. Generate one entry
    with :func:`new_env_key`.
    """

    def __init__(
        self, variable: str = "QOR_KEK", *, environ: Mapping[str, str] | None = None
    ) -> None:
        env = os.environ if environ is None else environ
        self.where = f"environment variable {variable}"
        raw = env.get(variable)
        if not raw:
            raise KeyringError(f"{self.where} is not set")
        self._keys: dict[str, _Secret] = {}
        self._order: list[str] = []
        for n, entry in enumerate(raw.split(",")):
            kek_id, sep, b64 = entry.strip().partition(":")
            try:
                if not sep:
                    raise ValueError("no ':'")
                key = base64.b64decode(b64, validate=True)
                if len(key) != 32:
                    raise ValueError("not 32 bytes")
            except (ValueError, binascii.Error):
                # Never echo the value: it is a secret.
                raise KeyringError(
                    f"{self.where}: entry {n + 1} is not 'id:base64(32 bytes)'"
                ) from None
            _check_kek_id(kek_id)
            self._keys[kek_id] = _Secret(key)
            self._order.append(kek_id)

    def __repr__(self) -> str:
        return f"EnvKeyring({self.where!r}, kek_ids={self._order!r})"

    @property
    def current_kek_id(self) -> str:
        return self._order[0]

    def kek_ids(self) -> list[str]:
        return list(self._order)

    def wrap(self, data_key: bytes, *, kek_id: str | None = None) -> WrappedKey:
        kek_id = kek_id or self.current_kek_id
        if kek_id not in self._keys:
            raise KeyNotFound(kek_id, self.where)
        return _aes_wrap(self._keys[kek_id].value, kek_id, data_key)

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        secret = self._keys.get(wrapped.kek_id)
        if secret is None:
            raise KeyNotFound(wrapped.kek_id, self.where)
        return _aes_unwrap(secret.value, wrapped)


def new_env_key(kek_id: str | None = None) -> str:
    """One fresh ``id:base64key`` entry for :class:`EnvKeyring` (print it once, store it safely)."""
    kek_id = _check_kek_id(kek_id or f"kek-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(2)}")
    return f"{kek_id}:{base64.b64encode(secrets.token_bytes(32)).decode('ascii')}"


class KmsKeyring(Keyring):
    """Key-encryption keys held by AWS KMS (or a KMS-compatible service) through boto3.

    The data key is sent to KMS ``Encrypt`` under ``key_id`` with the encryption context
    ``{"qor:purpose": "bag-data-key"}``; ``Decrypt`` names the KEK id so KMS refuses a blob
    made under another key. ``key_ids`` lists older KEKs still allowed for unwrapping.
    """

    ENCRYPTION_CONTEXT: ClassVar[dict[str, str]] = {"qor:purpose": "bag-data-key"}

    def __init__(
        self,
        key_id: str,
        *,
        key_ids: Iterable[str] = (),
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        client: Any | None = None,
    ) -> None:
        self._current = _check_kek_id(key_id)
        self._ids = [self._current, *[_check_kek_id(k) for k in key_ids if k != key_id]]
        self.where = f"KMS {endpoint_url or region}"
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "kms",
                region_name=region,
                endpoint_url=endpoint_url,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5),
            )
        self._client = client

    def __repr__(self) -> str:
        return f"KmsKeyring({self._current!r}, where={self.where!r})"

    @property
    def current_kek_id(self) -> str:
        return self._current

    def kek_ids(self) -> list[str]:
        return list(self._ids)

    def _call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

        try:
            result: dict[str, Any] = getattr(self._client, op)(**kwargs)
            return result
        except ParamValidationError:
            # Its message quotes parameter values, which include the data key: never show it.
            raise KeyringError(f"{self.where}: invalid {op} request") from None
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            kek = str(kwargs.get("KeyId", "?"))
            if code in {"NotFoundException", "DisabledException"}:
                raise KeyNotFound(kek, f"{self.where} ({code})") from None
            if code in {"InvalidCiphertextException", "IncorrectKeyException"}:
                raise UnwrapFailed(kek, code) from None
            if code in _KMS_TRANSIENT:
                raise KeyringUnavailable(self.where, code) from None
            raise KeyringError(f"{self.where} refused {op}: {code}") from None
        except BotoCoreError as e:
            # Request parameters (which hold key material) are not part of BotoCoreError's text.
            raise KeyringUnavailable(self.where, f"{type(e).__name__}: {e}") from None

    def wrap(self, data_key: bytes, *, kek_id: str | None = None) -> WrappedKey:
        kek_id = kek_id or self._current
        out = self._call(
            "encrypt", KeyId=kek_id, Plaintext=data_key, EncryptionContext=self.ENCRYPTION_CONTEXT
        )
        return WrappedKey(kek_id, bytes(out["CiphertextBlob"]), WRAP_AWS_KMS)

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        if wrapped.algorithm != WRAP_AWS_KMS:
            raise UnwrapFailed(wrapped.kek_id, f"algorithm {wrapped.algorithm!r} is not KMS")
        out = self._call(
            "decrypt",
            KeyId=wrapped.kek_id,
            CiphertextBlob=wrapped.wrapped,
            EncryptionContext=self.ENCRYPTION_CONTEXT,
        )
        key = bytes(out["Plaintext"])
        if len(key) != DATA_KEY_BYTES:
            raise UnwrapFailed(wrapped.kek_id, "KMS returned a key of the wrong length")
        return key


class MultiKeyring(Keyring):
    """Several keyrings seen as one: wraps with the first, unwraps with whichever holds the id.

    Useful while migrating, e.g. from local key files to a KMS.
    """

    def __init__(self, *keyrings: Keyring) -> None:
        if not keyrings:
            raise KeyringError("MultiKeyring needs at least one keyring")
        self._rings = keyrings
        self.where = " + ".join(k.where for k in keyrings)

    @property
    def current_kek_id(self) -> str:
        return self._rings[0].current_kek_id

    def kek_ids(self) -> list[str]:
        return [i for r in self._rings for i in r.kek_ids()]

    def _ring_for(self, kek_id: str) -> Keyring:
        for ring in self._rings:
            if ring.has_key(kek_id):
                return ring
        raise KeyNotFound(kek_id, self.where)

    def wrap(self, data_key: bytes, *, kek_id: str | None = None) -> WrappedKey:
        kek_id = kek_id or self.current_kek_id
        return self._ring_for(kek_id).wrap(data_key, kek_id=kek_id)

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        return self._ring_for(wrapped.kek_id).unwrap(wrapped)


# --- rotation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RotationResult:
    """What :func:`rotate_keys` did: the new wrapping per bag, and the bags already current."""

    rewrapped: dict[str, WrappedKey]
    unchanged: list[str]
    to_kek_id: str


def rotate_keys(
    keyring: Keyring,
    wrapped_keys: Mapping[str, WrappedKey] | Iterable[tuple[str, WrappedKey]],
    *,
    to_kek_id: str | None = None,
) -> RotationResult:
    """Re-wrap every bag's data key under ``to_kek_id`` (default: the keyring's current KEK).

    ``wrapped_keys`` maps a bag id to its *current* wrapping (as the register holds it). The
    caller stores each returned wrapping (register, and :func:`write_key_record` if used) and
    only then retires the old KEK. No payload object is read or written: stored objects may be
    under retention, and the header inside each still names the original KEK, which is why
    decryption takes the current wrapping separately.

    All bags are re-wrapped before anything is returned; a failure on any bag raises before
    the caller persists a partial rotation.
    """
    target = to_kek_id or keyring.current_kek_id
    items = wrapped_keys.items() if isinstance(wrapped_keys, Mapping) else wrapped_keys
    rewrapped: dict[str, WrappedKey] = {}
    unchanged: list[str] = []
    for bag_id, wrapped in items:
        if wrapped.kek_id == target:
            unchanged.append(bag_id)
            continue
        rewrapped[bag_id] = keyring.rewrap(wrapped, to_kek_id=target)
    logger.info(
        "re-wrapped %d bag keys under %s (%d already current)",
        len(rewrapped),
        target,
        len(unchanged),
    )
    return RotationResult(rewrapped=rewrapped, unchanged=unchanged, to_kek_id=target)


# --- store-side key records ------------------------------------------------------------------

#: Key records live outside every bag's prefix, so bags stay valid BagIt bags.
KEY_RECORD_PREFIX = "_qor/keys/"


def key_record_key(bag_id: str, kek_id: str) -> str:
    """Object key of the record of ``bag_id``'s data key wrapped under ``kek_id``."""
    safe_kek = kek_id.replace("/", "_").replace(":", "_")
    return f"{KEY_RECORD_PREFIX}{bag_id}/{safe_kek}.json"


def write_key_record(store: ObjectStore, bag_id: str, wrapped: WrappedKey) -> None:
    """Record a wrapping of ``bag_id``'s data key in the store itself (create-only).

    One small object per (bag, KEK): rotation *adds* a record and never rewrites one, so this
    works under object lock. It lets ``qor register rebuild-links`` recover the current
    wrapping after losing the register. Re-recording the same KEK is a no-op.
    """
    body = json.dumps({"bag_id": bag_id, **wrapped.to_json()}, sort_keys=True).encode()
    with contextlib.suppress(ObjectExists):
        store.put_chunks(key_record_key(bag_id, wrapped.kek_id), [body])


def read_key_records(store: ObjectStore, bag_id: str) -> list[WrappedKey]:
    """Every recorded wrapping of ``bag_id``'s data key (any order)."""
    out: list[WrappedKey] = []
    for info in store.list(f"{KEY_RECORD_PREFIX}{bag_id}/"):
        with store.open_read(info.key) as f:
            out.append(WrappedKey.from_json(json.loads(f.read())))
    return out


def usable_wrapping(keyring: Keyring, candidates: Iterable[WrappedKey]) -> WrappedKey:
    """The first wrapping whose KEK this keyring holds (the current KEK preferred)."""
    cands = list(candidates)
    if not cands:
        raise ObjectNotFound("key records", "(no wrapping recorded)")
    ids = set(keyring.kek_ids())
    ordered = sorted(cands, key=lambda w: w.kek_id != keyring.current_kek_id)
    for w in ordered:
        if w.kek_id in ids:
            return w
    raise KeyNotFound(", ".join(sorted({w.kek_id for w in cands})), keyring.where)


def iter_kek_ids(wrapped: Iterable[WrappedKey]) -> Iterator[str]:
    """Distinct KEK ids in ``wrapped`` (to see which KEKs are still needed before retiring)."""
    seen: set[str] = set()
    for w in wrapped:
        if w.kek_id not in seen:
            seen.add(w.kek_id)
            yield w.kek_id
