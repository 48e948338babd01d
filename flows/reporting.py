"""What was done to each page, in the words an operator reads: the digitise summary, ``--json``
and the bag's PREMIS events all take it from :func:`page_report`, so they never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI reads these values without loading the capture engine
    from flows.capture import PageResult


@dataclass(frozen=True)
class PageReport:
    """One page's preparation and recognition.

    ``rotation`` is the clockwise quarter turn applied (0/90/180/270) and ``orientation_by`` how
    orientation was established (``osd``: Tesseract's orientation detection; ``ocr``: the page
    read upright; ``off``). ``skew_deg`` is the skew measured (counter-clockwise positive),
    ``deskew_deg`` the correction applied (0 when the page was straight enough). ``below_gate``:
    the page's mean word confidence is under the confidence gate, so the copy is marked for
    review (сенімділік шегі / порог уверенности).
    """

    label: str
    source: str
    rotation: int
    orientation_by: str
    osd_confidence: float | None
    skew_deg: float | None
    deskew_deg: float
    mean_confidence: float
    words: int
    below_gate: bool
    remarks: tuple[str, ...]
    ocr_choices: str | None = None
    """How the page was read: languages, segmentation, preparation of the OCR input, script
    corrections (:meth:`flows.capture.PageChoices.describe`)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PageReport:
        return cls(**{**data, "remarks": tuple(data.get("remarks") or ())})

    def sentence(self) -> str:
        """One line for a PREMIS event detail or a log: ``page 0003 (0003.tif): turned 90°…``."""
        done: list[str] = []
        if self.rotation:
            by = " (Tesseract OSD)" if self.orientation_by == "osd" else ""
            done.append(f"turned {self.rotation}° clockwise{by}")
        if self.deskew_deg:
            done.append(f"straightened by {self.deskew_deg:+.2f}°")
        done.extend(self.remarks)
        prepared = "; ".join(done) if done else "used as scanned"
        how = f" ({self.ocr_choices})" if self.ocr_choices else ""
        return (f"page {self.label} ({self.source}): {prepared}; OCR mean word confidence "
                f"{self.mean_confidence:.1f} over {self.words} word(s){how}"
                + (" — below the confidence gate, marked for review" if self.below_gate else ""))


def page_report(page: PageResult, *, confidence_gate: float) -> PageReport:
    """The report of one processed page under ``confidence_gate``."""
    prep = page.preparation
    source = page.page.source.name + (f" frame {page.page.frame + 1}" if page.page.frame else "")
    remarks = list(prep.conversions)
    if prep.borders_cleaned:
        remarks.append("dark scanner borders painted with the paper colour")
    if page.word_count == 0:
        remarks.append("no words recognised")
    deskew = prep.skew_angle_deg if prep.skew_corrected and prep.skew_angle_deg else 0.0
    return PageReport(
        label=page.page.label, source=source, rotation=prep.rotation_applied,
        orientation_by=prep.orientation_checked,
        osd_confidence=None if prep.osd_confidence is None else round(prep.osd_confidence, 2),
        skew_deg=None if prep.skew_angle_deg is None else round(prep.skew_angle_deg, 3),
        deskew_deg=round(deskew, 3), mean_confidence=round(page.mean_confidence, 2),
        words=page.word_count, below_gate=page.mean_confidence < confidence_gate,
        remarks=tuple(remarks),
        ocr_choices=page.choices.describe() if page.choices is not None else None,
    )


@dataclass(frozen=True)
class StoredFileSummary:
    """One object of a stored bag: its path in the bag and its size in bytes."""

    path: str
    size: int


@dataclass(frozen=True)
class DigitiseSummary:
    """What one run made (or found), for the CLI, the Prefect artifact and scripts (``--json``)."""

    status: str
    """``created`` (a new copy was stored) or ``existing`` (this batch was already stored)."""
    inventory_number: str
    bag_id: str
    version: int
    store_uri: str
    bag_location: str
    pages: int
    files: tuple[StoredFileSummary, ...]
    total_bytes: int
    pdfa_verdict: str
    mean_confidence: float | None
    needs_review: bool
    stage_seconds: dict[str, float] = field(default_factory=dict)
    text_policy: str = "skip-text"
    """What was done with PDF pages that already had text (``skip-text``, ``redo-ocr``,
    ``force-ocr``; see :data:`flows.capture.model.PdfTextPolicy`)."""
    pages_text_kept: tuple[str, ...] = ()
    """Pages whose own text layer was kept instead of recognised again."""
    pages_born_digital: tuple[str, ...] = ()
    """PDF pages without any image (born-digital: made on a computer, not scanned)."""
    remarks: tuple[str, ...] = ()
    """``"<page>: <remark>"`` for what a person should know (XFA form, empty page, …)."""
    page_choices: tuple[dict[str, Any], ...] = ()
    """Per page (``label`` plus :meth:`flows.capture.PageChoices.as_dict`): OCR languages,
    segmentation, image preparation, script corrections. Empty for an ``existing`` copy."""
    page_reports: tuple[PageReport, ...] = ()
    """What was done to each page (rotation, deskew, confidence, flagged below the gate); empty
    for an ``existing`` copy (its pages are in the bag's PREMIS events)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DigitiseSummary:
        """The summary :meth:`as_dict` gave (what the resident runner sends the CLI)."""
        return cls(**{
            **data,
            "files": tuple(StoredFileSummary(**f) for f in data.get("files") or ()),
            "stage_seconds": dict(data.get("stage_seconds") or {}),
            **{k: tuple(data.get(k) or ()) for k in ("pages_text_kept", "pages_born_digital",
                                                     "remarks", "page_choices")},
            "page_reports": tuple(PageReport.from_dict(p) for p in data.get("page_reports")
                                  or ()),
        })
