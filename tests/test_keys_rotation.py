"""Key rotation across register and store (R13): every copy stays readable after the old key is
gone, and no stored payload object changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from flows.capture.samples import KAZAKH_SENTENCE, SamplePage, normalise_text
from flows.digitise import run_digitise
from flows.export import export_copy
from flows.keys import rotate_all
from qor import wiring
from qor.settings import load_settings
from tests.conftest import qor_environment
from tests.test_digitise import _add_item


def _object_digests(store_root: Path) -> dict[str, str]:
    return {
        p.relative_to(store_root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (store_root / "bags").rglob("*") if p.is_file()
    }


def test_rotation_rewraps_without_touching_payload_and_old_key_can_go(
    prefect_server: None, sample_pages: list[SamplePage], tmp_path: Path
) -> None:
    data_dir = tmp_path / "qor"
    with qor_environment(data_dir):
        _add_item("KZ-000555")
        run_digitise([sample_pages[0].path], inventory_number="KZ-000555")
        settings = load_settings()
        old_kek = wiring.keyring(settings).current_kek_id
        before = _object_digests(data_dir / "store")

        report = rotate_all(settings, actor="tests", retire_old=True)

        assert report.retired == (old_kek,)
        assert len(report.rewrapped) == 1
        assert not (settings.effective_key_dir / f"{old_kek}.key").exists()
        assert wiring.keyring(settings).kek_ids() == [report.new_kek_id]
        # R13: stored objects are never rewritten by a rotation.
        assert _object_digests(data_dir / "store") == before
        written = export_copy(settings, inventory_number="KZ-000555", dest=tmp_path / "out")
    text = next(p for p in written if p.suffix == ".txt").read_text("utf-8")
    assert normalise_text(KAZAKH_SENTENCE) in normalise_text(text)
    records = list((data_dir / "store" / "_qor" / "keys").rglob("*.json"))
    assert {r.stem for r in records} == {old_kek, report.new_kek_id}
