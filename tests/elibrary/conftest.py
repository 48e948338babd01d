"""Fixtures of the e-library tests: a library with copies of every right, and the app on it."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from playwright.sync_api import Browser, sync_playwright
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog_sync import db
from elibrary.config import ElibraryConfig, parse_networks
from elibrary.launches import CommandLauncher
from elibrary.models import Rights
from elibrary.web import create_app
from storage import FileStore, LocalKeyring, open_store
from tests.circulation.helpers import Inbox
from tests.elibrary.console_data import ConsoleRegister, make_console_register
from tests.elibrary.library import Library, MadeCopy

READING_ROOM_NET = "10.20.0.0/16"
INSIDE_IP = "10.20.1.7"
OUTSIDE_IP = "203.0.113.9"
#: A Kazakh word that occurs only in the OCR text of the "open" copy.
UNIQUE_WORD = "Жезқазған"
SECRET = b"test secret key for the e-library tests, 48 bytes"
#: Debian's Chromium (infra/install-system) and the switches a headless test run needs.
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass(frozen=True)
class Copies:
    open: MadeCopy
    readers: MadeCopy
    reading_room: MadeCopy
    dark: MadeCopy


def _library(root: Path) -> Library:
    engine = db.make_engine(f"sqlite:///{root / 'register.sqlite3'}")
    db.upgrade(engine)
    store = FileStore(root / "store", fsync=False)
    keyring = LocalKeyring(root / "keys")
    return Library(sessions=db.session_factory(engine), store=store, keyring=keyring,
                   work=root / "work")


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    """A SQLite register, a file store and a keyring, with readers and staff accounts."""
    lib = _library(tmp_path_factory.mktemp("elibrary"))
    lib.add_reader("T-1001")
    lib.add_reader("T-1002")
    lib.add_staff("aigerim", "librarian")
    lib.add_staff("marat", "statistician")
    return lib


@pytest.fixture(scope="session")
def copies(library: Library) -> Copies:
    """Four copies, one per right; only the open one contains UNIQUE_WORD (on page 3)."""
    return Copies(
        open=library.add_copy(
            title="Қазақ даласының тарихы", authors=("Әлихан Бөкейханов",), rights=Rights.OPEN,
            pages=["Бірінші бет. Қазақ халқының тарихы туралы.",
                   "Екінші бет. Дала мен таулар.",
                   f"Үшінші бет. {UNIQUE_WORD} қаласы мыс кенімен белгілі."]),
        readers=library.add_copy(
            title="История степи", rights=Rights.READERS,
            pages=["Первая страница. ҚАЗАҚ степь и история.", "Вторая страница о реках."]),
        reading_room=library.add_copy(
            title="Сирек қолжазба", rights=Rights.READING_ROOM,
            pages=["Оқу залындағы сирек қолжазба мәтіні."]),
        dark=library.add_copy(
            title="Жабық құжат", rights=Rights.DARK,
            pages=["Құпия мәтін: бұл ешқашан көрсетілмейді, қазақ."]),
    )


def make_config(**over: object) -> ElibraryConfig:
    values: dict[str, object] = {
        "secret_key": SECRET, "library_name": "Test Library",
        "reading_room_networks": parse_networks(READING_ROOM_NET, name="t"),
        "base_url": "http://localhost", "oai_page_size": 2, "max_failed_logins": 3,
    }
    values.update(over)
    return ElibraryConfig(**values)  # type: ignore[arg-type]


def build_app(library: Library, **over: object) -> FastAPI:
    return create_app(make_config(**over), sessions=library.sessions,
                      open_store=lambda uri: open_store(uri), keyring=library.keyring,
                      flush_seconds=0.2)


@pytest.fixture(scope="session")
def app(library: Library, copies: Copies) -> FastAPI:
    return build_app(library)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LiveServer:
    url: str
    app: FastAPI


def serve(app: FastAPI, port: int, *, asgi: ASGIApp | None = None) -> Iterator[LiveServer]:
    """Serve ``app`` (or ``asgi``, a wrapper of it) with uvicorn on localhost:``port`` until the
    generator is closed."""
    server = uvicorn.Server(uvicorn.Config(asgi or app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the e-library test server did not start", pytrace=False)
        time.sleep(0.05)
    yield LiveServer(url=f"http://localhost:{port}", app=app)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(library: Library, copies: Copies) -> Iterator[LiveServer]:
    """The e-library served by uvicorn on localhost (for the harvester and the browser)."""
    port = free_port()
    yield from serve(build_app(library, base_url=f"http://localhost:{port}"), port)


@pytest.fixture(scope="session")
def console_register(tmp_path_factory: pytest.TempPathFactory) -> ConsoleRegister:
    """The staff console's register: service points, readers, 705 processed items, one staff
    member per role (tests/elibrary/console_data.py)."""
    return make_console_register(tmp_path_factory.mktemp("console"))


@dataclass
class LostAnswers:
    """A network fault at the server's edge, for the stocktake scans: while ``every`` is set,
    every ``every``-th scan batch is handled in full (stored) and its answer never sent — the
    connection is closed instead, as when a Wi-Fi scanner cart loses the access point."""

    every: int = 0
    seen: int = 0
    lost: int = 0


class LoseAnswers:
    """ASGI wrapper that applies :class:`LostAnswers` to ``POST /staff/stocktake/N/scans``."""

    def __init__(self, app: ASGIApp, faults: LostAnswers) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        f = self.faults
        if (f.every and scope["type"] == "http" and scope["method"] == "POST"
                and re.fullmatch(r"/staff/stocktake/\d+/scans", scope["path"])):
            f.seen += 1
            if f.seen % f.every == 0:
                async def swallow(message: Message) -> None:
                    pass

                await self.app(scope, receive, swallow)  # stored, answer dropped
                f.lost += 1
                raise ConnectionResetError("test: the answer is lost on the way")
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class ConsoleServer:
    url: str
    register: ConsoleRegister
    lost_answers: LostAnswers
    inbox: Inbox
    """What the console's real SMTP server (aiosmtpd) received: the desk's hold notices."""


@pytest.fixture(scope="session")
def console_server(console_register: ConsoleRegister) -> Iterator[ConsoleServer]:
    """The e-library app (with its staff console) on the console's register, under uvicorn."""
    port = free_port()
    root = console_register.root
    # The operator's jobs page lists the runs of the test services' Prefect server.
    jobs_api = os.environ.get("QOR_TEST_PREFECT_API_URL")
    # The operator launches `qor digitise` on folders under root/scans, the preservation
    # officer repairs; the commands' settings are this register's data directory (its SQLite
    # register, file store and keys), a file-store replica and the test services' Prefect.
    scans = root / "scans"
    scans.mkdir(exist_ok=True)
    command_env = {"QOR_DATA_DIR": str(root),
                   "QOR_REPLICA_STORE_URI": (root / "replica").as_uri()}
    if jobs_api:
        command_env["QOR_PREFECT_API_URL"] = jobs_api
    launcher = CommandLauncher(scans_root=scans, runs_dir=root / "console-runs",
                                environment=command_env)
    # The desk tells a reader by e-mail that a copy is kept for their hold: a real SMTP server.
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    app = create_app(make_config(base_url=f"http://localhost:{port}", jobs_api_url=jobs_api,
                                 smtp_url=f"smtp://127.0.0.1:{smtp.port}",
                                 mail_sender="desk@library.test",
                                 claims_dir=root / "deposit-claims", launcher=launcher),
                     sessions=console_register.sessions, open_store=lambda uri: open_store(uri),
                     keyring=LocalKeyring(root / "keys"), flush_seconds=0.2)
    faults = LostAnswers()
    try:
        for live in serve(app, port, asgi=LoseAnswers(app, faults)):
            yield ConsoleServer(url=live.url, register=console_register, lost_answers=faults,
                                inbox=inbox)
    finally:
        smtp.stop()




@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Chromium, started once for the e-library's browser tests (each test opens
    its own context, so no cookie or cache crosses tests).

    Package-scoped, not session-scoped: Playwright's sync API keeps an asyncio loop running
    in the main thread while it is open, and later tests that call ``asyncio.run`` (the
    orchestration tests) would fail on it."""
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (infra/install-system installs "
                    "Debian's chromium)", pytrace=False)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()
