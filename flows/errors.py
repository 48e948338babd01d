"""Errors raised by the processing steps in :mod:`flows` (capture: pages, OCR, PDF/A).

Every class derives from :class:`qor.errors.QorError`; callers act on ``exit_code``,
``http_status`` and ``retryable``, never on the wording. Messages name the page (file and frame)
and the reason, because the operator has to find that sheet in the scanner's output.
"""

from __future__ import annotations

# ruff: noqa: N818 - PageRejected, ToolFailed, PdfaInvalid… are the names callers use
from dataclasses import dataclass
from pathlib import Path

from qor.errors import QorError


class CaptureError(QorError):
    """Base of errors raised while turning scans into OCR data and a PDF/A."""

    exit_code = 1
    http_status = 422


class PageRejected(CaptureError):
    """A page of the input cannot be used (not an image, truncated, too large, encrypted…).

    Raised before anything is stored; the batch as a whole is refused (DESIGN: bad page → nothing
    stored). ``frame`` is the 0-based page within a multi-page TIFF or PDF (0 for single images).
    """

    exit_code = 1
    http_status = 422
    retryable = False

    def __init__(self, path: Path, frame: int, reason: str) -> None:
        self.path = path
        self.frame = frame
        self.reason = reason
        where = f"{path.name}" if frame == 0 else f"{path.name} (page {frame + 1})"
        super().__init__(f"page {where}: {reason}")


class PagesRejected(PageRejected):
    """Several pages of one batch cannot be used: each is named (the batch is refused whole).

    Its ``path``/``frame``/``reason`` are the first rejection's, so a caller that handles
    :class:`PageRejected` handles this too; ``rejections`` holds every one, in page order.
    """

    def __init__(self, rejections: tuple[PageRejected, ...]) -> None:
        first = rejections[0]
        super().__init__(first.path, first.frame, first.reason)
        self.rejections = rejections
        self.message = f"{len(rejections)} pages refused: " + "; ".join(
            r.message for r in rejections)

    def problem_lines(self) -> tuple[str, ...]:
        return tuple(r.message for r in self.rejections)


class FontMissing(CaptureError):
    """A font file the sample renderer needs is not installed (Debian: fonts-dejavu-core)."""

    exit_code = 3
    http_status = 500


class LanguagesUnavailable(CaptureError):
    """OCR languages asked for a batch are not a Tesseract language list or not installed."""

    exit_code = 2
    http_status = 422
    retryable = False


class ToolMissing(CaptureError):
    """An external program (Tesseract, veraPDF) is not installed or cannot be started."""

    exit_code = 3
    http_status = 500


class ToolFailed(CaptureError):
    """An external program ran but failed; ``stderr`` holds what it said."""

    exit_code = 3
    http_status = 500

    def __init__(self, tool: str, reason: str, *, stderr: str = "") -> None:
        self.tool = tool
        self.stderr = stderr
        detail = f": {stderr.strip()[-800:]}" if stderr.strip() else ""
        super().__init__(f"{tool} {reason}{detail}")


class ToolTimeout(ToolFailed):
    """An external program ran past its time limit (e.g. OCR of one page); it was stopped.

    Retryable: a loaded machine may finish the page on a second try.
    """

    retryable = True


@dataclass(frozen=True)
class RuleFailure:
    """One veraPDF rule that failed: ``rule_id`` like ``6.2.11.4.1-1`` (clause-test number)."""

    rule_id: str
    message: str
    count: int


class PdfaInvalid(CaptureError):
    """veraPDF found the PDF not compliant with the PDF/A flavour asked for.

    ``failures`` lists veraPDF's rule ids and messages; the digitisation stage fails on it.
    """

    exit_code = 4
    http_status = 500

    def __init__(self, pdf: Path, flavour: str, failures: tuple[RuleFailure, ...]) -> None:
        self.pdf = pdf
        self.flavour = flavour
        self.failures = failures
        listed = "; ".join(f"{f.rule_id} ({f.count}×): {f.message}" for f in failures[:8])
        more = f"; and {len(failures) - 8} more rules" if len(failures) > 8 else ""
        super().__init__(f"{pdf.name} is not PDF/A-{flavour.upper()}: {listed}{more}")


class AltoInvalid(CaptureError):
    """A page's ALTO file does not validate against the official ALTO 4.4 schema.

    ``errors`` are the schema's messages (with line numbers). This is Qor's fault, not the
    scan's: the stage fails instead of storing page data other systems would refuse.
    """

    exit_code = 4
    http_status = 500

    def __init__(self, alto: Path, errors: tuple[str, ...]) -> None:
        self.alto = alto
        self.errors = errors
        listed = "; ".join(errors[:5])
        more = f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
        super().__init__(f"{alto.name} is not valid ALTO 4.4: {listed}{more}")


# --- the digitise flow and export (lead's) ----------------------------------------------------


class DigitiseError(QorError):
    """Base of errors raised by the digitise flow outside capture."""


class CopyAlreadyExists(DigitiseError):
    """The item already has a digital copy made from another batch; ``--new-version`` adds one.

    A rerun of the *same* batch is not an error: it reports the existing copy.
    """

    exit_code = 1
    http_status = 409

    def __init__(self, *, inventory_number: str, version: int, bag_id: str) -> None:
        self.inventory_number = inventory_number
        self.version = version
        self.bag_id = bag_id
        super().__init__(
            f"inventory number {inventory_number} already has digital copy version {version} "
            f"(bag {bag_id}) from a different batch; use --new-version to store another version"
        )


class StoreVerificationFailed(DigitiseError):
    """An object read back from the store does not match what was written.

    Retryable: the upload is create-only, so a retry writes a fresh bag id, never over this one.
    """

    exit_code = 4
    http_status = 502
    retryable = True

    def __init__(self, *, key: str, expected: str, found: str) -> None:
        self.key = key
        self.expected = expected
        self.found = found
        super().__init__(f"stored object {key} does not match: expected {expected}, "
                         f"found {found}")


class ExportRefused(DigitiseError):
    """An export would overwrite files already in the destination; nothing was written."""

    exit_code = 1
    http_status = 409

    def __init__(self, *, dest: Path, reason: str) -> None:
        self.dest = dest
        self.reason = reason
        super().__init__(f"export to {dest} refused: {reason}")


class DerivationRefused(DigitiseError):
    """A stored copy's bag cannot be given access derivatives as it is (its METS, archival PDF
    or manifests do not describe the pages as Qor wrote them); nothing was changed in it."""

    exit_code = 1
    http_status = 422

    def __init__(self, *, bag_id: str, reason: str) -> None:
        self.bag_id = bag_id
        self.reason = reason
        super().__init__(f"cannot derive bag {bag_id}: {reason}")


class CopyInProgress(DigitiseError):
    """Another run is digitising the same item right now; this one was refused before it read
    or wrote anything (:mod:`flows.claims`). Retryable: once that run ends, try again.

    ``holder`` describes the run holding the item (None if it ended meanwhile);
    ``holder_pid`` and ``holder_host`` name its process.
    """

    exit_code = 1
    http_status = 409
    retryable = True

    def __init__(self, *, inventory_number: str, holder: str | None,
                 holder_pid: int | None = None, holder_host: str | None = None) -> None:
        self.inventory_number = inventory_number
        self.holder = holder
        self.holder_pid = holder_pid
        self.holder_host = holder_host
        super().__init__(
            f"inventory number {inventory_number} is being digitised by "
            f"{holder or 'another run'}: wait for it to end (qor jobs) and run again; "
            "nothing was done"
        )


class ScratchFull(DigitiseError):
    """The scratch folder's disk is full (ENOSPC or quota) during a stage of the run.

    Nothing was stored or registered and the run's scratch folder was removed. Not retryable
    as such: free space (or give the data directory a larger disk) first.
    """

    exit_code = 3
    http_status = 507
    retryable = False

    def __init__(self, *, path: Path, stage: str, reason: str) -> None:
        self.path = path
        self.stage = stage
        self.reason = reason
        super().__init__(
            f"no space left in the scratch folder {path} during the {stage} stage ({reason}): "
            "nothing was stored; free space there and run again"
        )
