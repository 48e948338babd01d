"""Qor's OCR → PDF/A against OCRmyPDF and raw parallel Tesseract, on the same pages, in one run.

    .venv/bin/python bench/ocr_vs_ocrmypdf.py [--pages 20] [--workers N] [--languages kaz+rus]

Input: ``--pages`` generated A4 pages (300 dpi, 8-bit grey, Kazakh and Russian text, skewed
0.5–1.5°, scan noise), with their ground truth. Every contender gets the same pages:

* **Qor**: ``load_pages`` → ``process_pages`` (orientation check, deskew, OCR → text, hOCR,
  ALTO; ``--workers`` pages at a time, one Tesseract thread each) → ``assemble_pdfa``
  (archival profile), timed together; the access-profile PDF is assembled from the same pages
  and timed apart. veraPDF validates both afterwards (not in the timing; nor is it in OCRmyPDF's).
  Default options: pages skewed up to ``ocr_skew_tolerance_deg`` are recognised as scanned and
  straightened after OCR, their geometry turned along. ``--straighten-first`` adds a Qor run
  that straightens every skewed page before OCR, to show what that option costs and gains.
* **OCRmyPDF**: ``ocrmypdf -l <languages> --output-type pdfa -j <workers>`` on a PDF holding the
  same PNG pages losslessly (made with img2pdf beforehand, not timed). OCRmyPDF is not a Qor
  dependency: point ``--ocrmypdf`` at it, by default ``~/.cache/qor-bench-ocrmypdf/bin/ocrmypdf``
  (``python3 -m venv ~/.cache/qor-bench-ocrmypdf && ~/.cache/qor-bench-ocrmypdf/bin/pip install
  ocrmypdf``; its PDF/A output needs Ghostscript: ``apt-get install ghostscript``).
* **raw Tesseract**: ``tesseract page.png out -l <languages> pdf txt`` per page, ``--workers``
  processes at a time with ``OMP_THREAD_LIMIT=1``: the ceiling for any Tesseract-based pipeline.

Printed: pages/s of each and the ratios; CPU seconds per page of each (its own process and the
programs it ran, over the same timed span: steadier than pages/s on a machine doing other work);
CER of each PDF's extracted text layer (pypdf, the same extractor for all) and of Tesseract's
own text; output size per page.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pypdf

from flows._exec import verapdf
from flows.capture import (
    CaptureOptions,
    DocumentMetadata,
    assemble_pdfa,
    load_pages,
    process_pages,
)
from flows.capture.ocr import edit_distance
from flows.capture.samples import SamplePage, normalise_text, write_sample_batch

DEFAULT_OCRMYPDF = Path.home() / ".cache" / "qor-bench-ocrmypdf" / "bin" / "ocrmypdf"


def corpus_cer(truths: list[str], texts: list[str]) -> float:
    """Total character edits over total reference characters (whitespace normalised)."""
    edits = chars = 0
    for truth, text in zip(truths, texts, strict=True):
        ref, hyp = normalise_text(truth), normalise_text(text)
        edits += edit_distance(ref, hyp)
        chars += len(ref)
    return edits / chars if chars else 0.0


def cpu_seconds() -> float:
    """CPU time of this process and of every child it has waited for (Tesseract, OCRmyPDF…).

    Unlike wall-clock time this hardly moves with other work on the machine, so it shows what
    each contender costs even when the pages/s figures are disturbed.
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pdf_page_texts(pdf: Path) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(pdf).pages]


def run_qor(
    pages: list[SamplePage], work: Path, *, workers: int, languages: str,
    ocr_skew_tolerance_deg: float = CaptureOptions.ocr_skew_tolerance_deg,
    access_alternatives: bool = True,
) -> dict[str, Any]:
    options = CaptureOptions(languages=languages, ocr_skew_tolerance_deg=ocr_skew_tolerance_deg)
    cpu_started = cpu_seconds()
    started = time.perf_counter()
    refs = load_pages([p.path for p in pages], options=options)
    results = process_pages(refs, work_dir=work / "pages", options=options, workers=workers)
    pdf = assemble_pdfa(
        results,
        out=work / "qor.pdf",
        metadata=DocumentMetadata(title="Bench", identifier="BENCH-1", language="kk"),
        options=options,
    )
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    access_started = time.perf_counter()
    # The access PDF exactly as `qor digitise` puts it in the bag (data/web/<inv>.pdf).
    from flows.capture.derivatives import make_access_pdf

    made = make_access_pdf(
        results,
        out=work / "qor-access.pdf",
        metadata=DocumentMetadata(title="Bench", identifier="BENCH-1", language="kk"),
        options=options,
    )
    access = made.path
    access_seconds = time.perf_counter() - access_started
    # The other text-page settings on the same pages: "off" is the rule before issue 16's
    # per-page choice (every page JPEG), "grey" keeps text pages grey at 150 dpi.
    import dataclasses

    alternatives = {
        mode: make_access_pdf(
            results, out=work / f"qor-access-{mode}.pdf",
            metadata=DocumentMetadata(title="Bench", identifier="BENCH-1", language="kk"),
            options=dataclasses.replace(options, access_text_pages=mode),
        ).path
        for mode in (("grey", "off") if access_alternatives else ())
    }
    return {
        "seconds": seconds,
        "cpu": cpu,
        "pdf": pdf,
        "access_pdf": access,
        "access_choices": [e.describe() for e in made.encodings],
        "access_alternatives": alternatives,
        "access_seconds": access_seconds,
        "ocr_texts": [r.text for r in results],
        "rotations": sum(1 for r in results if r.preparation.rotation_applied),
        "osd_runs": sum(1 for r in results if r.preparation.orientation_checked == "osd"),
    }


def run_raw_tesseract(
    pages: list[SamplePage], work: Path, *, workers: int, languages: str
) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}

    def one(page: SamplePage) -> Path:
        base = work / page.path.stem
        subprocess.run(
            ["tesseract", str(page.path), str(base), "-l", languages, "pdf", "txt"],
            check=True, capture_output=True, env=env,
        )
        return base

    cpu_started = cpu_seconds()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        bases = list(pool.map(one, pages))
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    pdfs = [b.with_suffix(".pdf") for b in bases]
    return {
        "seconds": seconds,
        "cpu": cpu,
        "pdfs": pdfs,
        "pdf_texts": [pdf_page_texts(p)[0] for p in pdfs],
        "txt_texts": [b.with_suffix(".txt").read_text(encoding="utf-8") for b in bases],
        "bytes": sum(p.stat().st_size for p in pdfs),
    }


def run_ocrmypdf(
    pages: list[SamplePage], work: Path, *, workers: int, languages: str, ocrmypdf: Path
) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    img2pdf = ocrmypdf.with_name("img2pdf")
    source = work / "input.pdf"
    subprocess.run(
        [str(img2pdf), *[str(p.path) for p in pages], "-o", str(source)],
        check=True, capture_output=True,
    )
    out = work / "ocrmypdf.pdf"
    cpu_started = cpu_seconds()
    started = time.perf_counter()
    done = subprocess.run(
        [str(ocrmypdf), "-l", languages, "--output-type", "pdfa", "-j", str(workers),
         str(source), str(out)],
        capture_output=True, text=True, check=False,
    )
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    if done.returncode != 0:
        raise SystemExit(f"ocrmypdf failed ({done.returncode}): {done.stderr[-2000:]}")
    return {"seconds": seconds, "cpu": cpu, "pdf": out}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--languages", default="kaz+rus")
    parser.add_argument("--noise", type=float, default=6.0)
    parser.add_argument("--ocrmypdf", type=Path, default=DEFAULT_OCRMYPDF)
    parser.add_argument("--work", type=Path, default=None, help="keep outputs here")
    parser.add_argument(
        "--rounds", type=int, default=3,
        help="run raw Tesseract and Qor this many times, interleaved in alternating order; "
             "report each one's median and the median of the per-round ratios",
    )
    parser.add_argument(
        "--ocrmypdf-rounds", type=int, default=1,
        help="run OCRmyPDF in this many of the rounds (it is far slower; its ratio is not close)",
    )
    parser.add_argument(
        "--straighten-first", action="store_true",
        help="also run Qor with every skewed page straightened before OCR "
             "(ocr_skew_tolerance_deg=0): the accuracy/speed trade of that option",
    )
    args = parser.parse_args(argv)

    ocrmypdf = args.ocrmypdf if args.ocrmypdf.exists() else shutil.which("ocrmypdf")
    if ocrmypdf is None:
        raise SystemExit(f"OCRmyPDF not found at {args.ocrmypdf} nor on PATH (see --help)")
    work = args.work or Path(tempfile.mkdtemp(prefix="qor-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work dir {work}; {args.pages} A4 pages, {args.workers} workers, -l {args.languages}")
    pages = write_sample_batch(
        work / "scans", pages=args.pages, size_mm=(210.0, 297.0), noise=args.noise, seed=11
    )
    truths = [p.text for p in pages]
    chars = sum(len(normalise_text(t)) for t in truths)
    print(f"ground truth: {chars} characters")

    names = ["raw", "qor", "ocrmypdf"] + (["qor-straighten-first"] if args.straighten_first else [])
    seconds: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    first: dict[str, Any] | None = None
    loads = [os.getloadavg()[0]]
    omp: dict[str, Any] | None = None
    raw: dict[str, Any] = {}
    qor: dict[str, Any] = {}
    for round_no in range(args.rounds):
        # Interleaved, and in alternating order, so a busy spell or a drift in the machine's
        # speed hits every contender alike. Raw Tesseract and Qor run every round (their ratio
        # is the close one); OCRmyPDF, far slower, runs in the first --ocrmypdf-rounds.
        tag = f"r{round_no}"

        def do_raw(tag: str = tag) -> dict[str, Any]:
            return run_raw_tesseract(
                pages, work / tag / "raw", workers=args.workers, languages=args.languages
            )

        def do_qor(tag: str = tag) -> dict[str, Any]:
            return run_qor(
                pages, work / tag / "qor", workers=args.workers, languages=args.languages,
                access_alternatives=tag == f"r{args.rounds - 1}",
            )

        if round_no % 2 == 0:
            raw, qor = do_raw(), do_qor()
        else:
            qor, raw = do_qor(), do_raw()
        contenders = [("raw", raw), ("qor", qor)]
        if round_no < args.ocrmypdf_rounds:
            omp = run_ocrmypdf(
                pages, work / tag / "ocrmypdf", workers=args.workers, languages=args.languages,
                ocrmypdf=Path(ocrmypdf),
            )
            contenders.append(("ocrmypdf", omp))
        if args.straighten_first:
            # Qor with every skewed page straightened before OCR (ocr_skew_tolerance_deg=0).
            first = run_qor(pages, work / tag / "qor-first", workers=args.workers,
                            languages=args.languages, ocr_skew_tolerance_deg=0.0,
                            access_alternatives=False)
            contenders.append(("qor-straighten-first", first))
        for name, result in contenders:
            seconds[name].append(result["seconds"])
            cpu[name].append(result["cpu"])
        loads.append(os.getloadavg()[0])
    assert omp is not None

    n = args.pages
    rate = {name: n / statistics.median(values) for name, values in seconds.items()}
    qor_pdf, access_pdf, omp_pdf = qor["pdf"], qor["access_pdf"], omp["pdf"]
    cer = {
        "qor OCR text": corpus_cer(truths, qor["ocr_texts"]),
        "qor PDF text layer": corpus_cer(truths, pdf_page_texts(qor_pdf)),
        "qor access PDF text layer": corpus_cer(truths, pdf_page_texts(access_pdf)),
        **{f"qor access ({mode}) text layer": corpus_cer(truths, pdf_page_texts(path))
           for mode, path in qor["access_alternatives"].items()},
        **(
            {"qor straighten-first text": corpus_cer(truths, first["ocr_texts"])}
            if first is not None else {}
        ),
        "tesseract txt": corpus_cer(truths, raw["txt_texts"]),
        "tesseract PDF text layer": corpus_cer(truths, raw["pdf_texts"]),
        "ocrmypdf PDF text layer": corpus_cer(truths, pdf_page_texts(omp_pdf)),
    }
    size = {
        "qor archival": qor_pdf.stat().st_size / n,
        "qor access": access_pdf.stat().st_size / n,
        **{f"qor access {mode}": path.stat().st_size / n
           for mode, path in qor["access_alternatives"].items()},
        "tesseract pdf": raw["bytes"] / n,
        "ocrmypdf pdfa": omp_pdf.stat().st_size / n,
    }
    reports = verapdf.validate_many(
        [qor_pdf, access_pdf, *qor["access_alternatives"].values(), omp_pdf], flavour="2u")

    print(f"\nload average (1 min) at start and after each round: {loads}")
    print(f"seconds per round: {seconds}")
    print("\nthroughput (pages/s, wall clock, median of rounds)")
    for name in names:
        print(f"  {name:<21} {rate[name]:7.3f}   ({n / rate[name]:.1f} s)")
    paired = [r / q for r, q in zip(seconds["raw"], seconds["qor"], strict=True)]
    print(f"  ratio qor / raw tesseract  {rate['qor'] / rate['raw']:.3f}   (goal ≥ 0.95)")
    print(f"  ratio qor / raw tesseract, round by round: "
          f"{', '.join(f'{r:.3f}' for r in paired)}; median {statistics.median(paired):.3f}")
    print(f"  ratio qor / ocrmypdf       {rate['qor'] / rate['ocrmypdf']:.3f}")
    if args.straighten_first:
        print(f"  ratio qor straighten-first / raw tesseract  "
              f"{rate['qor-straighten-first'] / rate['raw']:.3f}")
    print(f"  qor access-profile assembly {qor['access_seconds']:.2f} s (extra)")
    print("\nCPU seconds per page (process + children, median of rounds; less load-sensitive)")
    per_page = {name: statistics.median(values) / n for name, values in cpu.items()}
    for name in names:
        print(f"  {name:<21} {per_page[name]:7.3f}")
    print(f"  ratio raw / qor (throughput ratio when CPU-bound)  "
          f"{per_page['raw'] / per_page['qor']:.3f}")
    print(f"  qor pages turned by OSD: {qor['rotations']}, OSD runs: {qor['osd_runs']}")
    print("\nCER against ground truth")
    for name, value in cer.items():
        print(f"  {name:<28} {value * 100:6.3f} %")
    print("\noutput size per page")
    for name, value in size.items():
        print(f"  {name:<21} {value / 1024:9.1f} KiB")
    print("  (qor access: text pages by the per-page rule, default bitonal; 'grey': text pages "
          "grey JPEG 150 dpi; 'off': every page JPEG, the rule before)")
    print("  access PDF page choices (flows.capture.access):")
    for number, choice in enumerate(qor["access_choices"], start=1):
        print(f"    page {number}: {choice}")
    same_text = pdf_page_texts(access_pdf) == pdf_page_texts(qor_pdf)
    print(f"  access PDF text layer identical to the archival one: {same_text}")
    print(f"  ratio qor access / ocrmypdf pdfa  {size['qor access'] / size['ocrmypdf pdfa']:.2f}"
          f"  (access PDF of the bag, data/web/; goal <= 300 KB a page: "
          f"{'met' if size['qor access'] <= 300_000 else 'NOT met'})")
    print("\nveraPDF PDF/A-2U")
    for pdf, report in reports.items():
        rules = ", ".join(f.rule_id for f in report.failures[:6])
        print(f"  {pdf.name:<24} {'compliant' if report.compliant else 'NOT compliant: ' + rules}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
