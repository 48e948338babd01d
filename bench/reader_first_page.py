"""Record page → first page painted, in headless Chromium: the IIIF viewer (Mirador, image tiles)
against the pdf.js route (the anchor) on the same copy, in one run.

The copy: ``--pages`` synthetic text pages (1240 × 1754 px, 150 dpi A4), each made a reading
image by the digitise code's derivative (``flows.capture.derivatives.reading_image``) and
stored encrypted in a real bag as ``data/web/pages/NNNN.jpg`` beside an access PDF of the same
page images with their text (``data/access/copy.pdf``) and the page texts; registered, indexed
and opened to everyone (``open``) in a SQLite register and a file store. The e-library serves it
under uvicorn in this process.

Each of ``--loads`` loads is cold (a new browser context: nothing cached): the record page is
opened, its link is clicked (the clock starts at the click, kept in ``sessionStorage``), and
the clock stops when the first page is painted:

* viewer (``/copies/<bag>/view``): every page-1 image of the first burst (info.json excluded,
  thumbnails excluded) has arrived (``PerformanceObserver`` resource entries) and two animation
  frames have passed (OpenSeadragon draws a tile on the frame after it loads);
* pdf.js (``/copies/<bag>/read?page=1``): pdf.js has drawn page 1 on its canvas
  (``data-rendered-page="1"``, seen by a ``MutationObserver``).

The viewer page shows the page at screen size at once (an ``<img>`` of the Image API,
``full/!800,800``) while Mirador loads; its load event (+ two frames) is the viewer's first
paint, and "sharp" is the first burst of Mirador's tiles drawn.

Bytes: every response the page (and pdf.js's worker) had received by the paint, from the
browser's own network accounting (headers + body, Playwright ``request.sizes()``), in total and
without the code (``/mirador``, ``/pdfjs``, ``/static``: cached after a reader's first visit).
Goal: p95 ≤ 1 s and ≤ 500 KB to the first page.

    .venv/bin/python bench/reader_first_page.py [--pages 300] [--loads 10]
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WORDS = ["қазақ", "дала", "тарих", "өзен", "тау", "кітап", "мектеп", "халық", "жер", "су",
         "ел", "тіл", "бет", "мәтін", "история", "степь", "река", "книга", "город", "народ"]
CODE_PREFIXES = ("/mirador/", "/pdfjs/", "/static/")

INIT_SCRIPT = """
(() => {
  window.__qorPaint = null;
  const path = location.pathname;
  if (path.endsWith('/read')) {
    const seen = () => {
      const c = document.getElementById('page-canvas');
      if (window.__qorPaint === null && c && c.dataset.renderedPage === '1') {
        window.__qorPaint = performance.now();
      }
    };
    new MutationObserver(seen).observe(document, {subtree: true, attributes: true,
      attributeFilter: ['data-rendered-page']});
  }
  if (path.endsWith('/view')) {
    window.__qorTiles = 0;
    window.__qorSharp = null;
    document.addEventListener('DOMContentLoaded', () => {
      const img = document.getElementById('first-page');
      const painted = () => requestAnimationFrame(() => requestAnimationFrame(() => {
        if (window.__qorPaint === null) { window.__qorPaint = performance.now(); }
      }));
      if (img && img.complete && img.naturalWidth) { painted(); }
      else if (img) { img.addEventListener('load', painted); }
    });
    const page1 = /\\/iiif\\/3\\/[^/]+~1\\/([^/]+)\\/([^/]+)\\/0\\/default\\.jpg$/;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const m = page1.exec(new URL(e.name).pathname);
        // not the thumbnails, not the page shown at once (!800,800): Mirador's own images
        if (!m || /^(,|%2C)120$/.test(m[2]) || /^(!|%21)/.test(m[2])) { continue; }
        window.__qorTiles += 1;
        requestAnimationFrame(() => requestAnimationFrame(() => {
          window.__qorSharp = performance.now();
          if (window.__qorPaint === null) { window.__qorPaint = window.__qorSharp; }
        }));
      }
    }).observe({type: 'resource', buffered: true});
  }
})();
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def page_image(n: int, rng: random.Random) -> Any:
    from PIL import Image, ImageDraw, ImageFont

    im = Image.new("L", (1240, 1754), 250)
    draw = ImageDraw.Draw(im)
    font = ImageFont.truetype(str(FONT), 26)
    draw.text((110, 100), f"{n}-бет", font=font, fill=20)
    for line in range(40):
        text = " ".join(rng.choice(WORDS) for _ in range(9))
        draw.text((110, 170 + line * 38), text, font=font, fill=25)
    return im


def build_copy(root: Path, pages: int) -> tuple[Any, str, Any, Any]:
    """A registered, indexed, open copy of ``pages`` pages in a real encrypted bag."""
    from fpdf import FPDF

    from catalog_sync import db, register
    from elibrary.library import set_rights
    from elibrary.models import Rights
    from elibrary.textindex import index_copy_text
    from flows.capture.derivatives import reading_image
    from integrity.bag import BagInfo, PayloadFile, build_bag
    from storage import FileStore, LocalKeyring, encrypt_chunks

    engine = db.make_engine(f"sqlite:///{root / 'register.sqlite3'}")
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    store = FileStore(root / "store", fsync=False)
    keyring = LocalKeyring(root / "keys")
    bag_id = f"bag-{uuid.uuid4().hex[:12]}"
    src = root / "src"
    (src / "web").mkdir(parents=True)
    rng = random.Random(16)
    pdf = FPDF(format="A4")
    pdf.add_font("DejaVu", "", str(FONT))
    pdf.set_font("DejaVu", size=9)
    payload: list[PayloadFile] = []
    for n in range(1, pages + 1):
        im = page_image(n, rng)
        jpg = src / "web" / f"{n:04d}.jpg"
        jpg.write_bytes(reading_image(im))
        payload.append(PayloadFile(source=jpg, bag_path=f"web/pages/{n:04d}.jpg"))
        text = f"{n}-бет " + " ".join(rng.choice(WORDS) for _ in range(60))
        txt = src / f"p{n}.txt"
        txt.write_text(text, "utf-8")
        payload.append(PayloadFile(source=txt, bag_path=f"text/p{n:04d}.txt"))
        pdf.add_page()
        pdf.image(str(jpg), x=0, y=0, w=210, h=297)
        pdf.set_xy(10, 10)
        pdf.set_text_color(255, 255, 255)
        pdf.multi_cell(0, 4, text)
    access = src / "access.pdf"
    pdf.output(str(access))
    payload.insert(0, PayloadFile(source=access, bag_path="access/copy.pdf"))
    bag_key = keyring.new_bag_key()
    bag_dir = root / "bags" / bag_id
    bag_dir.parent.mkdir(parents=True)
    with sessions() as s, s.begin():
        batch = register.open_receipt_batch(s, act_number="bench", received_on=date(2025, 1, 1),
                                            actor="bench")
        rec = register.add_record(s, title="Қазақ даласы (bench)", actor="bench", year=2001,
                                  language="kaz")
        inv = register.receive_item(s, record=rec, source="purchase", receipt_batch=batch,
                                    actor="bench").inventory_number
    summary = build_bag(
        bag_dir, payload=payload,
        info=BagInfo(source_organization="Bench Library", external_identifier=inv),
        transform=lambda fh, file_id: encrypt_chunks(fh, bag_key=bag_key, file_id=file_id))
    for path in sorted(p for p in bag_dir.rglob("*") if p.is_file()):
        store.put_file(f"bags/{bag_id}/{path.relative_to(bag_dir).as_posix()}", path)
    with sessions() as s, s.begin():
        register.add_digital_copy(
            s, inventory_number=inv, bag_id=bag_id, store_uri=store.uri, version=1,
            kek_id=bag_key.wrapped.kek_id, wrapped_key=bag_key.wrapped.wrapped,
            pdfa_verdict="not checked (bench)", ocr_confidence=None,
            payload_bytes=summary.payload_octets, file_count=len(summary.payload),
            page_count=pages, actor="bench")
        index_copy_text(s, store=store, keyring=keyring, bag_id=bag_id,
                        default_rights=Rights.READERS)
        set_rights(s, bag_id=bag_id, rights=Rights.OPEN, actor="bench")
    return sessions, bag_id, keyring, access.stat().st_size


def serve(sessions: Any, keyring: Any, port: int) -> Any:
    import uvicorn

    from elibrary import web
    from elibrary.config import ElibraryConfig
    from storage import open_store

    config = ElibraryConfig(secret_key=b"bench secret key for the reader first page bench",
                            base_url=f"http://localhost:{port}")
    app = web.create_app(config, sessions=sessions, open_store=open_store, keyring=keyring)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the e-library did not start")
        time.sleep(0.05)
    return server


def one_load(browser: Any, base: str, bag_id: str,
             link: str) -> tuple[float, int, int, float]:
    """Seconds from the click on the record page's link to the first page painted, bytes
    received by then (all, and without the code), and seconds to the sharp page (the viewer's
    first burst of tiles drawn; for pdf.js the same as the paint)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(INIT_SCRIPT)
    got: list[tuple[float, str, Any]] = []

    def finished(request: Any) -> None:
        got.append((time.time() * 1000, request.url, request))

    context.on("requestfinished", finished)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{base}/copies/{bag_id}?lang=en")
    page.evaluate("() => sessionStorage.setItem('qorClick', String(Date.now()))")
    page.locator(f"a[href^='/copies/{bag_id}/{link}']").first.click()
    page.wait_for_function("() => window.__qorPaint !== null")
    if link == "view":  # wait for the first burst of page-1 tiles to be over
        page.wait_for_function("() => window.__qorTiles > 0 && window.__qorSharp !== null")
        last = -1
        while True:
            n = page.evaluate("() => window.__qorTiles")
            if n == last:
                break
            last = n
            page.wait_for_timeout(700)
    painted_at = float(page.evaluate("() => performance.timeOrigin + window.__qorPaint"))
    click_at = float(page.evaluate("() => Number(sessionStorage.getItem('qorClick'))"))
    paint = painted_at - click_at
    sharp = paint
    if link == "view":
        sharp = float(page.evaluate("() => performance.timeOrigin + window.__qorSharp")) - click_at
    total = code = 0
    for _when, url, request in got:
        timing = request.timing
        start = timing.get("startTime", 0)
        end = start + max(0.0, timing.get("responseEnd", 0))
        if start < click_at - 1 or end > painted_at + 1:
            continue  # the record page itself, or not received by the paint
        sizes = request.sizes()
        n = sizes["responseBodySize"] + sizes["responseHeadersSize"]
        total += n
        if any(p in url for p in CODE_PREFIXES):
            code += n
    context.close()
    return paint / 1000, total, total - code, sharp / 1000


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--loads", type=int, default=10)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="qor-first-page-") as tmp:
        t0 = time.monotonic()
        sessions, bag_id, keyring, pdf_size = build_copy(Path(tmp), args.pages)
        print(f"copy: {args.pages} pages, bag {bag_id}, access PDF {pdf_size / 1e6:.2f} MB, "
              f"built in {time.monotonic() - t0:.1f} s")
        port = free_port()
        server = serve(sessions, keyring, port)
        base = f"http://localhost:{port}"
        results: dict[str, list[tuple[float, int, int, float]]] = {"view": [], "read": []}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            one_load(browser, base, bag_id, "view")  # warm the server (its caches, imports)
            one_load(browser, base, bag_id, "read")
            for _ in range(args.loads):
                for link in ("view", "read"):
                    results[link].append(one_load(browser, base, bag_id, link))
            browser.close()
        server.should_exit = True
    names = {"view": "Qor viewer (Mirador, IIIF tiles)", "read": "pdf.js route (anchor)"}
    summary: dict[str, tuple[float, float, float, float, float]] = {}
    for link, rows in results.items():
        secs = [r[0] for r in rows]
        kb = [r[1] / 1024 for r in rows]
        kb_data = [r[2] / 1024 for r in rows]
        sharp = [r[3] for r in rows]
        summary[link] = (statistics.median(secs), pct(secs, 0.95), statistics.median(kb),
                         statistics.median(kb_data), pct(sharp, 0.95))
        p50, p95, k, kd, sp95 = summary[link]
        print(f"{names[link]:34s} first page p50 {p50 * 1000:6.0f} ms  p95 {p95 * 1000:6.0f} ms"
              f"  bytes {k:8.0f} KB  (without the code: {kd:7.0f} KB)  sharp p95 "
              f"{sp95 * 1000:6.0f} ms  over {len(rows)} loads")
    v, r = summary["view"], summary["read"]
    print(f"ratio viewer/pdf.js: p50 {v[0] / r[0]:.2f}x  p95 {v[1] / r[1]:.2f}x  "
          f"bytes {v[2] / r[2]:.2f}x  bytes without code {v[3] / r[3]:.2f}x")
    print(f"goal p95 <= 1 s: {'met' if v[1] <= 1.0 else 'NOT met'} ({v[1]:.2f} s); "
          f"goal <= 500 KB: {'met' if v[2] <= 500 else 'NOT met'} ({v[2]:.0f} KB cold, "
          f"{v[3]:.0f} KB with the viewer's code cached)")


if __name__ == "__main__":
    main()
