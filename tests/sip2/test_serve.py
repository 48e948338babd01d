"""``qor sip2 serve`` as an operator runs it — a real process over TLS on PostgreSQL — spoken to
by the ``Sip2`` client library from PyPI (its own encoder, sockets and TLS handshake)."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pysip2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from Sip2.sip2 import Sip2
from sqlalchemy import select

from catalog_sync import readers
from catalog_sync.db import make_engine, session_factory, upgrade
from catalog_sync.models import Item, ItemCirculation, Loan, ServicePointKind
from tests.circulation.helpers import make_item, make_point, make_reader
from tests.register.conftest import create_postgres_database, drop_postgres_database
from tests.sip2.conftest import _HASH, INSTITUTION, PASSWORD

QOR = [sys.executable, "-m", "qor"]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QOR_") or
           k.startswith("QOR_TEST_")}
    env["QOR_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` (what a library's kiosk network often has)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = tmp / "sip2.crt", tmp / "sip2.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return certfile, keyfile


@pytest.fixture
def database() -> Iterator[str]:
    url = create_postgres_database("qor_sip2")
    try:
        yield url
    finally:
        drop_postgres_database(url)


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 60) -> str:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=0.5):
            line = proc.stdout.readline()
            if needle in line:
                return line
            if not line and proc.poll() is not None:
                break
    proc.kill()
    raise AssertionError(f"qor sip2 serve never said {needle!r}: {proc.stderr.read()}")  # type: ignore[union-attr]


def client(tmp: Path, port: int, point: str) -> Any:
    sip = Sip2()
    sip.hostName, sip.hostPort = "localhost", port
    sip.tlsEnable, sip.tlsAcceptSelfsigned = True, True
    sip.logfile_path = str(tmp)
    sip.institutionId, sip.scLocation = INSTITUTION, point
    sip.socketTimeout = 20
    sip.connect()
    return sip


def plain_login(password: str) -> bytes:
    return f"9300CNkiosk-1|CO{password}|AY0AZ".encode()


def checksum_of(body: bytes) -> str:
    return f"{(-sum(body)) & 0xFFFF:04X}"


def verified(raw: str) -> pysip2.SIPMessage:
    """The reply decoded by the other independent codec (its checksum checked too)."""
    return pysip2.decode_message(raw.encode("utf-8"), encoding="utf-8").message


def test_qor_sip2_serve_over_tls_with_the_sip2_client(database: str, tmp_path: Path) -> None:
    engine = make_engine(database)
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        point = make_point(s, ServicePointKind.LENDING_DESK).code
        item, reader, blocked = make_item(s), make_reader(s), make_reader(s)
        other = make_item(s)
        s.flush()
        barcode, ticket, blocked_ticket = str(item.barcode), reader.ticket_number, \
            blocked.ticket_number
        other_code = str(other.rfid)
        readers.block_reader(s, blocked_ticket, reason="R16 debt: 3 overdue", actor="desk")
    certfile, keyfile = self_signed(tmp_path)
    env = _env(
        tmp_path / "data",
        QOR_DATABASE_URL=database,
        QOR_SIP2_ACCOUNTS=json.dumps({"kiosk-1": {"password_hash": _HASH,
                                                  "service_point": point}}),
        QOR_SIP2_INSTITUTION=INSTITUTION,
    )
    proc = subprocess.Popen(
        [*QOR, "sip2", "serve", "--port", "0", "--certfile", str(certfile), "--keyfile",
         str(keyfile)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL)
    try:
        line = wait_for_line(proc, "listening on")
        assert "(TLS)" in line
        port = int(line.split("listening on ")[1].split(" ")[0].rsplit(":", 1)[1])
        # TLS only: a machine speaking plain SIP2 to it is not answered, its password not read.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
            plain.sendall(f"9300CNkiosk-1|CO{PASSWORD}|AY0AZ".encode())
            plain.sendall(checksum_of(plain_login(PASSWORD)).encode() + b"\r")
            try:
                answer = plain.recv(4096)
            except ConnectionResetError:
                answer = b""
            assert not answer.startswith(b"94")
        sip = client(tmp_path, port, point)
        assert sip._socket.version().startswith("TLS")  # the conversation is encrypted

        login = sip.sip_login_response(sip.get_response(sip.sip_login_request("kiosk-1",
                                                                              PASSWORD)))
        assert login["fixed"]["Ok"] == "1"
        status = sip.sip_sc_status_response(sip.get_response(sip.sip_sc_status_request()))
        assert status["fixed"]["OnlineStatus"] == "Y"
        assert isinstance(verified(sip.last_response), pysip2.ACSStatusResponse)

        sip.patron = ticket
        out = sip.sip_checkout_response(sip.get_response(sip.sip_checkout_request(barcode)))
        assert (out["fixed"]["Ok"], out["fixed"]["Desensitize"]) == ("1", "Y")  # R10
        assert out["variable"]["AJ"] == ["Абай жолы"]
        info = sip.sip_patron_information_response(
            sip.get_response(sip.sip_patron_information_request("charged")))
        assert info["fixed"]["ChargedItemsCount"] == "0001"
        decoded = verified(sip.last_response)
        assert isinstance(decoded, pysip2.PatronInformationResponse)
        with sessions() as s:
            inv = s.scalars(select(Item.inventory_number).where(Item.barcode == barcode)).one()
        assert decoded.charged_items == (inv,)

        back = sip.sip_checkin_response(sip.get_response(sip.sip_checkin_request(barcode)))
        assert (back["fixed"]["Ok"], back["fixed"]["Resensitize"]) == ("1", "Y")  # R10

        sip.patron = blocked_ticket  # R16: a blocked reader is refused at the kiosk
        refused = sip.sip_checkout_response(
            sip.get_response(sip.sip_checkout_request(other_code)))
        assert (refused["fixed"]["Ok"], refused["fixed"]["Desensitize"]) == ("0", "N")
        assert "blocked" in refused["variable"]["AF"][0]
        end = sip.sip_end_patron_session_response(
            sip.get_response(sip.sip_end_patron_session_request()))
        assert end["fixed"]["EndSession"] == "Y"
        sip.disconnect()

        with sessions() as s:
            loans = s.scalars(select(Loan).join(Item, Item.id == Loan.item_id)
                              .where(Item.barcode.in_([barcode]) | (Item.rfid == other_code))
                              ).all()
            assert len(loans) == 1 and loans[0].returned_at is not None
            assert loans[0].loaned_by == loans[0].returned_by == "sip2:kiosk-1"
            assert loans[0].service_point.code == point
            armed = s.get(ItemCirculation, loans[0].item_id)
            assert armed is not None and armed.armed
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        finally:
            proc.kill()
        engine.dispose()
    log = proc.stderr.read() if proc.stderr else ""
    assert code == 0, log
    assert "kiosk-1 logged in at service point" in log
    assert "session of kiosk-1 ended" in log
    assert "check-out of" in log and "refused" in log


def test_serve_refuses_unusable_settings(tmp_path: Path) -> None:
    env = _env(tmp_path / "data")
    proc = subprocess.run([*QOR, "sip2", "serve", "--port", "0"], env=env, capture_output=True,
                          text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 3
    assert "QOR_SIP2_ACCOUNTS is empty" in proc.stderr
    env["QOR_SIP2_ACCOUNTS"] = json.dumps({"kiosk-1": {"password_hash": "plain",
                                                       "service_point": "DESK"}})
    proc = subprocess.run([*QOR, "sip2", "serve", "--port", "0"], env=env, capture_output=True,
                          text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 3
    assert "QOR_SIP2_ACCOUNTS['kiosk-1']: password_hash must be an argon2 hash" in proc.stderr
    env["QOR_SIP2_ACCOUNTS"] = json.dumps({"kiosk-1": {"password_hash": _HASH,
                                                       "service_point": "NO-SUCH-POINT"}})
    proc = subprocess.run([*QOR, "sip2", "serve", "--port", "0"], env=env, capture_output=True,
                          text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert "NO-SUCH-POINT" in proc.stderr


def test_hash_password(tmp_path: Path) -> None:
    proc = subprocess.run([*QOR, "sip2", "hash-password", "--password-stdin"],
                          env=_env(tmp_path / "data"), input="kiosk-secret-1\n",
                          capture_output=True, text=True, timeout=120, check=True)
    from catalog_sync.sip2.accounts import Sip2Account, authenticate

    hashed = proc.stdout.strip()
    accounts = {"k": Sip2Account("k", hashed, "DESK")}
    assert authenticate(accounts, "k", "kiosk-secret-1") is not None
    assert authenticate(accounts, "k", "kiosk-secret-2") is None
    short = subprocess.run([*QOR, "sip2", "hash-password", "--password-stdin"],
                           env=_env(tmp_path / "data"), input="short\n", capture_output=True,
                           text=True, timeout=120, check=False)
    assert short.returncode == 3 and "at least 10 characters" in short.stderr
