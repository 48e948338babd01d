"""Reading what a digitise run left: the register's link, the stored objects, the plaintext."""

from __future__ import annotations

import re
from pathlib import Path

from catalog_sync import register
from qor import wiring
from qor.settings import load_settings
from storage import WrappedKey, decrypt_chunks
from tests.conftest import qor_environment


def add_item(data_dir: Path, settings: dict[str, str], inventory: str, title: str) -> None:
    with qor_environment(data_dir, **settings), \
            wiring.register_session(load_settings()) as session:
        register.add_item(session, inventory_number=inventory, title=title, actor="tests")


def registered_bags(data_dir: Path, settings: dict[str, str], inventory: str) -> list[str]:
    """Bag ids the register links to ``inventory``, oldest version first."""
    with qor_environment(data_dir, **settings), \
            wiring.register_session(load_settings()) as session:
        return [register.copy_facts(c).bag_id for c in register.digital_copies(session, inventory)]


def decrypted_payload(data_dir: Path, settings: dict[str, str], inventory: str) -> dict[str, bytes]:
    """Every payload file of the item's registered copy, decrypted with the registered key.

    Ciphertext differs between two runs (random data key, salts, nonces); the plaintext is what
    a reader gets, so that is what two runs are compared on.
    """
    with qor_environment(data_dir, **settings):
        settings_ = load_settings()
        with wiring.register_session(settings_) as session:
            facts = register.copy_facts(register.find_copy(session, inventory))
        store = wiring.store_for_uri(settings_, facts.store_uri)
        keyring = wiring.keyring(settings_)
        wrapped = WrappedKey(kek_id=facts.kek_id, wrapped=facts.wrapped_key)
        prefix = f"bags/{facts.bag_id}/"
        with store.open_read(prefix + "manifest-sha256.txt") as fh:
            paths = [line.split(maxsplit=1)[1].strip()
                     for line in fh.read().decode("utf-8").splitlines() if line.strip()]
        out: dict[str, bytes] = {}
        for path in paths:
            with store.open_read(prefix + path) as cipher:
                out[path] = b"".join(decrypt_chunks(cipher, keyring=keyring, file_id=path,
                                                    wrapped=wrapped))
        return out


_HOCR_IMAGE = re.compile(rb'image "(?:[^"]*/)?([^"/]*)"')
_ALTO_WHEN = re.compile(rb"<processingDateTime>[^<]*</processingDateTime>")


def comparable(path: str, data: bytes) -> bytes:
    """``data`` with what legitimately differs between two runs' plaintext taken out.

    Tesseract writes the absolute path of the page image it read into the hOCR (``image
    "/…/work/<bag-id>/pages/page-0001.png"``); that scratch path differs by data folder, not by
    content, so only its file name is kept; ALTO records when the OCR ran
    (``processingDateTime``), which is dropped.
    """
    if path.endswith(".hocr"):
        return _HOCR_IMAGE.sub(rb'image "\1"', data)
    if path.endswith(".alto.xml"):
        return _ALTO_WHEN.sub(b"<processingDateTime/>", data)
    return data
