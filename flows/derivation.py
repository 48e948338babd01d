"""Access derivatives for copies stored without them (``qor copies derive``), as plain functions.

Copies digitised before issue 16 (or with ``QOR_ACCESS_DERIVATIVES=false``) have no
``data/web/``: readers get the archival PDF and no IIIF images. :func:`derive_copy` gives such a
copy what ``qor digitise`` makes today, from what the bag holds:

1. the archival PDF/A (``data/access/``) and each page's hOCR (``data/text/``) are decrypted
   into a private scratch folder; the archival PDF's page images are the *prepared* pages
   (turned, straightened, lossless) that the OCR geometry belongs to, so they — not the raw
   masters, whose geometry differs — are the source, exactly as at digitise time;
2. the access PDF (per-page rule of :mod:`flows.capture.access`, same text layer; veraPDF must
   pass) and the reading images are made (:mod:`flows.capture.derivatives`);
3. each is encrypted with the bag's own data key into the bag's new objects
   ``data/web/…`` (create-only writes, checked against their SHA-256);
4. the tag files get their next versions (:mod:`integrity.amend`): manifests, ``bag-info.txt``
   (Payload-Oxum), PREMIS (file objects, a *derivation* event naming every page's encoding and
   a *message digest calculation* event), METS (groups ``ACCESS`` and ``WEB``), tag manifests
   last. The store keeps every earlier version (``put_new_version``), so nothing is lost.

Idempotent: a copy whose manifest already lists ``data/web/`` is reported as already derived.
A run that died half-way resumes: objects it already wrote are taken as they are in the store.
The same is done in the replica store when the bag is there too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pikepdf
from lxml import etree

from catalog_sync import register
from flows._exec import verapdf
from flows.capture import (
    CaptureOptions,
    DocumentMetadata,
    PagePreparation,
    PageRef,
    PageResult,
)
from flows.capture.derivatives import make_access_pdf, make_reading_images
from flows.errors import DerivationRefused
from flows.steps import _format_of, _qor_version, fresh_dir, remove_tree, safe_component
from integrity import layout
from integrity.algorithms import MultiHasher
from integrity.amend import (
    amended_tag_files,
    manifest_algorithms,
    mets_with_derivatives,
    premis_with,
)
from integrity.bag import BagFileRecord
from integrity.formats import identify
from integrity.mets import METS_NS, XLINK_NS, MetsFile
from integrity.premis import EventType, PremisAgent, PremisEvent, PremisFile
from qor import wiring
from qor.settings import QorSettings
from storage import (
    BagKey,
    Keyring,
    ObjectExists,
    ObjectNotFound,
    ObjectStore,
    WrappedKey,
    decrypt_chunks,
    encrypt_chunks,
)

logger = logging.getLogger(__name__)

AGENT = "qor copies derive"

#: The tag files written last, after every other one (they cover the others).
_TAG_MANIFEST = "tagmanifest-"


@dataclass(frozen=True)
class DeriveResult:
    """What :func:`derive_copy` did to one copy: ``status`` ``"derived"`` or
    ``"already derived"``; the new files (bag paths), their stored bytes, the tag files given
    new versions, and the per-page encodings of the access PDF."""

    inventory_number: str
    bag_id: str
    store_uri: str
    status: str
    files: tuple[str, ...] = ()
    stored_bytes: int = 0
    tag_files: tuple[str, ...] = ()
    encodings: tuple[str, ...] = ()
    pdfa_verdict: str | None = None
    stores: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready values."""
        return {
            "inventory_number": self.inventory_number, "bag_id": self.bag_id,
            "store_uri": self.store_uri, "status": self.status, "files": list(self.files),
            "stored_bytes": self.stored_bytes, "tag_files": list(self.tag_files),
            "encodings": list(self.encodings), "pdfa_verdict": self.pdfa_verdict,
            "stores": list(self.stores),
        }


def _read(store: ObjectStore, key: str) -> bytes:
    with store.open_read(key) as fh:
        return fh.read()


def _manifest_paths(data: bytes) -> list[str]:
    return [line.split(maxsplit=1)[1].strip()
            for line in data.decode("utf-8").splitlines() if line.strip()]


def has_derivatives(store: ObjectStore, bag_id: str) -> bool:
    """Whether the bag's payload manifest lists access derivatives (``data/web/``)."""
    manifest = _read(store, layout.bag_prefix(bag_id) + "manifest-sha256.txt")
    return any(p.startswith(layout.WEB_DIR) for p in _manifest_paths(manifest))


@dataclass(frozen=True)
class _Page:
    label: str
    hocr: str
    text: str
    alto: str


def _pages_of(mets: bytes) -> list[_Page]:
    """The pages in order, with their hOCR/text/ALTO bag paths, from the copy's METS."""
    root = etree.fromstring(mets)
    href = f"{{{XLINK_NS}}}href"
    paths = {f.get("ID"): (f.find(f"{{{METS_NS}}}FLocat").get(href) or "").removeprefix("../")  # type: ignore[union-attr]
             for f in root.iter(f"{{{METS_NS}}}file")}
    seq = root.find(f"{{{METS_NS}}}structMap[@TYPE='PHYSICAL']/{{{METS_NS}}}div")
    if seq is None:
        raise ValueError("mets.xml has no physical page sequence")
    out: list[_Page] = []
    for div in sorted(seq.findall(f"{{{METS_NS}}}div[@TYPE='page']"),
                      key=lambda d: int(d.get("ORDER") or 0)):
        files = [paths[p.get("FILEID")] for p in div.findall(f"{{{METS_NS}}}fptr")]

        def one(suffix: str, files: list[str] = files, div: etree._Element = div) -> str:
            found = [f for f in files if f.startswith(layout.TEXT_DIR) and f.endswith(suffix)]
            if len(found) != 1:
                raise ValueError(f"page {div.get('ORDERLABEL')}: no single {suffix} in mets.xml")
            return found[0]

        out.append(_Page(label=div.get("ORDERLABEL") or str(len(out) + 1),
                         hocr=one(".hocr"), text=one(".txt"), alto=one(".alto.xml")))
    return out


def _decrypt_to(store: ObjectStore, prefix: str, bag_path: str, out: Path, *,
                keyring: Keyring, wrapped: WrappedKey) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh, store.open_read(prefix + bag_path) as cipher:
        for chunk in decrypt_chunks(cipher, keyring=keyring, file_id=bag_path, wrapped=wrapped):
            fh.write(chunk)
    return out


def _prepared_pages(archival_pdf: Path, pages: Sequence[_Page], folder: Path) -> list[PageResult]:
    """The archival PDF's page images (lossless, as prepared) as :class:`PageResult` with the
    page's OCR files, ready for the derivative makers."""
    results: list[PageResult] = []
    with pikepdf.open(archival_pdf) as pdf:
        if len(pdf.pages) != len(pages):
            raise ValueError(f"the archival PDF has {len(pdf.pages)} page(s), mets.xml "
                             f"{len(pages)}")
        for number, (pdf_page, page) in enumerate(zip(pdf.pages, pages, strict=True), start=1):
            images = list(pdf_page.images.values())
            if len(images) != 1 or not isinstance(images[0], pikepdf.Stream):
                raise ValueError(f"page {page.label}: the archival PDF page holds "
                                 f"{len(images)} images, not one")
            raw = images[0]
            icc_path: Path | None = None
            space = raw.get("/ColorSpace")
            if isinstance(space, pikepdf.Array) and space[0] == pikepdf.Name.ICCBased:
                icc_path = folder / f"{number:04d}.icc"
                icc_path.write_bytes(space[1].read_bytes())
            image = pikepdf.PdfImage(raw).as_pil_image()
            path = folder / f"{number:04d}.png"
            width_pt = float(pdf_page.mediabox[2]) - float(pdf_page.mediabox[0])
            dpi = round(image.width * 72.0 / width_pt, 3)
            image.save(path, dpi=(dpi, dpi))
            hocr = folder / f"{number:04d}.hocr"
            text = folder / f"{number:04d}.txt"
            results.append(PageResult(
                page=PageRef(source=archival_pdf, frame=number - 1, label=page.label),
                image_path=path, dpi=dpi, width_px=image.width, height_px=image.height,
                text="", text_path=text, hocr_path=hocr, alto_path=folder / "unused.alto.xml",
                mean_confidence=0.0, word_count=0,
                preparation=PagePreparation(
                    orientation_checked="off", osd_confidence=None, rotation_applied=0,
                    skew_angle_deg=None, skew_corrected=False, borders_cleaned=False,
                    remarks=("page image taken from the archival PDF for derivation",)),
                icc_profile_path=icc_path,
            ))
    return results


def _encrypt_to(source: Path, out: Path, *, bag_key: BagKey, file_id: str,
                algorithms: Sequence[str]) -> BagFileRecord:
    hasher = MultiHasher(algorithms)
    out.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as plain, out.open("wb") as fh:
        for chunk in encrypt_chunks(plain, bag_key=bag_key, file_id=file_id):
            hasher.update(chunk)
            fh.write(chunk)
    return BagFileRecord(file_id, hasher.size, hasher.hexdigests())


def _put(store: ObjectStore, key: str, local: Path, record: BagFileRecord,
         algorithms: Sequence[str]) -> BagFileRecord:
    """Write ``local`` under ``key``; when an earlier, interrupted run already wrote that key,
    keep the stored object (and its digests) instead."""
    try:
        store.put_file(key, local, sha256=record.digests.get("sha256"))
        return record
    except ObjectExists:
        data = _read(store, key)
        hasher = MultiHasher(algorithms)
        hasher.update(data)
        local.write_bytes(data)
        logger.info("%s was written by an earlier run; kept", key)
        return BagFileRecord(record.path, hasher.size, hasher.hexdigests())


def derive_copy(settings: QorSettings, *, facts: register.CopyFacts, work: Path,
                on_step: Callable[[str, int, int], None] | None = None) -> DeriveResult:
    """Give one stored copy its access derivatives (see the module docstring)."""
    store = wiring.store_for_uri(settings, facts.store_uri)
    prefix = layout.bag_prefix(facts.bag_id)
    if has_derivatives(store, facts.bag_id):
        return DeriveResult(inventory_number=facts.inventory_number, bag_id=facts.bag_id,
                            store_uri=facts.store_uri, status="already derived")

    def step(name: str, done: int, total: int) -> None:
        if on_step is not None:
            on_step(name, done, total)

    keyring = wiring.keyring(settings)
    wrapped = WrappedKey(kek_id=facts.kek_id, wrapped=facts.wrapped_key)
    scratch = fresh_dir(work / safe_component(facts.bag_id))
    try:
        tag_names = _manifest_paths(_read(store, prefix + "tagmanifest-sha256.txt"))
        tag_names += [n for n in (f"tagmanifest-{a}.txt" for a in manifest_algorithms(tag_names))
                      if n not in tag_names]
        current = {name: _read(store, prefix + name) for name in tag_names}
        algorithms = manifest_algorithms(tag_names)
        payload = _manifest_paths(current["manifest-sha256.txt"])
        archival = [p for p in payload if p.startswith(layout.ACCESS_DIR) and p.endswith(".pdf")]
        if len(archival) != 1 or "metadata/mets.xml" not in current:
            raise DerivationRefused(bag_id=facts.bag_id, reason=(
                f"{len(archival)} archival PDFs, not one" if len(archival) != 1
                else "no metadata/mets.xml"))
        plain = scratch / "plain"
        pdf = _decrypt_to(store, prefix, archival[0], plain / "archival.pdf", keyring=keyring,
                          wrapped=wrapped)
        try:
            pages = _pages_of(current["metadata/mets.xml"])
            results = _prepared_pages(pdf, pages, plain)
        except (ValueError, etree.XMLSyntaxError, pikepdf.PdfError) as e:
            raise DerivationRefused(bag_id=facts.bag_id, reason=str(e)) from e
        for page, result in zip(pages, results, strict=True):
            _decrypt_to(store, prefix, page.hocr, result.hocr_path, keyring=keyring,
                        wrapped=wrapped)
        step("derive", 0, len(results))

        with wiring.register_session(settings) as session:
            record = register.get_item(session, facts.inventory_number).record
            metadata = DocumentMetadata(
                title=record.title, identifier=facts.inventory_number,
                creator="; ".join(record.authors) or None,
                date=str(record.year) if record.year else None, language=record.language)
        # Only the access settings matter here: the pages are prepared and read already.
        options = CaptureOptions(access_jpeg_quality=settings.access_jpeg_quality,
                                 access_text_pages=settings.access_text_pages)
        made = make_access_pdf(results, out=plain / "web.pdf", metadata=metadata,
                               options=options)
        report = verapdf.validate(made.path, flavour="2u")
        report.raise_for_failures()
        verdict = f"PDF/A-{report.flavour.upper()} compliant (veraPDF)"
        images = make_reading_images(results, out_dir=plain / "pages")
        step("derive", len(results), len(results))

        sources = [(made.path, layout.web_pdf_path(safe_component(facts.inventory_number)))]
        sources += [(path, layout.web_page_path(n)) for n, path in enumerate(images, start=1)]
        bag_key = keyring.open_bag_key(wrapped)
        cipher = scratch / "cipher"
        records = [_encrypt_to(src, cipher / bag_path, bag_key=bag_key, file_id=bag_path,
                               algorithms=algorithms) for src, bag_path in sources]
        targets = [store]
        replica = wiring.replica_store(settings)
        if replica is not None and replica.uri != store.uri:
            try:
                replica.head(prefix + "manifest-sha256.txt")
                targets.append(replica)
            except ObjectNotFound:  # the bag is not (yet) in the replica: nothing to amend there
                logger.warning("bag %s is not in the replica %s; left as it is", facts.bag_id,
                               replica.uri)
        total = len(records) * len(targets)
        done = 0
        for target in targets:
            kept: list[BagFileRecord] = []
            for rec in records:
                kept.append(_put(target, prefix + rec.path, cipher / rec.path, rec, algorithms))
                done += 1
                step("store", done, total)
            records = kept

        now = datetime.now(UTC)
        identified = {bag_path: identify(src) for src, bag_path in sources}
        web_pdf = records[0].path
        premis = premis_with(
            current["metadata/premis.xml"], inventory_number=facts.inventory_number,
            bag_id=facts.bag_id,
            files=[PremisFile(r.path, r.size, r.digests, _format_of(r.path),
                              pronom=identified[r.path].puid,
                              format_note=(f"{identified[r.path].name} ({identified[r.path].puid})"
                                           if identified[r.path].puid else None))
                   for r in records],
            events=[
                PremisEvent(EventType.DERIVATION, now, "success",
                            detail=(f"access derivatives made from the archival PDF's page "
                                    f"images: access PDF {web_pdf} ({verdict}; "
                                    f"{made.describe()}), {len(images)} reading image(s)"),
                            object_ids=(archival[0], *(r.path for r in records)),
                            agent_ids=("qor",)),
                PremisEvent(EventType.MESSAGE_DIGEST_CALCULATION, now, "success",
                            detail="digests of the derivatives' stored bytes, computed while "
                                   "encrypting them",
                            object_ids=tuple(r.path for r in records), agent_ids=("qor",)),
            ],
            agents=[PremisAgent(identifier="qor", name="Qor", agent_type="software",
                                version=_qor_version())],
        )
        mets = mets_with_derivatives(
            current["metadata/mets.xml"],
            web_pdf=MetsFile(web_pdf, "application/pdf", records[0].size),
            web_images=[MetsFile(r.path, "image/jpeg", r.size) for r in records[1:]])
        changed = amended_tag_files(current, records, replaced={
            "metadata/premis.xml": premis, "metadata/mets.xml": mets})
        order = sorted(changed, key=lambda n: (n.startswith(_TAG_MANIFEST), n))
        for target in targets:
            for name in order:
                target.put_new_version(prefix + name, [changed[name]],
                                       sha256=_sha256(changed[name]))

        with wiring.register_session(settings) as session:
            copy = register.get_digital_copy(session, facts.bag_id)
            register.record_derivatives(
                session, copy=copy, added_bytes=sum(r.size for r in records),
                added_files=len(records), actor=AGENT)
            register.record_copy_event(
                session, copy=copy, event_type="derivation", outcome="success",
                detail=(f"{len(records)} access derivative(s) added to the bag ({verdict}); "
                        f"{made.describe()}"), agent=AGENT)
        logger.info("derived %s: %d files", facts.bag_id, len(records))
        return DeriveResult(
            inventory_number=facts.inventory_number, bag_id=facts.bag_id,
            store_uri=facts.store_uri, status="derived", files=tuple(r.path for r in records),
            stored_bytes=sum(r.size for r in records), tag_files=tuple(order),
            encodings=tuple(e.describe() for e in made.encodings), pdfa_verdict=verdict,
            stores=tuple(t.uri for t in targets))
    finally:
        remove_tree(scratch)


def _sha256(data: bytes) -> str:
    hasher = MultiHasher(["sha256"])
    hasher.update(data)
    return hasher.hexdigests()["sha256"]


def copies_to_derive(settings: QorSettings, *, inventory_numbers: Sequence[str] = (),
                     bag_ids: Sequence[str] = (), every: bool = False,
                     ) -> list[register.CopyFacts]:
    """The copies named (latest copy of each inventory number, each bag id), or with
    ``every`` all copies in the register; in a stable order (bag id)."""
    with wiring.register_session(settings) as session:
        chosen: dict[str, register.CopyFacts] = {}
        if every:
            for copy in register.all_digital_copies(session):
                facts = register.copy_facts(copy)
                chosen[facts.bag_id] = facts
        for number in inventory_numbers:
            facts = register.copy_facts(register.find_copy(session, number))
            chosen[facts.bag_id] = facts
        for bag_id in bag_ids:
            facts = register.copy_facts(register.get_digital_copy(session, bag_id))
            chosen[facts.bag_id] = facts
    return [chosen[k] for k in sorted(chosen)]


__all__ = ["DeriveResult", "copies_to_derive", "derive_copy", "has_derivatives"]
