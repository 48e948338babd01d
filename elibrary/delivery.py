"""Serving a copy's PDF: HTTP byte ranges decrypted segment by segment, never to disk.

:func:`parse_range` reads a ``Range`` header (RFC 9110 §14); :class:`CopyFiles` opens a copy's
encrypted access PDF once (store object, size, header) and yields exactly the plaintext bytes of
a range through :func:`storage.iter_decrypt_range`, which fetches and authenticates only the
segments the range touches. :class:`ReadLog` records what was served, aggregated per account,
copy, day and place, without any other personal data.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import insert, update
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync.models import utcnow
from elibrary.errors import CopyNotAvailable, RangeNotSatisfiable
from elibrary.library import CopyView
from elibrary.models import ReadRecord
from integrity import layout
from storage import (
    Keyring,
    ObjectNotFound,
    ObjectStore,
    WrappedKey,
    iter_decrypt_range,
    parse_header,
)

logger = logging.getLogger(__name__)

# ASCII digits only (RFC 9110's DIGIT): ``\d`` alone also takes "٣" and int() reads it as 3.
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$", re.ASCII)


def _position(digits: str, size: int) -> int:
    """A byte position of any length, without converting thousands of digits: anything past
    the file's end is ``size`` (which the caller clamps to, or refuses as a first position)."""
    digits = digits.lstrip("0") or "0"
    if len(digits) > len(str(size)) + 1:
        return size
    return min(int(digits), size)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` for a single satisfiable byte range; None to send the whole
    file (no header, a malformed one, or several ranges — RFC 9110 lets a server ignore those).
    Raises :class:`RangeNotSatisfiable` (416) for a range starting past the file's end; a
    range *ending* past it, with however many digits, is clamped to the end (RFC 9110)."""
    if header is None:
        return None
    value = header.strip().replace(" ", "")
    if "," in value:
        return None
    m = _RANGE.match(value)
    if m is None or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # suffix range: the last N bytes (more than the file: the whole file)
        n = _position(last, size)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(header, size)
        return max(0, size - n), size
    start = _position(first, size)
    # RFC 9110 §14.1.2: a last-pos at or past the end (however many digits) means the end.
    end = size if not last else _position(last, size) + 1
    if last and end <= start:
        return None  # last < first: syntactically invalid, ignored
    if start >= size:
        raise RangeNotSatisfiable(header, size)
    return start, min(end, size)


@dataclass(frozen=True)
class OpenedFile:
    """A copy's access PDF in its store: where it is and how big its plaintext is."""

    bag_id: str
    store: ObjectStore
    key: str
    file_id: str
    version_id: str | None
    cipher_size: int
    plain_size: int
    wrapped: WrappedKey

    def read_cipher(self, start: int, length: int) -> bytes:
        return self.store.read_range(self.key, start, length, version_id=self.version_id)


class CopyFiles:
    """Opens copies' access PDFs (cached per bag) and decrypts ranges of them."""

    def __init__(self, *, open_store: Callable[[str], ObjectStore], keyring: Keyring,
                 cache_size: int = 256) -> None:
        self._open_store = open_store
        self._keyring = keyring
        self._stores: dict[str, ObjectStore] = {}
        self._files: OrderedDict[str, OpenedFile] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _store(self, uri: str) -> ObjectStore:
        with self._lock:
            store = self._stores.get(uri)
        if store is None:
            store = self._open_store(uri)
            with self._lock:
                self._stores[uri] = store
        return store

    def open(self, view: CopyView) -> OpenedFile:
        """The PDF readers get: the access PDF (``data/web/*.pdf``) when the copy has access
        derivatives, else (older bags) the archival one (``data/access/*.pdf``)."""
        with self._lock:
            cached = self._files.get(view.bag_id)
            if cached is not None:
                self._files.move_to_end(view.bag_id)
                return cached
        store = self._store(view.store_uri)
        prefix = layout.bag_prefix(view.bag_id)
        pdfs = [i for i in store.list(prefix + layout.WEB_DIR)
                if i.key.endswith(".pdf") and "/" not in i.key.removeprefix(
                    prefix + layout.WEB_DIR)]
        if not pdfs:
            pdfs = [i for i in store.list(prefix + layout.ACCESS_DIR) if i.key.endswith(".pdf")]
        if not pdfs:
            raise CopyNotAvailable(view.bag_id)
        opened = self.open_file(view, pdfs[0].key.removeprefix(prefix))
        with self._lock:
            self._files[view.bag_id] = opened
            while len(self._files) > self._cache_size:
                self._files.popitem(last=False)
        return opened

    def open_file(self, view: CopyView, bag_path: str) -> OpenedFile:
        """One encrypted file of the copy's bag (``bag_path`` e.g. ``data/web/pages/0001.jpg``);
        :class:`CopyNotAvailable` when the bag has no such file."""
        store = self._store(view.store_uri)
        prefix = layout.bag_prefix(view.bag_id)
        try:
            info = store.head(prefix + bag_path)
        except ObjectNotFound:
            raise CopyNotAvailable(view.bag_id) from None
        file_id = info.key.removeprefix(prefix)
        raw_prefix = store.read_range(info.key, 0, HEADER_LENGTH_PROBE, version_id=info.version_id)
        total = int.from_bytes(raw_prefix[8:10], "big") if len(raw_prefix) >= 10 else 0
        raw = raw_prefix[:total] if total <= len(raw_prefix) else store.read_range(
            info.key, 0, total, version_id=info.version_id)
        header = parse_header(raw, file_id=file_id)
        return OpenedFile(
            bag_id=view.bag_id, store=store, key=info.key, file_id=file_id,
            version_id=info.version_id, cipher_size=info.size,
            plain_size=header.plaintext_size(info.size),
            wrapped=WrappedKey(kek_id=view.kek_id, wrapped=view.wrapped_key),
        )

    def list_paths(self, view: CopyView, folder: str) -> list[str]:
        """Bag paths of the copy's files under ``folder`` (e.g. ``data/text/``)."""
        store = self._store(view.store_uri)
        prefix = layout.bag_prefix(view.bag_id)
        return [i.key.removeprefix(prefix) for i in store.list(prefix + folder)]

    def read_all(self, opened: OpenedFile) -> bytes:
        """The whole plaintext of a (small) file, authenticated."""
        return b"".join(self.iter_range(opened, 0, opened.plain_size))

    def iter_range(self, opened: OpenedFile, start: int, end: int) -> Iterator[bytes]:
        """Authenticated plaintext bytes ``[start, end)``, segment by segment."""
        return iter_decrypt_range(
            opened.read_cipher, start, end - start, keyring=self._keyring,
            file_id=opened.file_id, wrapped=opened.wrapped, cipher_size=opened.cipher_size,
        )


#: Enough bytes to hold any usual header (a KMS-wrapped key makes it longer: read again then).
HEADER_LENGTH_PROBE = 512


class ReadLog:
    """Records served reads: one row per (copy, account, day, place) and flush, bytes summed.

    ``record`` is cheap (in memory); ``flush`` writes (called every few seconds by the web
    application and at shutdown). Rows keep no address, browser or time of day.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._pending: dict[tuple[int, int | None, date, str], int] = {}
        self._lock = threading.Lock()

    def record(self, *, copy_id: int, account_id: int | None, place: str, nbytes: int) -> None:
        key = (copy_id, account_id, utcnow().date(), place)
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + nbytes

    def flush(self) -> int:
        """Write what was recorded since the last flush; returns the number of rows."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        rows = [{"copy_id": c, "reader_account_id": a, "day": d, "place": p, "bytes_served": n}
                for (c, a, d, p), n in pending.items()]
        try:
            with self._sessions() as session, session.begin():
                session.execute(insert(ReadRecord), rows)
        except Exception:
            with self._lock:  # keep them for the next flush rather than lose statistics
                for (c, a, d, p), n in pending.items():
                    self._pending[(c, a, d, p)] = self._pending.get((c, a, d, p), 0) + n
            raise
        return len(rows)


def forget_readers(session: Session, *, older_than_days: int) -> int:
    """Drop the account from reads older than ``older_than_days`` (statistics keep copy, day
    and bytes). Returns the number of rows changed."""
    cutoff = utcnow().date() - timedelta(days=older_than_days)
    result = session.execute(
        update(ReadRecord)
        .where(ReadRecord.day < cutoff, ReadRecord.reader_account_id.is_not(None))
        .values(reader_account_id=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
