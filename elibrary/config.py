"""The e-library's settings (``QOR_ELIBRARY_*`` / ``elibrary_*`` keys in ``qor.toml``) and the
plain configuration value the web application is built from.

:class:`ElibrarySettings` reads the environment and the same ``qor.toml`` as
:class:`qor.settings.QorSettings`; :func:`make_config` turns both into an
:class:`ElibraryConfig` of plain values, which :func:`elibrary.web.create_app` takes (the web
code never reads settings itself).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from elibrary.errors import InvalidParameter
from elibrary.launches import CommandLauncher
from elibrary.models import Rights
from qor.errors import ConfigurationError
from qor.settings import QorSettings, config_sources, is_placeholder

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str, *, name: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 192.168.5.0/24"`` → networks; :class:`InvalidParameter` on a bad entry."""
    out: list[Network] = []
    for part in value.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError as e:
            raise InvalidParameter(name, f"{part!r} is not an IP network ({e})") from e
    return tuple(out)


class ElibrarySettings(BaseSettings):
    """Settings of the e-library. Field ``elibrary_foo`` is environment variable
    ``QOR_ELIBRARY_FOO`` and key ``elibrary_foo`` in ``qor.toml``."""

    model_config = SettingsConfigDict(
        env_prefix="QOR_", extra="ignore", validate_default=True, frozen=True
    )

    elibrary_default_rights: Rights = Rights.READERS
    """Rights a copy gets when it enters the e-library (``qor elibrary rights`` changes them)."""
    elibrary_reading_room_networks: str = ""
    """Comma-separated IP networks of the library's reading rooms (CIDR), for ``reading-room``."""
    elibrary_trusted_proxies: str = ""
    """Reverse proxies whose ``X-Forwarded-For`` is believed (CIDR list); none by default."""
    elibrary_secret_key: SecretStr | None = None
    """Signs anti-forgery and resumption tokens; default: a random key kept in
    ``<data_dir>/elibrary-secret`` (mode 0600)."""
    elibrary_host: str = "127.0.0.1"
    elibrary_port: int = Field(default=8080, ge=1, le=65535)
    elibrary_base_url: str = "http://127.0.0.1:8080"
    """Public address (OAI-PMH ``baseURL`` and record identifiers)."""
    elibrary_admin_email: str = "elibrary@library.invalid"
    """OAI-PMH ``adminEmail``."""
    elibrary_max_failed_logins: int = Field(default=5, ge=1, le=100)
    elibrary_lockout_minutes: int = Field(default=15, ge=1)
    elibrary_session_hours: int = Field(default=8, ge=1, le=24 * 30)
    elibrary_read_log_days: int = Field(default=365, ge=1)
    """After this many days a read keeps only copy, day and bytes: the account is forgotten."""
    elibrary_oai_page_size: int = Field(default=100, ge=1, le=10_000)
    elibrary_pdfjs_dir: Path = Path("/usr/share/javascript/pdf")
    """pdf.js as installed by Debian's ``libjs-pdf`` (``build/pdf.js``, ``build/pdf.worker.js``)."""
    elibrary_mirador_dir: Path = Path.home() / ".cache" / "qor-tools" / "mirador-4.0.0"
    """Mirador's prebuilt bundle (``mirador.min.js``), installed from npm by
    ``infra/web-assets`` (``infra/install-system`` runs it); served under ``/mirador``."""
    elibrary_iiif_cache_mb: int = Field(default=256, ge=8, le=65_536)
    """Bound of the IIIF image cache (decrypted and decoded page images plus encoded tiles, an
    LRU by bytes held in memory), in MiB."""
    elibrary_scans_root: Path | None = None
    """The folder on the server under which the console's operators may launch ``qor
    digitise`` (one sub-folder per batch, readable by the server); unset: the console lists
    runs but launches none. Nothing outside it is ever read for the console."""

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

    @field_validator("elibrary_reading_room_networks", "elibrary_trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        try:
            parse_networks(value, name="networks")
        except InvalidParameter as e:
            raise ValueError(str(e)) from e
        return value

    @field_validator("elibrary_secret_key")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raw = value.get_secret_value()
            if is_placeholder(raw) or len(raw) < 16:
                raise ValueError("QOR_ELIBRARY_SECRET_KEY is a placeholder or shorter than 16")
        return value


def load_elibrary_settings(**overrides: object) -> ElibrarySettings:
    """Read the e-library settings; a bad value becomes one :class:`ConfigurationError`."""
    from pydantic import ValidationError

    try:
        return ElibrarySettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise ConfigurationError(f"invalid e-library settings: {reasons}") from e


@dataclass(frozen=True)
class ElibraryConfig:
    """Everything the web application needs, as plain values."""

    secret_key: bytes = field(repr=False)
    library_name: str = "State Library"
    default_rights: Rights = Rights.READERS
    reading_room_networks: tuple[Network, ...] = ()
    trusted_proxies: tuple[Network, ...] = ()
    base_url: str = "http://127.0.0.1:8080"
    admin_email: str = "elibrary@library.invalid"
    max_failed_logins: int = 5
    lockout_minutes: int = 15
    session_hours: int = 8
    oai_page_size: int = 100
    read_log_days: int = 365
    pdfjs_dir: Path = Path("/usr/share/javascript/pdf")
    mirador_dir: Path = Path.home() / ".cache" / "qor-tools" / "mirador-4.0.0"
    iiif_cache_bytes: int = 256 * 1024 * 1024
    debt_limit: int = 0
    """Overdue loans a reader may have and still borrow at the console's desk (R16)."""
    jobs_api_url: str | None = None
    """The orchestration (Prefect) API the console's jobs page lists runs from."""
    smtp_url: str | None = field(default=None, repr=False)
    """The SMTP server the desk tells a reader through that a held copy waits (``QOR_SMTP_URL``,
    as ``qor loans in`` does); ``None``: nobody is e-mailed and the desk says so."""
    mail_sender: str = "library@localhost"
    """The ``From`` of those e-mails (``QOR_MAIL_SENDER``)."""
    claims_dir: Path | None = None
    """Where the console writes legal-deposit claim letters (R7): ``<data_dir>/deposit-claims``,
    the folder ``qor deposit claims`` writes to; None: the console cannot issue claims."""
    launcher: CommandLauncher | None = None
    """How the console launches ``qor digitise`` and repairs (None: it launches nothing)."""
    fixity_deep_every_days: int = 30
    """The deep-check interval of a storage location without its own schedule."""


def secret_key(settings: QorSettings, elib: ElibrarySettings) -> bytes:
    """The configured secret, or the one kept in ``<data_dir>/elibrary-secret`` (made once)."""
    if elib.elibrary_secret_key is not None:
        return elib.elibrary_secret_key.get_secret_value().encode("utf-8")
    path = settings.data_dir / "elibrary-secret"
    try:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            raise ConfigurationError(f"{path}: group or others can read it (chmod 600)") from None
        return bytes.fromhex(path.read_text("ascii").strip())
    except OSError as e:
        raise ConfigurationError(f"{path}: cannot create the e-library secret ({e})") from e
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text("ascii").strip())


def make_config(settings: QorSettings, elib: ElibrarySettings) -> ElibraryConfig:
    """The web application's configuration from Qor's and the e-library's settings."""
    return ElibraryConfig(
        secret_key=secret_key(settings, elib),
        library_name=settings.library_name,
        default_rights=elib.elibrary_default_rights,
        reading_room_networks=parse_networks(
            elib.elibrary_reading_room_networks, name="elibrary_reading_room_networks"
        ),
        trusted_proxies=parse_networks(
            elib.elibrary_trusted_proxies, name="elibrary_trusted_proxies"
        ),
        base_url=elib.elibrary_base_url.rstrip("/"),
        admin_email=elib.elibrary_admin_email,
        max_failed_logins=elib.elibrary_max_failed_logins,
        lockout_minutes=elib.elibrary_lockout_minutes,
        session_hours=elib.elibrary_session_hours,
        oai_page_size=elib.elibrary_oai_page_size,
        read_log_days=elib.elibrary_read_log_days,
        pdfjs_dir=elib.elibrary_pdfjs_dir,
        mirador_dir=elib.elibrary_mirador_dir,
        iiif_cache_bytes=elib.elibrary_iiif_cache_mb * 1024 * 1024,
        debt_limit=settings.debt_limit,
        jobs_api_url=_jobs_api(settings),
        smtp_url=settings.smtp_url,
        mail_sender=settings.mail_sender,
        claims_dir=settings.data_dir / "deposit-claims",
        launcher=_launcher(settings, elib),
        fixity_deep_every_days=settings.fixity_deep_every_days,
    )


def _launcher(settings: QorSettings, elib: ElibrarySettings) -> CommandLauncher:
    """The console's launcher of ``qor`` commands (launches recorded in
    ``<data_dir>/console-runs``), digitising only under ``elibrary_scans_root`` if set."""
    root = elib.elibrary_scans_root
    if root is not None and (not root.is_absolute() or not root.is_dir()):
        raise ConfigurationError(
            f"elibrary_scans_root: {root} is not an absolute path to a folder on this server")
    return CommandLauncher(scans_root=root, runs_dir=settings.data_dir / "console-runs")


def _jobs_api(settings: QorSettings) -> str | None:
    """The Prefect API ``qor jobs`` would ask: the configured one, else the local service's."""
    from qor import orchestration

    configured = orchestration.configured_api_url(settings)
    if configured is not None:
        return configured[0]
    server, _up = orchestration.local_status(settings)
    return server.api_url if server is not None else None
