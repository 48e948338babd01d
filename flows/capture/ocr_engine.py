"""The OCR engine seam: everything the capture engine asks of an OCR engine, in one interface.

The capture stages (:mod:`flows.capture.engine`) and the language choice
(:mod:`flows.capture.languages`) call only :func:`ocr_engine`, never a tool, the way OCRmyPDF's
pipeline calls its ``OcrEngine``: orientation detection, recognition of a page image to hOCR
(text, word boxes, confidences, baselines — everything Qor derives the text, ALTO and the PDF
text layer from), the languages installed and the engine's version for the page metadata.

Tesseract (:mod:`flows._exec.tesseract`, every run through :func:`flows._exec.run.run`, logged,
bounded by the page timeout) is the engine Qor ships. Another engine is a class with these four
methods, registered in :data:`ENGINES`; tests can put a faulty one there at this seam.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from flows._exec import tesseract
from flows._exec.tesseract import Orientation


class OcrEngine(Protocol):
    """What the capture engine needs of an OCR engine."""

    name: str

    def version(self) -> str:
        """The engine's version, recorded in each page's hOCR and ALTO."""
        ...

    def languages(self) -> frozenset[str]:
        """The language models installed (``kaz``, ``rus``, ``eng``, ``osd``…)."""
        ...

    def detect_orientation(self, image: Path, *, dpi: int, timeout: float) -> Orientation | None:
        """The page's orientation and script, or None when there is too little text to tell."""
        ...

    def recognise(self, image: Path, out_base: Path, *, languages: str, dpi: int,
                  timeout: float, psm: int = 3) -> Path:
        """Recognise ``image`` into ``<out_base>.hocr`` (``psm``: Tesseract's page
        segmentation mode numbers, 3 whole page, 6 block, 7 line); return that path."""
        ...


class TesseractEngine:
    """Tesseract 5 through :mod:`flows._exec.tesseract`."""

    name = "tesseract"

    def version(self) -> str:
        return tesseract.version()

    def languages(self) -> frozenset[str]:
        return tesseract.languages()

    def detect_orientation(self, image: Path, *, dpi: int, timeout: float) -> Orientation | None:
        return tesseract.detect_orientation(image, dpi=dpi, timeout=timeout)

    def recognise(self, image: Path, out_base: Path, *, languages: str, dpi: int,
                  timeout: float, psm: int = 3) -> Path:
        return tesseract.recognise(image, out_base, languages=languages, dpi=dpi,
                                   timeout=timeout, psm=psm)


ENGINES: dict[str, OcrEngine] = {"tesseract": TesseractEngine()}


def ocr_engine(name: str = "tesseract") -> OcrEngine:
    """The OCR engine called ``name`` (``tesseract``, the one Qor ships)."""
    try:
        return ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown OCR engine {name!r} (known: {', '.join(ENGINES)})") from None
