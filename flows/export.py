"""Reading a stored copy back: decrypt its PDF and OCR text into a folder, all or nothing."""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path

from catalog_sync import register
from flows.errors import ExportRefused
from integrity import layout
from qor import wiring
from qor.settings import QorSettings
from storage import WrappedKey, decrypt_chunks

logger = logging.getLogger(__name__)

EXPORTED_FOLDERS = (layout.ACCESS_DIR, layout.TEXT_DIR)


def export_copy(
    settings: QorSettings, *, inventory_number: str, dest: Path, version: int | None = None
) -> list[Path]:
    """Decrypt the access PDF and the OCR text of a copy into ``dest``; return the files written.

    Each file is decrypted into a hidden staging folder inside ``dest``; only when every file has
    authenticated are they moved into place. Any failure removes the staging folder, so ``dest``
    is left exactly as it was. Existing files in ``dest`` are never overwritten.
    """
    with wiring.register_session(settings) as session:
        copy = register.find_copy(session, inventory_number, version=version)
        facts = register.copy_facts(copy)
    store = wiring.store_for_uri(settings, facts.store_uri)
    keyring = wiring.keyring(settings)
    wrapped = WrappedKey(kek_id=facts.kek_id, wrapped=facts.wrapped_key)
    prefix = layout.bag_prefix(facts.bag_id)

    with store.open_read(prefix + "manifest-sha256.txt") as fh:
        manifest = fh.read().decode("utf-8")
    wanted = sorted(
        line.split(maxsplit=1)[1].strip()
        for line in manifest.splitlines()
        if line.strip() and line.split(maxsplit=1)[1].strip().startswith(EXPORTED_FOLDERS)
    )
    targets = {p: dest / p.removeprefix("data/") for p in wanted}
    clashes = [str(t) for t in targets.values() if t.exists()]
    if clashes:
        raise ExportRefused(dest=dest, reason=f"would overwrite {', '.join(clashes[:3])}")

    created_dest = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    staging = dest / f".qor-export-{uuid.uuid4().hex}"
    staging.mkdir(mode=0o700)
    written: list[Path] = []
    try:
        for bag_path in wanted:
            out = staging / bag_path
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("wb") as fh, store.open_read(prefix + bag_path) as cipher:
                for chunk in decrypt_chunks(cipher, keyring=keyring, file_id=bag_path,
                                            wrapped=wrapped):
                    fh.write(chunk)
        for bag_path, target in targets.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            (staging / bag_path).rename(target)
            written.append(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created_dest and not written:
            shutil.rmtree(dest, ignore_errors=True)
    logger.info("exported %d files of %s to %s", len(written), facts.bag_id, dest)
    return written
