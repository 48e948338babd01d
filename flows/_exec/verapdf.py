"""veraPDF, the reference PDF/A validator, called as its command-line launcher.

The launcher is ``$QOR_VERAPDF`` if set, else ``verapdf`` on PATH, else the one that
``infra/test-services`` installs under ``~/.cache/qor-tools/bin``. Its JVM takes seconds to start,
so :func:`validate_many` checks several PDFs in one run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from flows._exec.run import ToolVersion, run
from flows.errors import PdfaInvalid, RuleFailure, ToolFailed, ToolMissing

__all__ = ["PdfaReport", "RuleFailure", "launcher", "probe", "validate", "validate_many"]

FLAVOURS = frozenset({"1a", "1b", "2a", "2b", "2u", "3a", "3b", "3u", "4", "4e", "4f"})


@dataclass(frozen=True)
class PdfaReport:
    """veraPDF's verdict on one PDF: ``compliant`` and, if not, the rules that failed."""

    pdf: Path
    compliant: bool
    flavour: str
    failures: tuple[RuleFailure, ...]

    def raise_for_failures(self) -> None:
        """Raise :class:`PdfaInvalid` with veraPDF's rule ids and messages unless compliant."""
        if not self.compliant:
            raise PdfaInvalid(self.pdf, self.flavour, self.failures)


def launcher() -> Path | None:
    """The veraPDF launcher this process would use, or ``None`` when there is none."""
    configured = os.environ.get("QOR_VERAPDF")
    if configured:
        return Path(configured)
    on_path = shutil.which("verapdf")
    if on_path:
        return Path(on_path)
    cached = Path.home() / ".cache" / "qor-tools" / "bin" / "verapdf"
    return cached if cached.is_file() else None


def _require_launcher() -> Path:
    found = launcher()
    if found is None:
        raise ToolMissing(
            "veraPDF not found: set QOR_VERAPDF, put 'verapdf' on PATH, or run infra/test-services"
        )
    return found


def probe() -> ToolVersion | None:
    """veraPDF's launcher and version, or ``None`` if it is not installed or does not start."""
    found = launcher()
    if found is None:
        return None
    try:
        done = run([found, "--version"], tool="veraPDF", timeout=120)
    except (ToolMissing, ToolFailed):
        return None
    text = done.stdout.decode("utf-8", "replace")
    line = next((ln for ln in text.splitlines() if "veraPDF" in ln), text.strip()[:80])
    return ToolVersion("veraPDF", found, line.replace("veraPDF", "").strip())


def validate_many(
    pdfs: Sequence[Path], *, flavour: str = "2u", timeout: float = 900
) -> dict[Path, PdfaReport]:
    """Validate every PDF in one veraPDF run; returns one report per input path (as given)."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown PDF/A flavour {flavour!r}; one of {sorted(FLAVOURS)}")
    if not pdfs:
        return {}
    for pdf in pdfs:
        if not pdf.is_file():
            raise FileNotFoundError(f"no PDF to validate at {pdf}")
    done = run(
        [_require_launcher(), "--flavour", flavour, "--format", "xml",
         *[p.resolve() for p in pdfs]],
        tool="veraPDF",
        timeout=timeout,
        check=False,
    )
    # veraPDF exits 1 when a file is not compliant; only a missing or unreadable report is failure.
    try:
        root = etree.fromstring(done.stdout)
    except etree.XMLSyntaxError as e:
        raise ToolFailed("veraPDF", f"wrote no readable report (status {done.returncode})",
                         stderr=done.stderr) from e
    by_name = {str(p.resolve()): p for p in pdfs}
    reports: dict[Path, PdfaReport] = {}
    for job in root.iter("job"):
        name = job.findtext("item/name") or ""
        found = by_name.get(name)
        if found is None:
            continue
        report = job.find("validationReport")
        if report is None:
            error = job.findtext("taskException/exceptionMessage") or "no validation report"
            reports[found] = PdfaReport(found, False, flavour, (RuleFailure("parse", error, 1),))
            continue
        failures = tuple(
            RuleFailure(
                rule_id=f"{rule.get('clause')}-{rule.get('testNumber')}",
                message=(rule.findtext("description") or "").strip(),
                count=int(rule.get("failedChecks") or 0),
            )
            for rule in report.iter("rule")
            if rule.get("status") == "failed"
        )
        compliant = report.get("isCompliant") == "true"
        reports[found] = PdfaReport(found, compliant, flavour, failures)
    missing = [str(p) for p in pdfs if p not in reports]
    if missing:
        raise ToolFailed(
            "veraPDF", f"reported nothing for {', '.join(missing)}", stderr=done.stderr
        )
    return reports


def validate(pdf: Path, *, flavour: str = "2u", timeout: float = 600) -> PdfaReport:
    """Validate one PDF against PDF/A-``flavour`` (default 2u) and return veraPDF's verdict."""
    return validate_many([pdf], flavour=flavour, timeout=timeout)[pdf]
