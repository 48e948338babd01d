"""The capture engine reaches Tesseract only through the OCR engine seam
(:mod:`flows.capture.ocr_engine`): an engine put in its place at that seam sees every call, and
its failure is the page's failure, with the engine's own error."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows._exec.tesseract import Orientation
from flows.capture import CaptureOptions, load_pages, process_page
from flows.capture import ocr_engine as seam
from flows.capture.samples import SamplePage
from flows.errors import ToolTimeout


class RecordingEngine:
    """The real Tesseract engine, with every call it gets written down."""

    name = "tesseract"

    def __init__(self, fail_recognition: bool = False) -> None:
        self.real = seam.TesseractEngine()
        self.calls: list[str] = []
        self.fail_recognition = fail_recognition

    def version(self) -> str:
        self.calls.append("version")
        return self.real.version()

    def languages(self) -> frozenset[str]:
        self.calls.append("languages")
        return self.real.languages()

    def detect_orientation(self, image: Path, *, dpi: int, timeout: float) -> Orientation | None:
        self.calls.append("detect_orientation")
        return self.real.detect_orientation(image, dpi=dpi, timeout=timeout)

    def recognise(self, image: Path, out_base: Path, *, languages: str, dpi: int,
                  timeout: float, psm: int = 3) -> Path:
        self.calls.append(f"recognise {languages} psm {psm}")
        if self.fail_recognition:
            raise ToolTimeout("tesseract", f"ran past its {timeout:g} s limit")
        return self.real.recognise(image, out_base, languages=languages, dpi=dpi,
                                   timeout=timeout, psm=psm)


def test_every_ocr_call_goes_through_the_seam(
    sample_pages: list[SamplePage], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = RecordingEngine()
    monkeypatch.setitem(seam.ENGINES, "tesseract", engine)
    options = CaptureOptions(languages="kaz+rus")
    (page,) = load_pages([sample_pages[0].path], options=options)

    result = process_page(page, work_dir=tmp_path, options=options)

    assert result.word_count > 0
    assert "recognise kaz+rus psm 3" in engine.calls
    assert engine.calls.count("version") == 1  # the page's ALTO names the engine's version
    assert engine.real.version() in result.alto_path.read_text("utf-8")


def test_a_failing_engine_fails_the_page_with_its_own_error(
    sample_pages: list[SamplePage], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(seam.ENGINES, "tesseract", RecordingEngine(fail_recognition=True))
    options = CaptureOptions(languages="kaz+rus", page_timeout_s=5)
    (page,) = load_pages([sample_pages[0].path], options=options)
    with pytest.raises(ToolTimeout) as refused:
        process_page(page, work_dir=tmp_path, options=options)
    assert refused.value.tool == "tesseract"
