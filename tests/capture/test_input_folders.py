"""An input folder is read whole or refused whole: every entry is a page or refused by name,
none skipped in silence, and a symbolic link is never followed (its target never opened)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flows.capture import CaptureOptions, load_pages
from flows.capture.samples import KAZAKH_SENTENCE, render_page
from flows.errors import PageRejected, PagesRejected


def scan(path: Path, *, seed: int, dpi: int = 300, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    render_page(KAZAKH_SENTENCE, dpi=dpi, size_mm=(90.0, 40.0), seed=seed).save(
        path, format=fmt, dpi=(dpi, dpi))
    return path


@pytest.mark.timeout(60)  # a followed link to the FIFO below would block here for ever
def test_every_entry_that_is_not_a_page_is_refused_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    scan(folder / "0001.png", seed=1)
    scan(folder / "..tif", seed=2, fmt="TIFF")  # starts with '.': was skipped without a word
    scan(folder / ".0003.png", seed=3)
    outside = scan(tmp_path / "elsewhere" / "0004.png", seed=4)
    (folder / "0004.png").symlink_to(outside)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (folder / "0005.png").symlink_to(fifo)  # opening it would block: it must not be opened
    (folder / "0006").mkdir()

    with pytest.raises(PagesRejected) as refused:
        load_pages([folder], options=CaptureOptions())

    named = {r.path.name: r.reason for r in refused.value.rejections}
    assert set(named) == {"..tif", ".0003.png", "0004.png", "0005.png", "0006"}
    assert "hidden file" in named["..tif"] and "hidden file" in named[".0003.png"]
    assert "symbolic link" in named["0004.png"] and "symbolic link" in named["0005.png"]
    assert "folder inside" in named["0006"]
    # One line per refused entry, in the folder's page order.
    assert [ln.split(":")[0] for ln in refused.value.problem_lines()] == [
        f"page {r.path.name}" for r in refused.value.rejections]
    assert len(refused.value.problem_lines()) == 5


def test_a_folder_of_pages_only_is_read_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    for i in (10, 2, 1):
        scan(folder / f"page-{i}.png", seed=i)
    pages = load_pages([folder], options=CaptureOptions())
    assert [p.source.name for p in pages] == ["page-1.png", "page-2.png", "page-10.png"]


def test_resolution_below_the_capture_profile_minimum_is_refused(tmp_path: Path) -> None:
    low = scan(tmp_path / "0001.png", seed=5, dpi=150)
    with pytest.raises(PageRejected) as refused:
        load_pages([low], options=CaptureOptions(min_dpi=200))
    assert refused.value.path == low
    assert "150 dpi is below the capture profile's minimum of 200 dpi" in refused.value.reason
    # The minimum is the profile's: lowered, the same scan is a page.
    assert len(load_pages([low], options=CaptureOptions(min_dpi=100))) == 1
    # A fallback resolution below the minimum does not slip through either.
    blank = tmp_path / "nodpi.png"
    render_page(KAZAKH_SENTENCE, dpi=150, size_mm=(90.0, 40.0), seed=6).save(blank)
    with pytest.raises(PageRejected, match="below the capture profile's minimum"):
        load_pages([blank], options=CaptureOptions(min_dpi=200, dpi_fallback=150))
