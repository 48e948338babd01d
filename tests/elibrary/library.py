"""Building e-library test copies directly with storage + integrity (no OCR): a real PDF with
the given page texts, encrypted into a real bag in a real file store, registered and indexed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from fpdf import FPDF
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import readers, register
from elibrary.accounts import create_reader_account, create_staff_account
from elibrary.library import set_rights
from elibrary.models import Rights
from elibrary.textindex import index_copy_text
from flows.capture.derivatives import reading_image
from integrity.bag import BagInfo, PayloadFile, build_bag
from storage import FileStore, LocalKeyring, encrypt_chunks

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
PASSWORD = "correct horse battery"


def make_pdf(path: Path, pages: list[str]) -> Path:
    """A PDF with one page per text, the text drawn visibly (DejaVu covers Kazakh letters)."""
    pdf = FPDF(format=(148, 210))
    pdf.add_font("DejaVu", "", str(FONT))
    pdf.set_font("DejaVu", size=14)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def render_pages(pdf: Path, out: Path, *, dpi: float = 150) -> list[Path]:
    """Each page of ``pdf`` rendered by PDFium and made a reading image, ``out/NNNN.jpg``."""
    import pypdfium2

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    doc = pypdfium2.PdfDocument(str(pdf))
    try:
        for i in range(len(doc)):
            image = doc[i].render(scale=dpi / 72).to_pil()
            path = out / f"{i + 1:04d}.jpg"
            path.write_bytes(reading_image(image))
            written.append(path)
    finally:
        doc.close()
    return written


def scan_pages(scans: list[Path], out: Path) -> list[Path]:
    """Each scan made a reading image, ``out/NNNN.jpg``, as the capture flow makes them."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for i, scan in enumerate(scans, start=1):
        with Image.open(scan) as im:
            im.load()
            data = reading_image(im)
        path = out / f"{i:04d}.jpg"
        path.write_bytes(data)
        written.append(path)
    return written


def _close_word(cur: list[tuple[str, tuple[float, float, float, float]]],
                words: list[tuple[str, float, float, float, float]]) -> None:
    if cur:
        words.append(("".join(c for c, _ in cur), min(b[0] for _, b in cur),
                      min(b[1] for _, b in cur), max(b[2] for _, b in cur),
                      max(b[3] for _, b in cur)))
        cur.clear()


def alto_pages(pdf: Path, out: Path, *, dpi: float = 150) -> list[Path]:
    """ALTO 4 files (``out/NNNN.alto.xml``) of the PDF's words, their boxes taken by PDFium
    from the PDF's text in pixels of the page rendered at ``dpi`` (like the reading images):
    the word boxes the capture flow's Tesseract ALTO gives, for a PDF without a scan."""
    import pypdfium2
    from lxml import etree

    ns = "http://www.loc.gov/standards/alto/ns-v4#"
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    doc = pypdfium2.PdfDocument(str(pdf))
    try:
        for i in range(len(doc)):
            page = doc[i]
            w_pt, h_pt = page.get_size()
            k = dpi / 72
            text = page.get_textpage()
            words: list[tuple[str, float, float, float, float]] = []
            cur: list[tuple[str, tuple[float, float, float, float]]] = []

            for n in range(text.count_chars()):
                ch = text.get_text_range(n, 1)
                if not ch.strip():
                    _close_word(cur, words)
                    continue
                cur.append((ch, text.get_charbox(n)))
            _close_word(cur, words)
            root = etree.Element(f"{{{ns}}}alto", nsmap={None: ns})
            desc = etree.SubElement(root, f"{{{ns}}}Description")
            etree.SubElement(desc, f"{{{ns}}}MeasurementUnit").text = "pixel"
            layout_el = etree.SubElement(root, f"{{{ns}}}Layout")
            pw, ph = round(w_pt * k), round(h_pt * k)
            page_el = etree.SubElement(layout_el, f"{{{ns}}}Page", ID=f"p{i + 1}",
                                       PHYSICAL_IMG_NR=str(i + 1), WIDTH=str(pw),
                                       HEIGHT=str(ph))
            space = etree.SubElement(page_el, f"{{{ns}}}PrintSpace")
            block = etree.SubElement(space, f"{{{ns}}}TextBlock", ID=f"b{i + 1}")
            line = etree.SubElement(block, f"{{{ns}}}TextLine", ID=f"l{i + 1}")
            for j, (word, x0, y0, x1, y1) in enumerate(words, start=1):
                etree.SubElement(line, f"{{{ns}}}String", ID=f"w{i + 1}_{j}", CONTENT=word,
                                 HPOS=str(round(x0 * k)), VPOS=str(round((h_pt - y1) * k)),
                                 WIDTH=str(max(1, round((x1 - x0) * k))),
                                 HEIGHT=str(max(1, round((y1 - y0) * k))))
            path = out / f"{i + 1:04d}.alto.xml"
            path.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
            written.append(path)
    finally:
        doc.close()
    return written


@dataclass(frozen=True)
class MadeCopy:
    bag_id: str
    inventory_number: str
    pdf_bytes: bytes


@dataclass
class Library:
    """A register + store + keyring with copies in it."""

    sessions: sessionmaker[Session]
    store: FileStore
    keyring: LocalKeyring
    work: Path
    _n: int = 0

    def add_copy(self, *, title: str, pages: list[str], rights: Rights,
                 pdf: Path | None = None, authors: tuple[str, ...] = (),
                 scans: list[Path] | None = None) -> MadeCopy:
        """A copy of ``pages`` (their text, in a PDF made of it unless ``pdf`` is given).

        Its reading images are the PDF's pages rendered by PDFium, or, with ``scans``, those
        images (one per page) made reading images by the capture flow's own
        :func:`reading_image` — e.g. the IIIF Image API validator's test image."""
        if scans is not None and len(scans) != len(pages):
            raise ValueError(f"{len(scans)} scans for {len(pages)} pages")
        self._n += 1
        bag_id = f"bag-{uuid.uuid4().hex[:12]}"
        src = self.work / bag_id
        src.mkdir(parents=True)
        pdf_path = pdf if pdf is not None else make_pdf(src / "access.pdf", pages)
        payload = [PayloadFile(source=pdf_path, bag_path="access/copy.pdf")]
        if scans is not None:  # the reading images (data/web/pages/NNNN.jpg) of the scans
            payload.extend(PayloadFile(source=p, bag_path=f"web/pages/{i:04d}.jpg")
                           for i, p in enumerate(scan_pages(scans, src / "web"), start=1))
        elif pdf is None:  # the reading images (data/web/pages/NNNN.jpg) of the PDF's pages
            payload.extend(PayloadFile(source=p, bag_path=f"web/pages/{i:04d}.jpg")
                           for i, p in enumerate(render_pages(pdf_path, src / "web"), start=1))
        for i, text in enumerate(pages, start=1):
            master = src / f"scan{i}.png"
            master.write_bytes(b"not really a scan " + str(i).encode())
            payload.append(PayloadFile(source=master, bag_path=f"masters/{i:04d}_scan{i}.png"))
            txt = src / f"scan{i}.txt"
            txt.write_text(text, "utf-8")
            payload.append(PayloadFile(source=txt, bag_path=f"text/scan{i}.txt"))
        if pdf is None:  # the pages' ALTO word boxes (data/text/<label>.alto.xml)
            payload.extend(PayloadFile(source=p, bag_path=f"text/scan{i}.alto.xml")
                           for i, p in enumerate(alto_pages(pdf_path, src / "alto"), start=1))
        bag_key = self.keyring.new_bag_key()
        bag_dir = self.work / "bags" / bag_id
        bag_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.sessions() as s, s.begin():
            batch = register.open_receipt_batch(s, act_number=f"act-{bag_id}",
                                                received_on=date(2025, 1, 1), actor="test")
            rec = register.add_record(s, title=title, authors=list(authors), actor="test",
                                      year=2001, language="kaz")
            item = register.receive_item(s, record=rec, source="purchase", receipt_batch=batch,
                                         actor="test")
            inv = item.inventory_number
        summary = build_bag(
            bag_dir, payload=payload,
            info=BagInfo(source_organization="Test Library", external_identifier=inv),
            transform=lambda fh, file_id: encrypt_chunks(fh, bag_key=bag_key, file_id=file_id),
        )
        total = 0
        for path in sorted(p for p in bag_dir.rglob("*") if p.is_file()):
            info = self.store.put_file(f"bags/{bag_id}/{path.relative_to(bag_dir).as_posix()}",
                                       path)
            total += info.size
        with self.sessions() as s, s.begin():
            register.add_digital_copy(
                s, inventory_number=inv, bag_id=bag_id, store_uri=self.store.uri, version=1,
                kek_id=bag_key.wrapped.kek_id, wrapped_key=bag_key.wrapped.wrapped,
                pdfa_verdict="not checked (test)", ocr_confidence=None,
                payload_bytes=summary.payload_octets, file_count=len(summary.payload),
                page_count=len(pages), actor="test")
            index_copy_text(s, store=self.store, keyring=self.keyring, bag_id=bag_id,
                            default_rights=Rights.READERS)
            set_rights(s, bag_id=bag_id, rights=rights, actor="test")
        return MadeCopy(bag_id=bag_id, inventory_number=inv, pdf_bytes=pdf_path.read_bytes())

    def add_reader(self, ticket: str, *, password: str = PASSWORD) -> None:
        with self.sessions() as s, s.begin():
            readers.add_reader(s, ticket_number=ticket, name=f"Reader {ticket}",
                               category="adult", actor="test")
            create_reader_account(s, ticket_number=ticket, password=password, actor="test")

    def add_staff(self, name: str, role: str, *, password: str = PASSWORD) -> None:
        with self.sessions() as s, s.begin():
            create_staff_account(s, username=name, role=role, password=password, actor="test")
