"""OCR accuracy on old, degraded print: Qor against raw Tesseract, per degradation class, one run.

    .venv/bin/python bench/ocr_quality.py [--pages-per-class 2] [--lines-per-class 4] [--workers 2]

Input: the ground-truth set of :mod:`flows.capture.degraded` — Kazakh and Russian text in
period-like serif typefaces, rendered with one kind of damage per class (noise, blur, ink
spread, ink dropout, bleed-through, stains, 150 dpi, heavy JPEG, two and three columns; plus
``clean``, the control), as pages and as single-line crops; plus ``--clean-pages`` of the
project's clean synthetic set (:mod:`flows.capture.samples`, row ``project_clean``), where Qor
must stay as good as raw Tesseract. Both contenders get the same files:

* **raw Tesseract**: ``tesseract <image> - -l kaz+rus`` — its default page segmentation
  (``--psm 3``), languages fixed to Kazakh + Russian, ``OMP_THREAD_LIMIT=1``.
* **Qor**: :func:`flows.capture.process_page` as ``qor digitise`` runs it — languages chosen
  from the item's language (the register's ``kk`` → ``kaz+rus``, ``ru`` → ``rus``), line crops
  with ``layout="line"``, and its page preparation, segmentation fallback and script
  consistency; it also writes hOCR, ALTO (schema-checked) and the page image, which raw
  Tesseract does not.

``--workers`` pages run at a time for each (threads driving one Tesseract process each).

Printed: per class, character and word error rates (CER, WER: jiwer, over the class's
whitespace-normalised texts) of each and Qor/raw ratios; the degraded set overall (every class
but the two clean ones), the classes where Qor is worse, pages/s of each with the ratio, and
CPU seconds per sample of each (its own process and the Tesseract runs it waited for).
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jiwer

from flows.capture import CaptureOptions, PageRef, process_page
from flows.capture.degraded import CLASSES, DegradedSample, write_degraded_set
from flows.capture.languages import models_for
from flows.capture.samples import normalise_text, write_sample_batch


def raw_tesseract(sample: DegradedSample, work: Path) -> str:
    del work
    done = subprocess.run(
        ["tesseract", str(sample.path), "-", "-l", "kaz+rus"],
        check=True, capture_output=True, env={**os.environ, "OMP_THREAD_LIMIT": "1"},
    )
    return done.stdout.decode("utf-8", "replace")


def qor(sample: DegradedSample, work: Path) -> str:
    options = CaptureOptions(
        languages=models_for(sample.language),
        layout="line" if sample.level == "line" else "page",
    )
    ref = PageRef(sample.path, 0, sample.path.stem)
    return process_page(ref, work_dir=work / sample.path.stem, options=options).text


def cpu_seconds() -> float:
    """CPU time of this process and of every program it waited for (Tesseract): steadier than
    wall time on a machine shared with other work."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(
    contender: Callable[[DegradedSample, Path], str],
    samples: list[DegradedSample],
    work: Path,
    *,
    workers: int,
) -> tuple[list[str], float, float]:
    """Texts, wall seconds and CPU seconds of one contender over all samples."""
    work.mkdir(parents=True, exist_ok=True)
    cpu = cpu_seconds()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        texts = list(pool.map(lambda s: contender(s, work), samples))
    return texts, time.perf_counter() - started, cpu_seconds() - cpu


def rates(samples: list[DegradedSample], texts: list[str]) -> tuple[float, float]:
    """(CER, WER) over the samples' texts, whitespace-normalised, by jiwer."""
    refs = [normalise_text(s.text) for s in samples]
    hyps = [normalise_text(t) for t in texts]
    return float(jiwer.cer(refs, hyps)), float(jiwer.wer(refs, hyps))


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else ("1.00×" if not a else "inf")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages-per-class", type=int, default=2)
    parser.add_argument("--lines-per-class", type=int, default=4)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument(
        "--clean-pages", type=int, default=3,
        help="pages of the project's clean sample set (A5, slightly skewed) read as well",
    )
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--work", type=Path, default=None, help="keep the set and outputs here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="qor-bench-quality-") as tmp:
        work = args.work or Path(tmp)
        samples = write_degraded_set(
            work / "set", per_class=args.pages_per_class, lines_per_class=args.lines_per_class,
            seed=args.seed,
        )
        if args.clean_pages:
            # The project's clean synthetic set, as a Kazakh item (kk → kaz+rus): unchanged?
            samples += [
                DegradedSample(p.path, p.text, "project_clean", "page", "kk", "DejaVuSerif", 300)
                for p in write_sample_batch(work / "clean", pages=args.clean_pages, seed=args.seed)
            ]
        pages = sum(1 for s in samples if s.level == "page")
        print(
            f"ground truth: {len(samples)} samples ({pages} pages, {len(samples) - pages} lines), "
            f"{len(CLASSES)} classes, fonts {sorted({s.font for s in samples})}, "
            f"workers {args.workers}"
        )
        raw_texts, raw_s, raw_cpu = run(raw_tesseract, samples, work / "raw",
                                        workers=args.workers)
        qor_texts, qor_s, qor_cpu = run(qor, samples, work / "qor", workers=args.workers)

        print(f"{'class':<14} {'n':>3} {'raw CER':>8} {'Qor CER':>8} {'ratio':>6}  "
              f"{'raw WER':>8} {'Qor WER':>8} {'ratio':>6}")
        worse: list[str] = []

        def row(name: str, chosen: list[int]) -> tuple[float, float]:
            subset = [samples[i] for i in chosen]
            r_cer, r_wer = rates(subset, [raw_texts[i] for i in chosen])
            q_cer, q_wer = rates(subset, [qor_texts[i] for i in chosen])
            print(f"{name:<14} {len(chosen):>3} {r_cer:>8.4f} {q_cer:>8.4f} "
                  f"{ratio(q_cer, r_cer):>6}  {r_wer:>8.4f} {q_wer:>8.4f} {ratio(q_wer, r_wer):>6}")
            return r_cer, q_cer

        for name in (*CLASSES, "project_clean"):
            chosen = [i for i, s in enumerate(samples) if s.degradation == name]
            if chosen:
                r_cer, q_cer = row(name, chosen)
                if q_cer > r_cer:
                    worse.append(name)
        for level in ("page", "line"):
            chosen = [i for i, s in enumerate(samples) if s.level == level]
            if chosen:
                row(f"all {level}s", chosen)
        degraded = [
            i for i, s in enumerate(samples) if s.degradation not in ("clean", "project_clean")
        ]
        r_cer, q_cer = row("DEGRADED", degraded)
        print(
            f"degraded set: Qor CER {ratio(q_cer, r_cer)} raw Tesseract's (goal ≤ 0.80×); "
            f"classes where Qor is worse: {', '.join(worse) or 'none'}"
        )
        n = len(samples)
        print(
            f"throughput: raw Tesseract {n / raw_s:.2f} pages/s ({raw_s:.1f} s), "
            f"Qor {n / qor_s:.2f} pages/s ({qor_s:.1f} s), Qor/raw {raw_s / qor_s:.2f}× "
            "(goal ≥ 0.90×)"
        )
        print(
            f"CPU per sample: raw Tesseract {raw_cpu / n:.3f} s, Qor {qor_cpu / n:.3f} s, "
            f"raw/Qor {raw_cpu / qor_cpu:.2f}× (throughput at equal CPU; steadier than pages/s "
            "on a shared machine)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
