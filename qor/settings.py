"""Qor's settings: typed, validated, read from ``QOR_*`` environment variables and ``qor.toml``.

Precedence (highest first): arguments given in code, ``QOR_*`` environment variables, the TOML file
named by ``QOR_CONFIG`` (else ``./qor.toml``, else ``$XDG_CONFIG_HOME/qor/qor.toml``), defaults.

The defaults need no server at all (the *embedded default*): everything lives in one data
directory (``$XDG_DATA_HOME/qor``, i.e. ``~/.local/share/qor``) — a filesystem object store, a
SQLite register and a local key-encryption key. Production points ``database_url`` at PostgreSQL,
``store_uri`` at ``s3://bucket/prefix`` with the ``s3_*`` settings, and ``prefect_api_url`` at a
Prefect server; nothing else changes.

A secret left at a placeholder value (``changeme``, ``<secret>``, ``xxx``…) is refused at start-up:
a depository must never run on a credential copied from an example file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from qor.errors import ConfigurationError

_PLACEHOLDER = re.compile(
    r"^(?:<.*>|\{\{.*\}\}|\$\{.*\}|x{3,}|\*{3,}|\.{3}|"
    r"change[-_ ]?me|changeit|replace[-_ ]?me|todo|tbd|fixme|placeholder|example|"
    r"secret|password|passwd|your[-_ ]?.*|default)$",
    re.IGNORECASE,
)


def is_placeholder(value: str) -> bool:
    """Whether ``value`` looks like a secret copied from an example rather than a real one."""
    return bool(_PLACEHOLDER.match(value.strip())) or not value.strip()


def _xdg_dir(variable: str, fallback: str) -> Path:
    raw = os.environ.get(variable, "")
    base = Path(raw) if raw and Path(raw).is_absolute() else Path.home() / fallback
    return base / "qor"


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/qor`` (``~/.local/share/qor`` when unset)."""
    return _xdg_dir("XDG_DATA_HOME", ".local/share")


def _config_files() -> list[Path]:
    named = os.environ.get("QOR_CONFIG")
    if named:
        return [Path(named)]
    return [p for p in (Path("qor.toml"), _xdg_dir("XDG_CONFIG_HOME", ".config") / "qor.toml")
            if p.is_file()][:1]


def config_sources(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """Qor's precedence for any settings class: code, then ``QOR_*`` variables, then the TOML
    file (see the module docstring). Other settings classes (the e-library's) reuse it."""
    files = _config_files()
    sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
    if files:
        sources.append(TomlConfigSettingsSource(settings_cls, toml_file=files))
    return tuple(sources)


class QorSettings(BaseSettings):
    """Every setting Qor reads. Field ``foo_bar`` is environment variable ``QOR_FOO_BAR``."""

    model_config = SettingsConfigDict(
        env_prefix="QOR_", extra="ignore", validate_default=True, frozen=True
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    """Holds the embedded store, register and keys unless those are set explicitly."""

    library_name: str = "State Library"
    """Source-Organization in every bag; printed on the accounting books."""
    report_language: Literal["kk", "ru", "en"] = "en"
    """Language of the HTML reports the CLI writes (accounting books, stocktake and write-off
    acts, debt and fixity reports) when ``--lang`` is not given; ``qor compliance report``
    writes all three unless told; the console uses the page's language."""
    national_library: bool = False
    """R5: only a national library receives legal deposit copies as a source of acquisition."""

    # the register
    database_url: str | None = None
    """SQLAlchemy URL. Default: ``sqlite:///<data_dir>/register.sqlite3``."""

    # object storage
    store_uri: str | None = None
    """``file:///abs/path`` or ``s3://bucket/prefix``. Default: ``<data_dir>/store``."""
    replica_store_uri: str | None = None
    """A second store the flow copies each verified bag to (integrity repairs from it)."""
    s3_endpoint_url: str | None = None
    """Only for S3-compatible servers; leave unset for AWS S3."""
    s3_region: str = "us-east-1"
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    s3_object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] | None = None
    s3_retention_days: int | None = Field(default=None, ge=1)

    # keys
    key_dir: Path | None = None
    """Local key-encryption key files (0600). Default: ``<data_dir>/keys``."""

    # fixity audits and their alerts (integrity; see docs/fixity.md)
    fixity_deep_every_days: int = Field(default=30, ge=1, le=3650)
    """Every bag is deep-checked at least once in this many days (the daily audit's share)."""
    alert_smtp_url: SecretStr | None = None
    """``smtp://[user:pass@]host[:port]`` (or ``smtps://``, ``smtp+starttls://``) for alerts."""
    alert_email_to: str | None = None
    """Comma-separated addresses that receive a failed audit's alert."""
    alert_email_from: str | None = None
    alert_webhook_url: SecretStr | None = None
    """A URL that receives a failed audit's alert as a JSON POST (chat hooks, paging)."""

    # orchestration
    prefect_api_url: str | None = None
    """A Prefect server's API; unset: Qor's resident local server (``qor server``), started on
    first use with its SQLite database under ``<data dir>/prefect``."""
    prefect_start_timeout_s: float = Field(default=240.0, gt=0, le=3600)
    """How long a command waits for the local Prefect server it starts to answer (it takes
    about 10 s on a quiet 2-core machine, over a minute on a busy one; once only)."""
    prefect_ui: bool = True
    """Serve the Prefect UI from the local server (``qor server status`` prints its address)."""
    dask_scheduler_address: str | None = None
    """``tcp://host:8786`` of a dask.distributed scheduler for the OCR of pages; unset = threads."""

    # capture
    ocr_languages: str = "kaz+rus+eng"
    """Tesseract models for items whose language the register does not know (and for every item
    when ``ocr_languages_from_item`` is false)."""
    ocr_languages_from_item: bool = True
    """The item's language in the register chooses the OCR models (kk → ``kaz+rus``, ru →
    ``rus``; ``eng`` only when the item or a page's script says so)."""
    ocr_layout: Literal["page", "line"] = "page"
    """``line``: every input is one text line or region crop (ground-truth work), read as one
    line; ``page``: whole pages, segmented into columns, blocks and lines."""
    ocr_prepare_old_print: Literal["auto", "always", "off"] = "auto"
    """Adaptive binarisation, background and bleed-through suppression, despeckle of the OCR
    input (never of the archival image): ``auto`` on pages whose measures call for it."""
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256)
    """Pages processed at once (each Tesseract runs single-threaded)."""
    max_image_pixels: int = Field(default=400_000_000, ge=1_000_000)
    """Decompression-bomb guard: a page with more pixels is refused."""
    dpi_fallback: int | None = Field(default=None, ge=50, le=2400)
    """Resolution assumed when a scan does not record one; unset = refuse such scans."""
    min_dpi: float | None = Field(default=200.0, ge=0, le=2400)
    """The capture profile's minimum resolution: image pages below it are refused by name (text
    scanned at less is read badly and cannot be rescanned from the copy); 0 or unset: none."""
    page_timeout_s: float = Field(default=300.0, gt=0)
    """Limit for each Tesseract run on one page, seconds."""
    orientation: bool = True
    """Turn pages upright (0/90/180/270) with Tesseract OSD; ``false`` switches the step off."""
    osd_policy: Literal["always", "when_unsure"] = "when_unsure"
    """``when_unsure`` runs OSD only on pages that do not read upright; ``always`` on every page."""
    deskew: bool = True
    """Straighten skewed pages; ``false`` switches the step off."""
    deskew_threshold_deg: float = Field(default=0.1, ge=0, le=10)
    """Pages skewed by more than this are straightened."""
    ocr_skew_tolerance_deg: float = Field(default=3.0, ge=0, le=10)
    """Pages skewed up to this are recognised as scanned and straightened after OCR (their OCR
    geometry turned along); beyond it they are straightened before OCR. 0 = always before."""
    clean_borders: bool = False
    """Paint dark scanner borders at the page edges with the paper colour."""
    confidence_gate: float = Field(default=70.0, ge=0, le=100)
    """A page whose mean word confidence (0–100) is below this marks the copy for review."""
    access_jpeg_quality: int = Field(default=45, ge=10, le=95)
    """JPEG quality of page images in access-profile PDFs."""
    access_text_pages: Literal["bitonal", "grey", "off"] = "bitonal"
    """Text pages of access PDFs (flows.capture.access): ``bitonal`` (1-bit Group 4 at up to
    300 dpi, the default), ``grey`` (grey JPEG at 150 dpi) or ``off`` (like pictures)."""
    access_derivatives: bool = True
    """Make the access derivatives (access PDF, reading images) when digitising; ``false``
    stores masters and the archival PDF only, and ``qor copies derive`` adds them later."""
    pdf_raster_dpi: int | None = Field(default=None, ge=50, le=1200)
    """Resolution for scanner-PDF pages that must be rasterised; unset = ``dpi_fallback`` or 300."""

    # circulation and reader debts (R16), legal deposit (R7)
    smtp_url: str | None = None
    """``smtp://host:port``, ``smtp+starttls://user:pass@host:587`` or ``smtps://…``."""
    mail_sender: str = "library@localhost"
    reminder_steps: tuple[int, ...] = (1, 7, 30)
    """Days overdue at which a reminder is sent."""
    block_after_days: int | None = Field(default=30, ge=1)
    """Days overdue after which the reader is blocked (unset: never)."""
    debt_limit: int = Field(default=0, ge=0)
    """Overdue items a reader may have and still borrow."""
    deposit_move_off_days: bool = True
    """R7: a term ending on a day off ends on the next working day (Civil Code rule on terms)."""

    # SIP2 server for self-check machines and RFID gates (`qor sip2 serve`, docs/circulation.md)
    sip2_host: str = "127.0.0.1"
    sip2_port: int = Field(default=6001, ge=1, le=65535)
    sip2_certfile: Path | None = None
    """TLS certificate (PEM); with ``sip2_keyfile`` the server speaks SIP2 over TLS only."""
    sip2_keyfile: Path | None = None
    sip2_accounts: dict[str, dict[str, str]] = Field(default_factory=dict)
    """One account per machine: ``{"kiosk-1": {"password_hash": "$argon2id$…",
    "service_point": "LEND"}}`` (hash from ``qor sip2 hash-password``)."""
    sip2_institution: str = "qor"
    """The institution id (AO) the machines send and the server answers with."""
    sip2_encoding: str = "utf-8"
    sip2_idle_timeout_s: float = Field(default=3600.0, gt=0)
    """A connection silent this long is closed."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return config_sources(settings_cls, init_settings, env_settings)

    @field_validator("ocr_languages")
    @classmethod
    def _languages(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z_]{3,}(\+[a-z_]{3,})*", value):
            raise ValueError(f"not a Tesseract language list like 'kaz+rus+eng': {value!r}")
        return value

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> QorSettings:
        for name in ("s3_access_key", "s3_secret_key"):
            secret = getattr(self, name)
            if secret is not None and is_placeholder(secret.get_secret_value()):
                raise ValueError(f"QOR_{name.upper()} is left at a placeholder value")
        if self.database_url:
            match = re.match(r"^[^:]+://[^:/@]+:([^@]*)@", self.database_url)
            if match and is_placeholder(match.group(1)):
                raise ValueError("QOR_DATABASE_URL carries a placeholder password")
        return self

    # Derived locations. Properties, not stored fields, so they follow data_dir.
    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'register.sqlite3'}"

    @property
    def effective_store_uri(self) -> str:
        return self.store_uri or (self.data_dir / "store").as_uri()

    @property
    def effective_key_dir(self) -> Path:
        return self.key_dir or self.data_dir / "keys"

    @property
    def work_dir(self) -> Path:
        """Scratch space for runs in progress (never counted as stored)."""
        return self.data_dir / "work"

    def redacted(self) -> dict[str, object]:
        """Settings as a dict with secrets and database passwords masked, for display."""
        out: dict[str, object] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                out[name] = "**********" if value.get_secret_value() else ""
            elif name == "database_url" and isinstance(value, str):
                out[name] = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", value)
            else:
                out[name] = str(value) if isinstance(value, Path) else value
        return out


def load_settings(**overrides: object) -> QorSettings:
    """Read the settings; a validation failure becomes one clear :class:`ConfigurationError`."""
    from pydantic import ValidationError

    try:
        return QorSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in e.errors()
        )
        raise ConfigurationError(f"invalid Qor settings: {reasons}") from e
