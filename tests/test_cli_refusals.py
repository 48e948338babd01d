"""Refusals as the operator reads them: exactly one stderr line per problem, the documented exit
code, no traceback and none of Prefect's run logs (those stay on the orchestration server).

One test per refusal class: a bad page, an unknown inventory number, a decompression bomb, a
scan without a resolution, a damaged bag found by an audit. ``qor`` runs as a subprocess against
the test session's Prefect server (the resident local one has its own tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from flows.capture.samples import KAZAKH_SENTENCE, render_page

QOR = [sys.executable, "-m", "qor"]
NOISE = ("Traceback", "Task run", "Flow run", "Finished in state", "EventsWorker", "WARNING")


@pytest.fixture
def operator_env(prefect_server: None, tmp_path: Path) -> dict[str, str]:
    """An operator's environment on a fresh data directory, flows reporting to the session's
    Prefect server."""
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("QOR_", "PREFECT_")) or k.startswith(("QOR_TEST_", "QOR_VERAPDF"))}
    env["QOR_DATA_DIR"] = str(tmp_path / "qor")
    env["QOR_PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    return env


def qor(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*QOR, *args], env=env, capture_output=True, text=True, timeout=600,
                          check=False, stdin=subprocess.DEVNULL)


def problem_lines(run: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr as lines, after checking it holds nothing but them."""
    for noise in NOISE:
        assert noise not in run.stderr, run.stderr
    return [ln for ln in run.stderr.splitlines() if ln.strip()]


def scan(path: Path, *, seed: int, dpi: int | None = 200) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    page = render_page(KAZAKH_SENTENCE, dpi=200, size_mm=(90.0, 40.0), font_size_pt=11.0,
                       seed=seed)
    if dpi is None:
        page.info.pop("dpi", None)
        page.save(path)
    else:
        page.save(path, dpi=(dpi, dpi))
    return path


def add_item(env: dict[str, str], number: str) -> None:
    done = qor("items", "add", number, "--title", "Абай жолы", env=env)
    assert done.returncode == 0, done.stderr


def test_bad_pages_are_each_one_line_and_nothing_is_stored(
    operator_env: dict[str, str], tmp_path: Path,
) -> None:
    add_item(operator_env, "KZ-R-1")
    good = scan(tmp_path / "in" / "0001.png", seed=1)
    truncated = tmp_path / "in" / "0002.png"
    truncated.write_bytes(scan(tmp_path / "x" / "whole.png", seed=2).read_bytes()[:3000])
    not_an_image = tmp_path / "in" / "0003.png"
    not_an_image.write_text("these are notes, not a scan", encoding="utf-8")

    run = qor("digitise", str(tmp_path / "in"), "--inventory", "KZ-R-1", env=operator_env)

    assert run.returncode == 1
    lines = problem_lines(run)
    assert len(lines) == 2, lines
    assert lines[0].startswith("error: page 0002.png: ") and "truncated" in lines[0]
    assert lines[1].startswith("error: page 0003.png: ")
    assert good.name not in run.stderr
    shown = qor("copies", "show", "KZ-R-1", "--json", env=operator_env)
    assert json.loads(shown.stdout) == []


def test_unknown_inventory_number_is_one_line(
    operator_env: dict[str, str], tmp_path: Path,
) -> None:
    run = qor("digitise", str(scan(tmp_path / "0001.png", seed=3)), "--inventory", "KZ-NONE",
              env=operator_env)
    assert run.returncode == 1
    assert problem_lines(run) == ["error: no item with inventory number 'KZ-NONE' in the register"]


def test_decompression_bomb_is_one_line(operator_env: dict[str, str], tmp_path: Path) -> None:
    add_item(operator_env, "KZ-R-2")
    bomb = tmp_path / "bomb.png"
    # 900 million pixels in a file of a few hundred kilobytes: over the 400 Mpx default guard.
    Image.new("1", (30_000, 30_000), 1).save(bomb, dpi=(300, 300))
    assert bomb.stat().st_size < 5_000_000
    run = qor("digitise", str(bomb), "--inventory", "KZ-R-2", env=operator_env)
    assert run.returncode == 1
    (line,) = problem_lines(run)
    assert line.startswith("error: page bomb.png: ") and "pixels" in line


def test_scan_without_resolution_is_one_line(operator_env: dict[str, str], tmp_path: Path) -> None:
    add_item(operator_env, "KZ-R-3")
    run = qor("digitise", str(scan(tmp_path / "0001.png", seed=4, dpi=None)),
              "--inventory", "KZ-R-3", env=operator_env)
    assert run.returncode == 1
    (line,) = problem_lines(run)
    assert line.startswith("error: page 0001.png: no usable resolution")


def test_damaged_bag_in_an_audit_is_one_line_per_damaged_file(
    operator_env: dict[str, str], tmp_path: Path,
) -> None:
    add_item(operator_env, "KZ-R-4")
    made = qor("digitise", str(scan(tmp_path / "0001.png", seed=5)), "--inventory", "KZ-R-4",
               "--json", env=operator_env)
    assert made.returncode == 0, made.stderr
    bag_id = json.loads(made.stdout)["bag_id"]
    damaged = Path(operator_env["QOR_DATA_DIR"]) / "store" / "bags" / bag_id / "data" / "text"
    target = damaged / "0001.txt"
    target.chmod(0o600)
    body = bytearray(target.read_bytes())
    body[len(body) // 2] ^= 0x01
    target.write_bytes(bytes(body))

    run = qor("fixity", "audit", "--no-repair", env=operator_env)

    assert run.returncode == 4
    lines = problem_lines(run)
    # The one damaged file is one line naming both algorithms (not one per manifest); the
    # second line is the alert that could not go out (no channel configured here).
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"error: bag {bag_id}: data/text/0001.txt: sha256, sha512 ")
    assert lines[1].startswith("error: alert ") and "not delivered" in lines[1]
    audit = json.loads(qor("fixity", "audit", "--no-repair", "--json", env=operator_env).stdout)
    (bag,) = audit["bags"]
    assert [(f["path"], f["algorithms"]) for f in bag["failures"]] == [
        ("data/text/0001.txt", ["sha256", "sha512"])]


def test_a_scan_below_the_minimum_resolution_is_one_line(
    operator_env: dict[str, str], tmp_path: Path,
) -> None:
    add_item(operator_env, "KZ-R-5")
    low = tmp_path / "0001.png"
    render_page(KAZAKH_SENTENCE, dpi=100, size_mm=(90.0, 40.0), seed=7).save(low, dpi=(50, 50))
    run = qor("digitise", str(low), "--inventory", "KZ-R-5", env=operator_env)
    assert run.returncode == 1
    (line,) = problem_lines(run)
    assert line == ("error: page 0001.png: resolution 50 dpi is below the capture profile's "
                    "minimum of 200 dpi (text needs it to be read; QOR_MIN_DPI sets the minimum)")
