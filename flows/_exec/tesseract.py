"""Tesseract OCR engine, called as a program (``tesseract``), one thread per process.

``OMP_THREAD_LIMIT=1`` is set on every call: on this kind of machine one OpenMP thread per process
and pages in parallel processes is about twice as fast as Tesseract's own threads.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from flows._exec.run import ToolVersion, run
from flows.errors import ToolFailed, ToolMissing

TESSERACT = "tesseract"
_ENV = {"OMP_THREAD_LIMIT": "1"}


@dataclass(frozen=True)
class Orientation:
    """Tesseract OSD's answer: turn the image ``rotate`` degrees clockwise to make it upright."""

    rotate: int
    confidence: float
    script: str


def _binary() -> str:
    found = shutil.which(TESSERACT)
    if found is None:
        raise ToolMissing("tesseract not found on PATH (Debian: apt-get install tesseract-ocr)")
    return found


def probe() -> ToolVersion | None:
    """Tesseract's path and version, or ``None`` if it is not installed."""
    try:
        path = _binary()
        done = run([path, "--version"], tool="tesseract", timeout=30)
    except (ToolMissing, ToolFailed):
        return None
    first = (done.stdout.decode("utf-8", "replace") or done.stderr).splitlines()[0]
    return ToolVersion("tesseract", Path(path), first.replace("tesseract", "").strip())


@cache
def version() -> str:
    """Tesseract's version string; raises :class:`ToolMissing` if it is not installed."""
    found = probe()
    if found is None:
        raise ToolMissing("tesseract not found on PATH (Debian: apt-get install tesseract-ocr)")
    return found.version


def languages() -> frozenset[str]:
    """The language data installed (e.g. ``{"kaz", "rus", "eng", "osd"}``)."""
    done = run([_binary(), "--list-langs"], tool="tesseract", timeout=30)
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    return frozenset(line.strip() for line in lines[1:] if line.strip())


def detect_orientation(image: Path, *, dpi: int, timeout: float) -> Orientation | None:
    """Run OSD (``--psm 0``) on ``image``; ``None`` when the page has too little text to tell."""
    done = run(
        [_binary(), image, "-", "--psm", "0", "--dpi", str(dpi)],
        tool="tesseract OSD",
        timeout=timeout,
        env=_ENV,
        check=False,
    )
    out = done.stdout.decode("utf-8", "replace")
    rotate = re.search(r"^Rotate:\s*(\d+)", out, re.M)
    conf = re.search(r"^Orientation confidence:\s*([\d.]+)", out, re.M)
    script = re.search(r"^Script:\s*(\S+)", out, re.M)
    if done.returncode != 0 or rotate is None or conf is None:
        # Tesseract exits non-zero on "Too few characters"; that means "cannot tell", not failure.
        if "Too few characters" in done.stderr or done.returncode == 0:
            return None
        raise ToolFailed(
            "tesseract OSD", f"exited with status {done.returncode}", stderr=done.stderr
        )
    return Orientation(
        int(rotate.group(1)) % 360, float(conf.group(1)), script.group(1) if script else ""
    )


def recognise(
    image: Path, out_base: Path, *, languages: str, dpi: int, timeout: float, psm: int = 3
) -> Path:
    """OCR ``image`` into ``<out_base>.hocr`` and return that path.

    hOCR carries everything Qor derives (text, word boxes, confidences, line baselines), so one
    recognition feeds the text file, ALTO and the PDF text layer, which therefore always agree.
    """
    run(
        [_binary(), image, out_base, "-l", languages, "--psm", str(psm), "--dpi", str(dpi),
         "-c", "hocr_char_boxes=0", "hocr"],
        tool="tesseract",
        timeout=timeout,
        env=_ENV,
    )
    hocr = out_base.with_name(out_base.name + ".hocr")
    if not hocr.is_file():
        raise ToolFailed("tesseract", f"wrote no hOCR for {image.name}")
    return hocr
