"""The capture engine: scans → prepared pages → OCR (text, hOCR, ALTO 4) → one PDF/A-2u per item.

Plain Python, no Prefect; ``flows/digitise.py`` composes these calls::

    pages = load_pages([Path("scans/")], options=options)          # refuses a bad page up front
    results = [process_page(p, work_dir=work, options=options) for p in pages]   # or in parallel
    pdf = assemble_pdfa(results, out=work / "KZ-000123.pdf", metadata=meta, options=options)
    verapdf.validate(pdf).raise_for_failures()                     # flows._exec.verapdf

Serves R13 (digital fund of valuable publications: scan → OCR → PDF/A).
"""

from __future__ import annotations

from flows.capture.engine import book_confidence, process_page, process_pages
from flows.capture.inputs import load_pages
from flows.capture.model import (
    BookConfidence,
    CaptureOptions,
    DocumentMetadata,
    PageChoices,
    PagePreparation,
    PageRef,
    PageResult,
)
from flows.capture.ocr import character_error_rate
from flows.capture.pdfa import assemble_pdfa

__all__ = [
    "BookConfidence",
    "CaptureOptions",
    "DocumentMetadata",
    "PageChoices",
    "PagePreparation",
    "PageRef",
    "PageResult",
    "assemble_pdfa",
    "book_confidence",
    "character_error_rate",
    "load_pages",
    "process_page",
    "process_pages",
]
