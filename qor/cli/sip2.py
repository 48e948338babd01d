"""``qor sip2 …``: the SIP2 server for self-check machines and RFID gates."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qor.cli._common import cli_settings, fail
from qor.errors import QorError

if TYPE_CHECKING:
    pass

app = typer.Typer(
    help="SIP2 (3M Standard Interchange Protocol 2.00) for self-check machines (өздігінен "
    "беру · станция самообслуживания) and RFID security gates.",
    no_args_is_help=True,
)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: setting).")]
    = None,
    port: Annotated[int | None, typer.Option(help="Port (default: setting; 0: any free).")]
    = None,
    certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
) -> None:
    """Answer self-check machines until stopped (SIGTERM/Ctrl-C). Each machine logs in with
    its account from QOR_SIP2_ACCOUNTS and works at that account's service point."""
    from catalog_sync import circulation, db
    from catalog_sync.mail import SmtpMailer
    from catalog_sync.sip2.accounts import parse_accounts
    from catalog_sync.sip2.errors import Sip2ConfigError
    from catalog_sync.sip2.server import Sip2Server, tls_context
    from catalog_sync.sip2.session import Sip2Config
    from elibrary.accounts import ReaderPinCheck, SignInThrottle
    from elibrary.config import load_elibrary_settings
    from qor import wiring

    # A server's log is its record of sessions and errors: INFO and up, whatever -v says, one
    # plain line per record (journald stamps the time; the console's rich handler is too slow
    # for a record per loan).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    server_log = logging.getLogger("catalog_sync.sip2")
    server_log.setLevel(logging.INFO)
    server_log.addHandler(handler)
    server_log.propagate = False
    settings = cli_settings()
    cert = certfile or settings.sip2_certfile
    key = keyfile or settings.sip2_keyfile
    try:
        accounts = parse_accounts(settings.sip2_accounts)
        if not accounts:
            raise Sip2ConfigError(
                "QOR_SIP2_ACCOUNTS is empty: no machine could log in (one account per machine)"
            )
        if (cert is None) != (key is None):
            raise Sip2ConfigError("TLS needs both a certificate and a key (--certfile/--keyfile)")
        tls = tls_context(cert, key) if cert is not None and key is not None else None
        elib = load_elibrary_settings()
        # Readers' PINs are their e-library passwords, throttled as the sign-in page does.
        pins = ReaderPinCheck(SignInThrottle(
            max_failed=elib.elibrary_max_failed_logins,
            cap=timedelta(minutes=elib.elibrary_lockout_minutes)))
        engine = wiring.register_engine(settings)
        sessions = db.session_factory(engine)
        with sessions.begin() as s:
            for account in accounts.values():  # R15: each account's service point must exist
                circulation.get_service_point(s, account.service_point)
        config = Sip2Config(
            accounts=accounts,
            institution=settings.sip2_institution,
            library_name=settings.library_name,
            encoding=settings.sip2_encoding,
            policy=circulation.CirculationPolicy(debt_limit=settings.debt_limit),
            mailer=SmtpMailer(settings.smtp_url) if settings.smtp_url else None,
            mail_sender=settings.mail_sender,
            patron_passwords=pins,
        )
        server = Sip2Server(
            (host or settings.sip2_host, settings.sip2_port if port is None else port),
            config=config,
            sessions=sessions,
            tls=tls,
            idle_timeout_s=settings.sip2_idle_timeout_s,
        )
    except QorError as e:
        raise fail(e) from e
    except OSError as e:
        raise fail(Sip2ConfigError(f"cannot listen on {host or settings.sip2_host}: {e}")) from e

    def stop(_signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    bound_host = host or settings.sip2_host
    print(
        f"SIP2 server listening on {bound_host}:{server.port} "
        f"({'TLS' if tls else 'plain TCP'}), {len(accounts)} account(s)",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        logging.getLogger(__name__).info("SIP2 server stopped")


@app.command("hash-password")
def hash_password_cmd(
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input.")] = False,
) -> None:
    """Print the argon2id hash of a machine's password, for QOR_SIP2_ACCOUNTS."""
    from catalog_sync.sip2.accounts import hash_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        print(hash_password(password))
    except QorError as e:
        raise fail(e) from e


def install(root: typer.Typer) -> None:
    """Register ``qor sip2`` on the root app."""
    root.add_typer(app, name="sip2")
