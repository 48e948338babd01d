"""The options of an S3 store, as plain values: importable without boto3, so settings and
commands that never talk to S3 do not pay for loading it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MiB = 1024 * 1024


@dataclass(frozen=True)
class S3Options:
    """Connection and behaviour settings of an :class:`S3Store` (plain values, no globals).

    ``multipart_threshold``: objects larger than this go up in parts of ``part_size``
    (at most ``max_concurrency`` parts in flight, so memory ≈ ``part_size × (concurrency+1)``).
    ``page_size``: keys per ``ListObjectsV2`` page (1000 is the S3 maximum).
    """

    endpoint_url: str | None = None
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    region: str = "us-east-1"
    multipart_threshold: int = 32 * MiB
    part_size: int = 16 * MiB
    max_concurrency: int = 4
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] | None = None
    retention_days: int | None = None
    page_size: int = 1000
    max_attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    addressing_style: Literal["auto", "path", "virtual"] = "auto"

    def __post_init__(self) -> None:
        if self.part_size < 5 * MiB:
            raise ValueError("part_size must be at least 5 MiB (S3 minimum)")
        if self.multipart_threshold < 1:
            raise ValueError("multipart_threshold must be positive")
        if not 1 <= self.page_size <= 1000:
            raise ValueError("page_size must be within 1..1000")
        if self.object_lock_mode not in (None, "GOVERNANCE", "COMPLIANCE"):
            raise ValueError("object_lock_mode must be GOVERNANCE, COMPLIANCE or None")
        if self.retention_days is not None and self.retention_days < 1:
            raise ValueError("retention_days must be ≥ 1")
