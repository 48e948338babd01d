"""``qor elibrary …``: run the readers' e-library and look after its index, rights and accounts."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from qor.cli._common import (
    JsonOpt,
    cli_settings,
    console,
    current_actor,
    emit_json,
    fail,
)
from qor.errors import QorError

if TYPE_CHECKING:
    pass



app = typer.Typer(
    help="The e-library (электронды кітапхана / электронная библиотека): readers search and "
    "read digital copies remotely, within each copy's rights (R6).",
    no_args_is_help=True,
)


def _password(prompt: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return value


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: setting).")]
    = None,
    port: Annotated[int | None, typer.Option(help="Port (default: setting).")] = None,
    certfile: Annotated[str | None, typer.Option(help="TLS certificate (PEM).")] = None,
    keyfile: Annotated[str | None, typer.Option(help="TLS private key (PEM).")] = None,
) -> None:
    """Start the e-library web service (uvicorn). Cookies are Secure: serve it over HTTPS
    (here with --certfile/--keyfile, or behind a TLS proxy), or on localhost."""
    import uvicorn

    from elibrary.config import load_elibrary_settings, make_config
    from elibrary.web import create_app
    from qor import wiring

    settings = cli_settings()
    try:
        elib = load_elibrary_settings()
        config = make_config(settings, elib)
        from catalog_sync import db

        sessions = db.session_factory(wiring.register_engine(settings))
        app_ = create_app(config, sessions=sessions,
                          open_store=lambda uri: wiring.store_for_uri(settings, uri),
                          keyring=wiring.keyring(settings))
    except QorError as e:
        raise fail(e) from e
    uvicorn.run(app_, host=host or elib.elibrary_host, port=port or elib.elibrary_port,
                ssl_certfile=certfile, ssl_keyfile=keyfile, proxy_headers=False,
                server_header=False, log_level="info")


@app.command()
def index(
    inventory_number: Annotated[str | None, typer.Argument(
        help="Index this item's latest digital copy; all copies when left out.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Read copies' encrypted OCR text into the search index (decrypted in memory only)."""
    from sqlalchemy import select

    from catalog_sync import register
    from catalog_sync.models import DigitalCopy
    from elibrary.textindex import index_copy
    from qor import wiring

    settings = cli_settings()
    results = []
    try:
        with wiring.register_session(settings) as session:
            if inventory_number:
                bag_ids = [register.find_copy(session, inventory_number).bag_id]
            else:
                bag_ids = list(session.scalars(select(DigitalCopy.bag_id).order_by(
                    DigitalCopy.id)))
        for bag_id in bag_ids:
            with wiring.register_session(settings) as session:
                results.append(index_copy(session, settings, bag_id))
    except QorError as e:
        raise fail(e) from e
    if json_out:
        emit_json([{**r.__dict__, "rights": r.rights.value} for r in results])
        return
    for r in results:
        console.print(f"indexed [bold]{r.inventory_number}[/] ({r.bag_id}): {r.pages} pages, "
                      f"{r.characters:,} characters, rights {r.rights.value}")
    if not results:
        console.print("no digital copies to index")


@app.command()
def rights(
    inventory_number: Annotated[str, typer.Argument(help="Item whose latest copy to change.")],
    value: Annotated[str, typer.Argument(help="open | readers | reading-room | dark")],
    version: Annotated[int | None, typer.Option(help="Copy version (default: latest).")] = None,
    actor: Annotated[str, typer.Option(help="Who decides (audit log).")] = "cli",
    json_out: JsonOpt = False,
) -> None:
    """Set who may read a copy: open, readers, reading-room (library networks) or dark."""
    from catalog_sync import register
    from elibrary.config import load_elibrary_settings
    from elibrary.library import parse_rights, set_rights
    from qor import wiring

    settings = cli_settings()
    try:
        new = parse_rights(value)
        default = load_elibrary_settings().elibrary_default_rights
        with wiring.register_session(settings) as session:
            copy = register.find_copy(session, inventory_number, version=version)
            old = set_rights(session, bag_id=copy.bag_id, rights=new, actor=actor,
                             default_rights=default)
            bag_id = copy.bag_id
    except QorError as e:
        raise fail(e) from e
    if json_out:
        emit_json({"bag_id": bag_id, "before": old.value, "after": new.value})
    else:
        console.print(f"{inventory_number} ({bag_id}): {old.value} → [bold]{new.value}[/]")


@app.command("add-reader")
def add_reader(
    ticket_number: Annotated[str, typer.Argument(help="Reader ticket (оқырман билеті).")],
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input.")] = False,
) -> None:
    """Open an e-library account for a reader of the register."""
    from elibrary.accounts import create_reader_account
    from qor import wiring

    settings = cli_settings()
    password = _password("Password", password_stdin)
    try:
        with wiring.register_session(settings) as session:
            create_reader_account(session, ticket_number=ticket_number, password=password,
                                  actor=current_actor())
    except QorError as e:
        raise fail(e) from e
    console.print(f"reader {ticket_number} can now sign in to the e-library")


@app.command("add-staff")
def add_staff(
    username: Annotated[str, typer.Argument()],
    role: Annotated[str, typer.Option(
        help="operator | preservation | librarian | statistician | admin")],
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input.")] = False,
) -> None:
    """Open a staff account with one role (R10: each role reaches only what it needs)."""
    from elibrary.accounts import create_staff_account
    from qor import wiring

    settings = cli_settings()
    password = _password("Password", password_stdin)
    try:
        with wiring.register_session(settings) as session:
            create_staff_account(session, username=username, role=role, password=password,
                                 actor=current_actor())
    except QorError as e:
        raise fail(e) from e
    console.print(f"staff account {username} ({role}) created")


@app.command()
def unlock(
    name: Annotated[str, typer.Argument(help="Reader ticket or staff user name.")],
    staff: Annotated[bool, typer.Option("--staff", help="A staff account.")] = False,
) -> None:
    """Lift a lock-out after repeated wrong passwords."""
    from elibrary import accounts
    from qor import wiring

    settings = cli_settings()
    try:
        with wiring.register_session(settings) as session:
            accounts.unlock(session, kind=accounts.STAFF if staff else accounts.READER, name=name)
    except QorError as e:
        raise fail(e) from e
    console.print(f"{name} unlocked")


@app.command("forget-reads")
def forget_reads(json_out: JsonOpt = False) -> None:
    """Detach reads older than ``elibrary_read_log_days`` from readers' accounts."""
    from elibrary.config import load_elibrary_settings
    from elibrary.delivery import forget_readers
    from qor import wiring

    settings = cli_settings()
    try:
        days = load_elibrary_settings().elibrary_read_log_days
        with wiring.register_session(settings) as session:
            n = forget_readers(session, older_than_days=days)
    except QorError as e:
        raise fail(e) from e
    if json_out:
        emit_json({"reads_anonymised": n, "older_than_days": days})
    else:
        console.print(f"{n} reads older than {days} days no longer name a reader")
