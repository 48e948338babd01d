"""Issue 15: the tamper matrix — each kind of damage × (quick, deep) × (with, without replica).

One stored bag per cell (encrypted, with its key record, built as the digitise flow builds it),
damaged behind the store's back, then audited with repair on. The table of outcomes is the one
in ``docs/fixity.md``; this test fails if they differ, and rewrites the doc's table when run
with ``QOR_TEST_WRITE_DOCS=1 pytest tests/integrity/test_tamper_matrix.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from integrity.audit import audit_bag, bag_prefix
from storage import FileStore, LocalKeyring
from storage.keys import KEY_RECORD_PREFIX
from tests.integrity.fixity_bags import make_stored_bag

DOC = Path(__file__).resolve().parents[2] / "docs" / "fixity.md"
START, END = "<!-- tamper-matrix:start -->", "<!-- tamper-matrix:end -->"
BAG = "KZ-77-v1-t"


def _flip(path: Path) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _bag_file(store: FileStore, rel: str) -> Path:
    return store.root / bag_prefix(BAG) / rel


def _key_record(store: FileStore) -> Path:
    (record,) = (store.root / KEY_RECORD_PREFIX / BAG).iterdir()
    return record


TAMPERS: dict[str, tuple[Callable[[FileStore], None], bool]] = {
    # name: (damage done behind the store's back, whether a replica's copy can cure it)
    "payload bit flip": (lambda s: _flip(_bag_file(s, "data/access/doc.pdf")), True),
    "manifest bit flip": (lambda s: _flip(_bag_file(s, "manifest-sha256.txt")), True),
    "tag manifest bit flip": (lambda s: _flip(_bag_file(s, "tagmanifest-sha256.txt")), True),
    "bag-info bit flip": (lambda s: _flip(_bag_file(s, "bag-info.txt")), True),
    "key record bit flip": (lambda s: _flip(_key_record(s)), True),
    "deleted payload file": (lambda s: _bag_file(s, "data/masters/p1.tif").unlink(), True),
    # Qor never deletes from a store: an extra file is reported for a person to judge.
    "extra payload file": (lambda s: _bag_file(s, "data/access/extra.pdf").write_bytes(b"x"),
                           False),
}
CELLS = [(t, m, r) for t in TAMPERS for m in ("quick", "deep") for r in (True, False)]
RESULTS: dict[tuple[str, str, bool], str] = {}


@pytest.mark.parametrize(("tamper", "mode", "with_replica"), CELLS)
def test_tamper_cell(tmp_path: Path, tamper: str, mode: str, with_replica: bool) -> None:
    store = FileStore(tmp_path / "store", fsync=False)
    replica = FileStore(tmp_path / "replica", fsync=False)
    make_stored_bag([store, replica], bag_id=BAG, inventory="KZ-77", work=tmp_path / "w",
                    keyring=LocalKeyring(tmp_path / "k"),
                    files={"access/doc.pdf": b"p" * 6000, "masters/p1.tif": b"m" * 5000})
    damage, repairable = TAMPERS[tamper]
    time.sleep(0.05)  # damage comes after storing (the file store's mtime clue needs it)
    damage(store)
    result = audit_bag(store, BAG, mode=mode,  # type: ignore[arg-type]
                       replica=replica if with_replica else None)
    detected = bool(result.failures)
    if with_replica and repairable:
        outcome = "repaired" if result.outcome == "repaired" else "NOT REPAIRED"
    else:
        outcome = "reported" if result.outcome == "failure" else result.outcome
    # Which finding names it varies with the bytes hit (a flipped hex digit may stay a digit or
    # not), so the table says what matters: found, and what became of it.
    RESULTS[(tamper, mode, with_replica)] = f"{'detected' if detected else 'MISSED'}, {outcome}"
    assert detected, f"{tamper} missed in {mode} mode"
    if with_replica and repairable:
        assert result.outcome == "repaired", result.remaining
        assert audit_bag(store, BAG, mode="deep", repair=False).failures == ()
    else:
        assert result.outcome == "failure"


def table() -> str:
    lines = ["| damage | quick, replica | quick, no replica | deep, replica | deep, no replica |",
             "|---|---|---|---|---|"]
    for t in TAMPERS:
        cells = [RESULTS.get((t, m, r), "not run")
                 for m in ("quick", "deep") for r in (True, False)]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_the_table_in_docs_fixity_is_this_run() -> None:
    """Runs after the cells (same module, in order): the doc shows what the audit did."""
    if len(RESULTS) != len(CELLS):
        pytest.fail("run the whole module: the table needs every cell", pytrace=False)
    text = DOC.read_text("utf-8")
    head, rest = text.split(START, 1)
    _old, tail = rest.split(END, 1)
    fresh = f"{head}{START}\n{table()}\n{END}{tail}"
    if os.environ.get("QOR_TEST_WRITE_DOCS") == "1":
        DOC.write_text(fresh, "utf-8")
        return
    assert fresh == text, "docs/fixity.md's tamper matrix is stale (QOR_TEST_WRITE_DOCS=1)"
