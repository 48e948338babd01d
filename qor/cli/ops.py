"""``qor doctor``: checks each component this host is configured to use, for an operator.

Each check is a plain function ``check_<component>(settings) -> Check`` that never raises: a broken
component is a result (with what was tried, why it failed and what to do), not an exception, so
one dead service never hides the state of the others. Nothing is written anywhere: the store is
only listed (a depository bucket may be under Object Lock), the key folder is only read (no key is
created), the register's schema is only compared with this release's.
"""

from __future__ import annotations

import dataclasses
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from integrity import layout
from qor.cli._common import (
    cli_settings,
    console,
    emit_json,
    fail,
)

if TYPE_CHECKING:
    from qor.settings import QorSettings

app = typer.Typer(help="Health of this host's Qor installation.", no_args_is_help=False)

#: Exit code when any component is broken (the CLI's "environment/service problem").
EXIT_BROKEN = 3


@dataclass(frozen=True)
class Check:
    """The state of one component: ``component`` is one of :data:`COMPONENTS`."""

    component: str
    ok: bool
    detail: str
    """What was checked and found; when not ``ok``, why, and what to do about it."""


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def check_database(settings: QorSettings) -> Check:
    """The register's database answers, and its schema is this release's (or can be upgraded)."""
    import sqlalchemy as sa
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from catalog_sync import db

    url = sa.engine.make_url(settings.effective_database_url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return Check("database", True,
                     f"{shown} does not exist yet (embedded default: created on first use)")
    if url.get_backend_name() == "sqlite":
        engine = db.make_engine(settings.effective_database_url)
    else:  # fail fast on a host that drops packets instead of waiting for the OS timeout
        engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
            current = MigrationContext.configure(conn).get_current_revision()
    except Exception as e:
        return Check("database", False,
                     f"cannot use the register database {shown}: {_reason(e)}. Is the database "
                     "server running and reachable from this host, and is QOR_DATABASE_URL right?")
    finally:
        engine.dispose()
    head = ScriptDirectory.from_config(db.alembic_config()).get_current_head()
    if current == head:
        return Check("database", True, f"{shown} answers; schema at {head}")
    if current is None:
        return Check("database", True,
                     f"{shown} answers; empty (Qor creates the register schema on first use)")
    return Check("database", True,
                 f"{shown} answers; schema at {current}, this release upgrades it to {head} on "
                 "first use (back the register up first: docs/operations.md)")


def check_store(settings: QorSettings) -> Check:
    """The primary object store (and the replica, if configured) can be listed with our keys."""
    from qor import wiring
    from storage import open_store

    # One attempt, short timeouts: the doctor answers in seconds, not after botocore's backoff.
    options = dataclasses.replace(wiring._s3_options(settings), max_attempts=1,
                                  connect_timeout=5.0)
    uris = [settings.effective_store_uri]
    if settings.replica_store_uri:
        uris.append(settings.replica_store_uri)
    found: list[str] = []
    for uri in uris:
        try:
            store = open_store(uri, s3=options)
            next(iter(store.list(f"{layout.BAG_PREFIX}/")), None)
        except Exception as e:
            where = f" at {settings.s3_endpoint_url}" if uri.startswith("s3://") else ""
            return Check("store", False,
                         f"cannot list the object store {uri}{where}: {_reason(e)}. Is the S3 "
                         "server running, does the bucket exist, are the QOR_S3_* keys right?")
        found.append(uri)
    return Check("store", True, "listed " + " and ".join(found))


def check_keys(settings: QorSettings) -> Check:
    """The key-encryption keys are readable and the current one wraps and unwraps a key."""
    from storage import LocalKeyring

    key_dir = settings.effective_key_dir
    try:
        keyring = LocalKeyring(key_dir, create=False)
        ids = keyring.kek_ids()
        if not ids:
            return Check("keys", False,
                         f"no key-encryption key in {key_dir}: restore the key files from "
                         "custody (docs/operations.md), or create the first one with "
                         "`qor keys init` on a new depository")
        current = keyring.current_kek_id
        probe = secrets.token_bytes(32)
        if keyring.unwrap(keyring.wrap(probe)) != probe:
            return Check("keys", False, f"key {current} in {key_dir} does not unwrap what it "
                         "wrapped: the key file is damaged; restore it from custody")
    except Exception as e:
        return Check("keys", False,
                     f"cannot use the key-encryption keys in {key_dir}: {_reason(e)}. The folder "
                     "must be readable by this user only (0700, files 0600)")
    return Check("keys", True, f"{len(ids)} key(s) in {key_dir}, current {current} works")


def _wrong_modes(settings: QorSettings) -> list[str]:
    import sqlalchemy as sa

    found: list[str] = []

    def want(path: Path, mode: int) -> None:
        try:
            have = stat.S_IMODE(path.lstat().st_mode)
        except FileNotFoundError:
            return
        if have & 0o077:
            found.append(f"{path} is {have:04o}, must be {mode:04o} (chmod {mode:o} {path})")

    url = sa.engine.make_url(settings.effective_database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        register_file = Path(url.database).absolute()
        want(register_file.parent, 0o700)
        for suffix in ("", "-wal", "-shm", "-journal"):
            want(Path(f"{register_file}{suffix}"), 0o600)
    key_dir = settings.effective_key_dir
    want(key_dir, 0o700)
    if key_dir.is_dir():
        for key_file in sorted(key_dir.iterdir()):
            want(key_file, 0o600)
    want(settings.data_dir / "elibrary-secret", 0o600)
    return found


def check_permissions(settings: QorSettings) -> Check:
    """Files holding personal data or keys (the embedded register, key-encryption keys, the
    e-library secret) are 0600 in 0700 folders (issue 15): each wrong mode is named."""
    wrong = _wrong_modes(settings)
    if wrong:
        return Check("permissions", False,
                     "readable by group or others: " + "; ".join(wrong))
    return Check("permissions", True,
                 "the register, key files and e-library secret are this user's only")


def check_tesseract(settings: QorSettings) -> Check:
    """Tesseract runs and has every OCR language of ``ocr_languages`` (plus ``osd``)."""
    from flows._exec import tesseract

    found = tesseract.probe()
    if found is None:
        return Check("tesseract", False, "Tesseract is not installed or does not start "
                     "(Debian: apt-get install tesseract-ocr)")
    try:
        installed = tesseract.languages()
    except Exception as e:
        return Check("tesseract", False, f"tesseract --list-langs failed: {_reason(e)}")
    wanted = [*settings.ocr_languages.split("+"), "osd"]
    missing = [lang for lang in wanted if lang not in installed]
    if missing:
        debs = " ".join(f"tesseract-ocr-{lang}" for lang in missing)
        return Check("tesseract", False,
                     f"Tesseract {found.version} lacks language data: {', '.join(missing)} "
                     f"(Debian: apt-get install {debs})")
    return Check("tesseract", True,
                 f"Tesseract {found.version} at {found.path} with {'+'.join(wanted)}")


def check_verapdf(settings: QorSettings) -> Check:
    """veraPDF starts (it validates every PDF/A before a copy is stored)."""
    from flows._exec import verapdf

    launcher = verapdf.launcher()
    found = verapdf.probe()
    if found is None:
        where = f"launcher {launcher} does not start" if launcher else "no launcher found"
        return Check("verapdf", False,
                     f"veraPDF is unusable ({where}): set QOR_VERAPDF to the veraPDF command, "
                     "or install it (infra/test-services verapdf); it needs Java 11+")
    return Check("verapdf", True, f"veraPDF {found.version} at {found.path}")


def check_alto_schema(settings: QorSettings) -> Check:
    """The official ALTO 4.4 schema is installed and compiles offline: every page's ALTO is
    validated against it before a copy is stored (without it, ALTO is written unvalidated)."""
    import tempfile

    from flows.capture.ocr import PageText, alto_errors, official_alto_schema, write_alto
    from qor.errors import QorError

    schema = official_alto_schema()
    if schema is None:
        return Check("alto-schema", False,
                     "the official ALTO 4.4 schema is not installed, so page ALTO files would be "
                     "stored unvalidated: run infra/install-system (it fetches the schema) or set "
                     "QOR_ALTO_SCHEMA to alto-4-4.xsd (with xlink.xsd beside it)")
    with tempfile.TemporaryDirectory(prefix="qor-doctor-") as tmp:
        probe = write_alto(PageText(100, 100, ()), Path(tmp) / "probe.alto.xml",
                           image_name="probe.png", page_number=1, software_version="doctor",
                           settings="qor doctor")
        try:
            errors = alto_errors(probe, schema=schema)
        except QorError as e:
            return Check("alto-schema", False, f"{e} (QOR_ALTO_SCHEMA={schema})")
    if errors:
        return Check("alto-schema", False,
                     f"Qor's ALTO does not validate against {schema}: {errors[0]}")
    return Check("alto-schema", True, f"official ALTO 4.4 schema at {schema}, compiles offline")


def check_prefect(settings: QorSettings) -> Check:
    """The orchestration server: the configured one answers, or the resident local one (its
    mode, address and pid), which may also be stopped: the next flow command starts it."""
    from qor import orchestration

    configured = orchestration.configured_api_url(settings)
    if configured is not None:
        url, source = configured
        if not orchestration.healthy(url):
            return Check("prefect", False,
                         f"the Prefect API at {url} ({source}) does not answer. Start the "
                         "Prefect server (systemctl start qor-prefect-server) or fix "
                         f"{source}")
        return Check("prefect", True, f"configured Prefect server at {url} ({source}) is "
                     "healthy; flows run in the command's process and report to it")
    server, up = orchestration.local_status(settings)
    log = orchestration.log_path(settings)
    if server is None:
        return Check("prefect", True,
                     "local orchestration service not running: the next flow command starts "
                     f"it (or `qor server start`); its database and log are in {log.parent}")
    if not up:
        return Check("prefect", False,
                     f"local Prefect server pid {server.pid} ({server.api_url}) is running but "
                     f"does not answer: see {log}; `qor server stop` and `qor server start`")
    return Check("prefect", True,
                 f"local Prefect server (resident) at {server.api_url}, pid {server.pid}, "
                 f"Prefect {server.prefect_version}, since {server.started_at}; flows run in "
                 "the command's process and report to it")


COMPONENTS: dict[str, Callable[[QorSettings], Check]] = {
    "database": check_database,
    "store": check_store,
    "keys": check_keys,
    "permissions": check_permissions,
    "tesseract": check_tesseract,
    "verapdf": check_verapdf,
    "alto-schema": check_alto_schema,
    "prefect": check_prefect,
}


def run_checks(settings: QorSettings) -> list[Check]:
    """Every check, in :data:`COMPONENTS` order; a check that crashes counts as broken."""
    out: list[Check] = []
    for name, check in COMPONENTS.items():
        try:
            out.append(check(settings))
        except Exception as e:  # a bug in a check must not hide the other components
            out.append(Check(name, False, f"the check itself failed: {_reason(e)}"))
    return out


@app.callback(invoke_without_command=True)
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]
    = False,
) -> None:
    """Check the database, store, keys, Tesseract languages, veraPDF, the ALTO schema and Prefect.

    Exits 0 when everything works, 3 when any component is broken (each named, with what to do).
    """
    from rich.table import Table


    checks = run_checks(cli_settings())
    broken = [c for c in checks if not c.ok]
    if as_json:
        emit_json({"ok": not broken, "checks": [dataclasses.asdict(c) for c in checks]})
    else:
        table = Table(title="qor doctor", show_lines=False)
        table.add_column("component")
        table.add_column("state")
        table.add_column("detail", overflow="fold")
        for c in checks:
            table.add_row(c.component, "[green]OK[/]" if c.ok else "[bold red]BROKEN[/]",
                          c.detail)
        console.print(table)
        if broken:
            console.print(f"[bold red]{len(broken)} broken:[/] "
                          + ", ".join(c.component for c in broken))
    if broken:
        raise typer.Exit(EXIT_BROKEN)


# --- qor automations ------------------------------------------------------------------------

automations_app = typer.Typer(
    help="Prefect automations that resume a run whose worker died (docs/operations.md).",
    no_args_is_help=True,
)


def _server_settings() -> None:
    """Settings loaded and Prefect pointed at the configured server; refuses the embedded one."""
    import os

    from qor.errors import ConfigurationError

    settings = cli_settings()
    if not (settings.prefect_api_url or os.environ.get("PREFECT_API_URL")):
        raise fail(ConfigurationError(
            "no Prefect server configured (QOR_PREFECT_API_URL): automations live on the "
            "server that runs the deployments, not in the embedded one"))


@automations_app.command("apply")
def automations_apply(
    expiry: Annotated[int, typer.Option(
        "--expiry", help="Seconds without a heartbeat before a run counts as dead.")] = 90,
    max_attempts: Annotated[int, typer.Option(
        "--max-attempts", help="Attempts of one run in all, the first included.")] = 3,
    deployment: Annotated[str, typer.Option(
        "--deployment", help="The deployment to watch, <flow>/<deployment>.")]
    = "digitise/digitise",
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]
    = False,
) -> None:
    """Create or update the zombie-run and resume automations of the digitise deployment.

    Run after every `prefect deploy` of infra/prefect.yaml (idempotent).
    """
    from flows.automations import ResumePolicy, apply_digitise_automations
    from qor.errors import QorError

    _server_settings()
    try:
        applied = apply_digitise_automations(
            policy=ResumePolicy(expiry_seconds=expiry, max_attempts=max_attempts),
            deployment=deployment)
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json([{**dataclasses.asdict(a), "automation_id": str(a.automation_id)}
                    for a in applied])
    else:
        for a in applied:
            console.print(f"{'created' if a.created else 'updated'} {a.name} ({a.automation_id})")


@automations_app.command("remove")
def automations_remove(
    deployment: Annotated[str, typer.Option(
        "--deployment", help="The deployment watched, <flow>/<deployment>.")]
    = "digitise/digitise",
) -> None:
    """Delete the automations of the deployment (runs of dead workers then wait for an operator)."""
    from flows.automations import remove_digitise_automations

    _server_settings()
    console.print(f"removed {remove_digitise_automations(deployment=deployment)} automation(s)")
