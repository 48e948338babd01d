"""``open_store(uri)``: the store a URI names."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from storage.errors import UnsupportedStoreURI
from storage.filestore import FileStore
from storage.s3options import S3Options
from storage.store import ObjectStore


def open_store(
    uri: str,
    *,
    s3: S3Options | None = None,
    create: bool = True,
    retention_days: int | None = None,
) -> ObjectStore:
    """Open the store ``uri`` names.

    * ``file:///abs/path`` or a plain path → :class:`FileStore` (created if ``create``);
      ``retention_days`` applies to it (for S3 it is part of ``s3``);
    * ``s3://bucket`` or ``s3://bucket/prefix`` → :class:`S3Store` with ``s3`` options
      (endpoint, credentials, Object Lock, …).
    """
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise UnsupportedStoreURI(uri, "no bucket name")
        from storage.s3store import S3Store  # boto3 loads only for an S3 store

        return S3Store(bucket=parsed.netloc, prefix=unquote(parsed.path), options=s3)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise UnsupportedStoreURI(uri, "file URIs must be local (file:///path)")
        return FileStore(Path(unquote(parsed.path)), create=create, retention_days=retention_days)
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and uri[1:3] in (":\\", ":/")):
        if not uri:
            raise UnsupportedStoreURI(uri, "empty")
        return FileStore(Path(uri).expanduser(), create=create, retention_days=retention_days)
    raise UnsupportedStoreURI(uri, f"unknown scheme {parsed.scheme!r} (use file:// or s3://)")
