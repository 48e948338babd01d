"""The register's commands as a librarian runs them: books (R9), stocktake (R14), the audit log,
MARC exchange — real processes, real exit codes."""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from catalog_sync import register
from catalog_sync.models import AcquisitionSource, ItemStatus
from qor import wiring
from qor.settings import load_settings
from tests.conftest import qor_environment
from tests.test_cli import _env, qor


@pytest.fixture(scope="module")
def shelved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, str]]]:
    """A register with six available items on two shelves of one hall: (inventory, barcode)."""
    data_dir = tmp_path_factory.mktemp("register-cli") / "qor"
    with qor_environment(data_dir), wiring.register_session(load_settings()) as s:
        rec = register.add_record(s, title="Абай жолы", authors=("Әуезов М.",), year=1942,
                                  language="kk", actor="acq")
        batch = register.open_receipt_batch(s, act_number="ACT-2024-001",
                                            received_on=date(2024, 1, 9), actor="acq")
        items = [register.BulkItem(record_id=rec.id, source=AcquisitionSource.PURCHASE,
                                   inventory_number=f"KZ-{n:06d}", barcode=f"BC{n:08d}",
                                   location=f"Hall-A/{shelf}", status=ItemStatus.AVAILABLE,
                                   price="1500.00")
                 for n, shelf in zip(range(1, 7), ["S1", "S1", "S1", "S2", "S2", "S2"],
                                     strict=True)]
        numbers = register.bulk_receive(s, batch=batch, items=items, actor="acq")
    return data_dir, [(inv, it.barcode or "") for inv, it in zip(numbers, items, strict=True)]


def test_stocktake_from_start_to_act(shelved: tuple[Path, list[tuple[str, str]]],
                                     tmp_path: Path) -> None:
    """R14: a stocktake over one hall: one missing, one misplaced, one unexpected code."""
    data_dir, items = shelved
    env = _env(data_dir)
    started = json.loads(qor("stocktake", "start", "--reason", "loss", "--responsible",
                             "Сейітова Ә.", "--scope", "Hall-A", "--json", env=env).stdout)
    on_s1 = "\n".join([items[0][1], items[1][1],  # two of the three on S1: items[2] missing
                       items[3][1],               # an S2 item found on S1: misplaced
                       "BC99999999"]) + "\n"      # not in the register: unexpected
    on_s2 = "\n".join([items[4][1], items[5][1]]) + "\n"
    for shelf, scans in (("Hall-A/S1", on_s1), ("Hall-A/S2", on_s2)):
        out = subprocess_with_input(["stocktake", "scan", str(started["stocktake"]), "-",
                                     "--location", shelf, "--json"], scans, env)
        assert json.loads(out)["refused"] == []
    act = json.loads(qor("stocktake", "close", "--out", str(tmp_path), "--json", env=env).stdout)
    assert (act["missing"], act["unexpected"], act["misplaced"]) == (1, 1, 1)
    html = next(tmp_path.glob("stocktake-*.html")).read_text("utf-8")
    assert items[2][0] in html and "Сейітова" in html


def subprocess_with_input(args: list[str], stdin: str, env: dict[str, str]) -> str:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "qor", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_summary_and_inventory_books(shelved: tuple[Path, list[tuple[str, str]]],
                                     tmp_path: Path) -> None:
    """R9: both books as printable HTML with the library's name, and CSV."""
    data_dir, items = shelved
    env = _env(data_dir, QOR_LIBRARY_NAME="Ұлттық академиялық кітапхана")
    files = json.loads(qor("books", "summary", "--year", "2024", "--out", str(tmp_path),
                           "--json", env=env).stdout)
    html = Path(next(f for f in files if f.endswith(".html"))).read_text("utf-8")
    assert "Ұлттық академиялық кітапхана" in html and "ACT-2024-001" in html
    files = json.loads(qor("books", "inventory", "--out", str(tmp_path), "--json",
                           env=env).stdout)
    csv = Path(next(f for f in files if f.endswith(".csv"))).read_text("utf-8")
    assert all(inv in csv for inv, _ in items)


def test_verify_log_detects_an_entry_altered_in_the_database(
    shelved: tuple[Path, list[tuple[str, str]]], tmp_path: Path
) -> None:
    data_dir, _ = shelved
    env = _env(data_dir)
    assert qor("register", "verify-log", env=env).returncode == 0
    db = tmp_path / "register.sqlite3"
    with sqlite3.connect(data_dir / "register.sqlite3") as src, sqlite3.connect(db) as dst:
        src.backup(dst)  # the register runs in WAL mode: copy through SQLite, not the file
    with sqlite3.connect(db) as conn:  # as someone with file access would, past the triggers
        conn.execute("DROP TRIGGER audit_log_append_only")
        conn.execute("UPDATE audit_log SET actor = 'nobody' WHERE seq = 2")
    proc = qor("register", "verify-log", "--json", check=False,
               env=_env(data_dir, QOR_DATABASE_URL=f"sqlite:///{db}"))
    assert proc.returncode == 4
    report = json.loads(proc.stdout)
    assert report["intact"] is False
    assert [(p["seq"], p["kind"]) for p in report["problems"]][:1] == [(2, "altered")]


def test_verify_log_anchor_catches_a_chain_cut_back_with_its_head(
    shelved: tuple[Path, list[tuple[str, str]]], tmp_path: Path
) -> None:
    """The anchor file names every chain's last entry: a tail removed together with its head
    row (a self-consistent log) fails against it; an anchor in the older {seq, hash} form is
    still read."""
    data_dir, _ = shelved
    anchor = tmp_path / "anchor.json"
    assert qor("register", "verify-log", "--save-anchor", str(anchor),
               env=_env(data_dir)).returncode == 0
    saved = json.loads(anchor.read_text("utf-8"))
    assert saved["entries"] == sum(c["position"] for c in saved["chains"]) > 0
    old_form = tmp_path / "old-anchor.json"
    old_form.write_text(json.dumps({"seq": saved["seq"], "hash": saved["hash"]}), "utf-8")
    assert qor("register", "verify-log", "--anchor", str(old_form),
               env=_env(data_dir)).returncode == 0
    db = tmp_path / "register.sqlite3"
    with sqlite3.connect(data_dir / "register.sqlite3") as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    last = max(saved["chains"], key=lambda c: c["seq"])
    with sqlite3.connect(db) as conn:  # the chain's last entry gone, its head set back
        conn.execute("DROP TRIGGER audit_log_never_deleted")
        conn.execute("DELETE FROM audit_log WHERE seq = ?", (last["seq"],))
        prev = conn.execute("SELECT hash FROM audit_log WHERE chain = ? AND chain_seq = ?",
                            (last["chain"], last["position"] - 1)).fetchone()
        conn.execute("UPDATE audit_head SET last_seq = ?, last_hash = ? WHERE id = ?",
                     (last["position"] - 1, prev[0] if prev else "0" * 64, last["chain"]))
    env = _env(data_dir, QOR_DATABASE_URL=f"sqlite:///{db}")
    assert qor("register", "verify-log", env=env).returncode == 0  # self-consistent…
    proc = qor("register", "verify-log", "--anchor", str(anchor), "--json", check=False,
               env=env)
    assert proc.returncode == 4  # …but not what the anchor kept
    assert [(p["seq"], p["kind"]) for p in json.loads(proc.stdout)["problems"]] == [
        (last["seq"], "missing")]


def test_marc_round_trip_into_an_empty_register(
    shelved: tuple[Path, list[tuple[str, str]]], tmp_path: Path
) -> None:
    data_dir, items = shelved
    marc = tmp_path / "fund.mrc"
    out = json.loads(qor("marc", "export", str(marc), "--json", env=_env(data_dir)).stdout)
    assert out["records"] == 1
    fresh = _env(tmp_path / "fresh")
    imported = json.loads(qor("marc", "import", str(marc), "--json", env=fresh).stdout)
    assert (imported["added"], imported["items_added"]) == (1, len(items))
    again = json.loads(qor("marc", "import", str(marc), "--json", env=fresh).stdout)
    assert (again["added"], again["present"]) == (0, 1)  # idempotent


def test_marc_export_format_follows_the_extension(
    shelved: tuple[Path, list[tuple[str, str]]], tmp_path: Path
) -> None:
    """``fund.xml`` is MARCXML (not ISO 2709 under an .xml name); a mismatch or an unknown
    extension is refused naming the valid formats, and nothing is written."""
    data_dir, _ = shelved
    env = _env(data_dir)
    xml = tmp_path / "fund.xml"
    out = json.loads(qor("marc", "export", str(xml), "--json", env=env).stdout)
    assert out["format"] == "marcxml"
    text = xml.read_text("utf-8")
    assert text.lstrip().startswith("<") and "Әуезов М." in text and ">kaz<" in text
    mismatch = qor("marc", "export", str(tmp_path / "b.xml"), "--format", "iso2709", env=env,
                   check=False)
    unknown = qor("marc", "export", str(tmp_path / "c.txt"), env=env, check=False)
    assert (mismatch.returncode, unknown.returncode) == (1, 1)
    assert "marcxml" in unknown.stderr and "iso2709" in unknown.stderr
    assert not (tmp_path / "b.xml").exists() and not (tmp_path / "c.txt").exists()
    fresh = _env(tmp_path / "fresh")
    assert json.loads(qor("marc", "import", str(xml), "--json", env=fresh).stdout)["added"] == 1
    again = tmp_path / "again.xml"
    qor("marc", "export", str(again), env=fresh)
    assert again.read_bytes() == xml.read_bytes()


def test_admin_account_from_the_cli_is_audited_and_unknown_roles_are_listed(
    shelved: tuple[Path, list[tuple[str, str]]],
) -> None:
    """``qor elibrary add-staff`` (the first admin of the staff console comes from the CLI):
    every role of R10 is accepted, the account lands in the audit log under the caller's name,
    an unknown role is refused naming the valid ones, and nothing is stored for it."""
    import subprocess
    import sys

    data_dir, _items = shelved
    env = {**_env(data_dir), "QOR_ACTOR": "it-admin"}

    def add(name: str, role: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qor", "elibrary", "add-staff", name,
                               "--role", role, "--password-stdin"],
                              input="a-long-enough-password\n", env=env, capture_output=True,
                              text=True, timeout=300, check=False)

    for name, role in (("boss", "admin"), ("keeper", "preservation"), ("scan1", "operator")):
        done = add(name, role)
        assert done.returncode == 0, done.stderr
    refused = add("ghost", "janitor")
    assert refused.returncode == 1
    for role in ("operator", "preservation", "librarian", "statistician", "admin"):
        assert role in refused.stderr
    with sqlite3.connect(data_dir / "register.sqlite3") as db:
        rows = db.execute("SELECT actor, action, entity_key, after FROM audit_log "
                          "WHERE action = 'staff.create' ORDER BY seq").fetchall()
        roles = dict(db.execute("SELECT username, role FROM elibrary_staff_accounts"))
    assert [(a, k, json.loads(after)["role"]) for a, _, k, after in rows] == [
        ("it-admin", "boss", "admin"), ("it-admin", "keeper", "preservation"),
        ("it-admin", "scan1", "operator")]
    assert "ghost" not in roles and roles["boss"] == "admin"


def test_books_summary_in_kazakh_from_the_command_line(
        shelved: tuple[Path, list[tuple[str, str]]], tmp_path: Path) -> None:
    """R9: ``qor books summary --lang kk`` writes the Kazakh book with the English book's
    figures; the report_language setting chooses the language when --lang is not given; the
    CSV is the same file in every language; an unknown language is refused naming the valid
    ones."""
    data_dir, _items = shelved
    env = _env(data_dir)

    def summary(out: Path, *extra: str, **more_env: str) -> tuple[str, bytes]:
        files = json.loads(qor("books", "summary", "--year", "2024", "--out", str(out),
                               *extra, "--json", env={**env, **more_env}).stdout)
        html = Path(next(f for f in files if f.endswith(".html"))).read_text("utf-8")
        return html, Path(next(f for f in files if f.endswith(".csv"))).read_bytes()

    english, en_csv = summary(tmp_path / "en")
    kazakh, kk_csv = summary(tmp_path / "kk", "--lang", "kk")
    russian, ru_csv = summary(tmp_path / "ru", QOR_REPORT_LANGUAGE="ru")
    assert "Summary accounting book 2024" in english
    assert '<html lang="kk">' in kazakh and "2024 жылғы жиынтық есеп кітабы" in kazakh
    assert "1-бөлім. Қорға түсу" in kazakh and "Сатып алу" in kazakh
    assert "Summary accounting book" not in kazakh
    assert "Книга суммарного учёта за 2024 год" in russian and "Покупка" in russian
    # the figures: six items for 9000.00 ₸ by ACT-2024-001, the same in every language
    for page in (english, kazakh, russian):
        assert "<td>ACT-2024-001</td><td>2024-01-09</td><td></td><td class=n>6</td>" \
               "<td class=n>9000.00</td>" in page
    assert en_csv == kk_csv == ru_csv
    refused = qor("books", "summary", "--year", "2024", "--out", str(tmp_path), "--lang", "de",
                  env=env, check=False)
    assert refused.returncode != 0 and "kk, ru, en" in refused.stdout + refused.stderr
