"""The ``qor`` command as an operator runs it: a real process, real exit codes, real output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flows.capture.samples import KAZAKH_SENTENCE, SamplePage, normalise_text

QOR = [sys.executable, "-m", "qor"]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith("QOR_") or
           k.startswith("QOR_TEST_") or k == "QOR_VERAPDF"}
    env["QOR_DATA_DIR"] = str(data_dir)
    api = PREFECT_API_URL.value()
    if api:  # share the session's Prefect server instead of starting one per command
        env["PREFECT_API_URL"] = api
    env.update(extra)
    return env


def qor(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*QOR, *args], env=env, capture_output=True, text=True, timeout=600,
                          check=False, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"qor {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def cli_copy(prefect_server: None, sample_pages: list[SamplePage],
             tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    data_dir = tmp_path_factory.mktemp("cli") / "qor"
    env = _env(data_dir)
    qor("items", "add", "KZ-000123", "--title", "Абай жолы", "--year", "1942", env=env)
    out = qor("digitise", str(sample_pages[0].path), "--inventory", "KZ-000123", "--json",
              env=env)
    return data_dir, json.loads(out.stdout)


def test_help_reads_well() -> None:
    proc = subprocess.run([*QOR, "--help"], capture_output=True, text=True, check=True)
    for command in ("digitise", "demo", "items", "copies", "bag", "settings"):
        assert command in proc.stdout


def test_digitise_json_summary(cli_copy: tuple[Path, dict[str, object]]) -> None:
    _, summary = cli_copy
    assert summary["status"] == "created"
    assert summary["inventory_number"] == "KZ-000123"
    assert summary["pages"] == 1
    assert "compliant" in str(summary["pdfa_verdict"]).lower()
    files = {f["path"] for f in summary["files"]}  # type: ignore[attr-defined]
    assert "data/access/KZ-000123.pdf" in files and "bag-info.txt" in files


def test_copies_show_and_export(cli_copy: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    data_dir, summary = cli_copy
    env = _env(data_dir)
    shown = json.loads(qor("copies", "show", "KZ-000123", "--json", env=env).stdout)
    assert [c["bag_id"] for c in shown] == [summary["bag_id"]]
    assert any(e["event_type"] == "ingestion" for e in shown[0]["events"])
    exported = json.loads(qor("copies", "export", "KZ-000123", "--to", str(tmp_path / "o"),
                              "--json", env=env).stdout)
    texts = [Path(e["path"]) for e in exported if e["path"].endswith(".txt")]
    assert normalise_text(KAZAKH_SENTENCE) in normalise_text(texts[0].read_text("utf-8"))


def test_bag_validate_exit_codes(cli_copy: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    data_dir, summary = cli_copy
    env = _env(data_dir)
    bag = data_dir / "store" / "bags" / str(summary["bag_id"])
    assert qor("bag", "validate", str(bag), env=env).returncode == 0
    broken = tmp_path / "broken"
    shutil.copytree(bag, broken)
    target = next((broken / "data" / "text").glob("*.txt"))
    target.chmod(0o644)
    target.write_bytes(target.read_bytes()[:-1] + bytes([target.read_bytes()[-1] ^ 1]))
    proc = qor("bag", "validate", str(broken), "--json", env=env, check=False)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["valid"] is False
    assert any(p.get("path") == f"data/text/{target.name}" for p in report["problems"])


def test_refusals_name_the_thing_and_exit_nonzero(
    cli_copy: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    data_dir, _ = cli_copy
    env = _env(data_dir)
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not a scan")
    proc = qor("digitise", str(not_image), "--inventory", "KZ-000123", env=env, check=False)
    assert proc.returncode == 1
    assert "notes.png" in proc.stderr
    proc = qor("items", "add", "KZ-000123", "--title", "again", env=env, check=False)
    assert proc.returncode == 1 and "KZ-000123" in proc.stderr


def test_placeholder_secret_is_refused_at_start(tmp_path: Path) -> None:
    env = _env(tmp_path / "qor", QOR_S3_SECRET_KEY="changeme", QOR_S3_ACCESS_KEY="AKIAREAL")
    proc = qor("settings", env=env, check=False)
    assert proc.returncode == 3
    assert "QOR_S3_SECRET_KEY" in proc.stderr and "placeholder" in proc.stderr


def test_every_stored_file_has_its_pronom_id_and_copies_show_lists_them(
        cli_copy: tuple[Path, dict[str, object]]) -> None:
    from integrity.formats import pronom_ids

    data_dir, summary = cli_copy
    bag = data_dir / "store" / "bags" / str(summary["bag_id"])
    found = pronom_ids((bag / "metadata" / "premis.xml").read_bytes())
    payload = {f["path"] for f in summary["files"]  # type: ignore[attr-defined]
               if str(f["path"]).startswith("data/")}
    assert set(found) == payload  # every payload file, none left out
    assert found["data/text/" + next(p for p in payload if p.endswith(".alto.xml"))
                 .rsplit("/", 1)[1]] == "fmt/101"
    assert all(k.startswith(("fmt/", "x-fmt/")) for k in found.values())
    env = _env(data_dir)
    shown = json.loads(qor("copies", "show", "KZ-000123", "--json", env=env).stdout)
    (event,) = [e for e in shown[0]["events"] if e["event_type"] == "format identification"]
    assert json.loads(event["detail"])["pronom"] == found
    table = qor("copies", "show", "KZ-000123", env=env).stdout
    assert f"formats of {summary['bag_id']} (PRONOM)" in table
    assert "fmt/101" in table


def test_the_copy_carries_a_valid_mets_pointing_at_its_files(
        cli_copy: tuple[Path, dict[str, object]]) -> None:
    from lxml import etree

    from integrity.mets import validate_mets
    from tests.integrity.test_mets import NS, xlink_schema

    data_dir, summary = cli_copy
    bag = data_dir / "store" / "bags" / str(summary["bag_id"])
    mets = (bag / "metadata" / "mets.xml").read_bytes()
    validate_mets(mets, xlink=xlink_schema())
    root = etree.fromstring(mets)
    hrefs = [loc.get(f"{{{NS['xlink']}}}href") for loc in root.iterfind(".//mets:FLocat", NS)]
    payload = {str(f["path"]) for f in summary["files"]  # type: ignore[attr-defined]
               if str(f["path"]).startswith("data/")}
    assert {h.removeprefix("../") for h in hrefs if h} == payload  # every file, only those
    pages = root.findall("mets:structMap[@TYPE='PHYSICAL']/mets:div/mets:div", NS)
    assert len(pages) == summary["pages"]
    assert root.findtext(".//mods:titleInfo/mods:title", namespaces=NS) == "Абай жолы"
