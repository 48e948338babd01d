"""The packaging steps of ``digitise`` as plain functions: bag the copy, store it, verify it.

No Prefect here: the flow in :mod:`flows.digitise` wraps these as tasks, and a test or another
engine can call them directly. Each takes paths and values and returns a value.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from flows import faults
from flows.capture import DocumentMetadata, PageResult
from flows.errors import StoreVerificationFailed
from flows.reporting import page_report
from integrity import layout
from integrity.bag import (
    BagFileRecord,
    BagInfo,
    BagSummary,
    MetadataContent,
    PayloadFile,
    build_bag,
)
from integrity.formats import FormatId, identifier_name, identify
from integrity.mets import MetsFile, MetsItem, MetsPage, mets_xml
from integrity.premis import (
    EventType,
    PremisAgent,
    PremisEvent,
    dublin_core_xml,
    premis_for_bag,
)
from storage import BagKey, ObjectExists, ObjectStore, encrypt_chunks

logger = logging.getLogger(__name__)


ENCRYPTION_FORMAT = "qor-aead-stream-v1"


@dataclass(frozen=True)
class StoredFile:
    """One object of a stored bag, as verified after upload."""

    bag_path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class StoredBag:
    """Where a bag went and what was verified there."""

    bag_id: str
    store_uri: str
    prefix: str
    files: tuple[StoredFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def batch_fingerprint(sources: Sequence[Path]) -> str:
    """A digest of the scan batch: every input file's bytes, in page order.

    Two runs over the same files in the same order share it, whatever the file names' paths;
    that is how a rerun is recognised (DESIGN: reruns are idempotent).
    """
    outer = hashlib.sha256()
    for path in sources:
        outer.update(bytes.fromhex(sha256_file(path)))
    return outer.hexdigest()


def safe_component(value: str) -> str:
    """``value`` reduced to characters safe in an object key and a file name."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in value)
    return cleaned.strip("._") or "item"


def web_payload(*, web_pdf: Path | None, web_pages: Sequence[Path],
                inventory_number: str) -> list[PayloadFile]:
    """The access derivatives' payload entries (``data/web/…``, see :mod:`integrity.layout`)."""
    payload: list[PayloadFile] = []
    if web_pdf is not None:
        payload.append(PayloadFile(source=web_pdf, bag_path=layout.web_pdf_path(
            safe_component(inventory_number)).removeprefix("data/")))
    for number, path in enumerate(web_pages, start=1):
        payload.append(PayloadFile(source=path,
                                   bag_path=layout.web_page_path(number).removeprefix("data/")))
    return payload


def derivatives_event(payload: Sequence[PayloadFile], when: datetime,
                      *, detail: str) -> PremisEvent:
    """PREMIS creation event of the access derivatives in ``payload`` (if any)."""
    return PremisEvent(EventType.CREATION, when, "success", detail=detail,
                       object_ids=tuple(f"data/{p.bag_path}" for p in payload
                                        if p.bag_path.startswith(f"{layout.WEB}/")),
                       agent_ids=("qor",))


def _payload(
    *, pages: Sequence[PageResult], pdf: Path, sources: Sequence[Path], inventory_number: str
) -> list[PayloadFile]:
    payload: list[PayloadFile] = []
    for index, source in enumerate(sources, start=1):
        # Masters keep the operator's file name; the number in front keeps page order and
        # makes two same-named files from different folders distinct.
        name = f"{index:04d}_{safe_component(source.name)}"
        payload.append(PayloadFile(source=source, bag_path=f"{layout.MASTERS}/{name}"))
    payload.append(
        PayloadFile(source=pdf, bag_path=f"{layout.ACCESS}/{safe_component(inventory_number)}.pdf")
    )
    for page in pages:
        stem = safe_component(page.page.label)
        txt, hocr, alto = (p.removeprefix("data/") for p in layout.page_text_paths(stem))
        payload.append(PayloadFile(source=page.text_path, bag_path=txt))
        payload.append(PayloadFile(source=page.hocr_path, bag_path=hocr))
        payload.append(PayloadFile(source=page.alto_path, bag_path=alto))
    return payload


_FORMATS = {
    ".pdf": "PDF/A-2u (encrypted: qor-aead-stream-v1)",
    ".jpg": "JPEG reading image (encrypted: qor-aead-stream-v1)",
    ".txt": "Plain text UTF-8 (encrypted: qor-aead-stream-v1)",
    ".hocr": "hOCR (encrypted: qor-aead-stream-v1)",
    ".xml": "ALTO 4 XML (encrypted: qor-aead-stream-v1)",
}


def _format_of(bag_path: str) -> str:
    suffix = Path(bag_path).suffix.lower()
    if bag_path.startswith(layout.MASTERS_DIR):
        return f"scanned page image {suffix or '(no extension)'} (encrypted: {ENCRYPTION_FORMAT})"
    return _FORMATS.get(suffix, f"{suffix} (encrypted: {ENCRYPTION_FORMAT})")


def _page_origins(pages: Sequence[PageResult]) -> str:
    """What the creation event says about PDF pages: text layers kept (not recognised again),
    born-digital pages (no image), and the remarks a person should read (XFA form, empty page).
    """
    parts: list[str] = []
    kept = [p.page.label for p in pages if p.preparation.text_source == "kept"]
    if kept:
        parts.append(f"text layer of the source PDF kept, not recognised again: {', '.join(kept)}")
    born = [p.page.label for p in pages if p.preparation.pdf_page == "born-digital"]
    if born:
        parts.append(f"born-digital page(s), no image: {', '.join(born)}")
    parts.extend(f"{p.page.label}: {r}" for p in pages for r in p.preparation.remarks)
    return "".join(f"; {x}" for x in parts)


_MIME_BY_SUFFIX = {".pdf": "application/pdf", ".txt": "text/plain", ".hocr": "text/html",
                   ".xml": "application/xml", ".tif": "image/tiff", ".tiff": "image/tiff",
                   ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                   ".jp2": "image/jp2"}


def _mets_for_bag(
    *,
    bag_id: str,
    pages: Sequence[PageResult],
    sources: Sequence[Path],
    payload: Sequence[PayloadFile],
    metadata: DocumentMetadata,
    identified: Mapping[str, FormatId],
    when: datetime,
) -> Callable[[Sequence[BagFileRecord]], bytes]:
    """``metadata/mets.xml`` of the copy, made once the payload's stored sizes are known."""

    def make(records: Sequence[BagFileRecord]) -> bytes:
        sizes = {r.path: r.size for r in records}

        def file(bag_path: str) -> MetsFile:
            path = f"data/{bag_path}"
            found = identified.get(path)
            mime = (found.mime if found is not None and found.mime
                    else _MIME_BY_SUFFIX.get(Path(bag_path).suffix.lower(),
                                             "application/octet-stream"))
            return MetsFile(path, mime, sizes[path])

        masters = [file(p.bag_path) for p in payload if p.bag_path.startswith("masters/")]
        access = next(file(p.bag_path) for p in payload if p.bag_path.startswith("access/"))
        master_of = {src: masters[i].path for i, src in enumerate(sources)}
        mets_pages: list[MetsPage] = []
        texts: dict[str, MetsFile] = {}
        web_pdf = next((file(p.bag_path) for p in payload
                        if p.bag_path.startswith(f"{layout.WEB}/") and p.bag_path.endswith(".pdf")),
                       None)
        web_images = {f"data/{p.bag_path}": file(p.bag_path) for p in payload
                      if p.bag_path.startswith(layout.WEB_PAGES_DIR.removeprefix("data/"))}
        for number, page in enumerate(pages, start=1):
            stem = safe_component(page.page.label)
            named = {k: f"text/{stem}{ext}" for k, ext in
                     (("alto", ".alto.xml"), ("hocr", ".hocr"), ("text", ".txt"))}
            for bag_path in named.values():
                texts[f"data/{bag_path}"] = file(bag_path)
            mets_pages.append(MetsPage(
                label=page.page.label, master=master_of[page.page.source],
                alto=f"data/{named['alto']}", hocr=f"data/{named['hocr']}",
                text=f"data/{named['text']}",
                web=(layout.web_page_path(number)
                     if layout.web_page_path(number) in web_images else None)))
        return mets_xml(
            bag_id=bag_id,
            item=MetsItem(inventory_number=metadata.identifier, title=metadata.title,
                          creator=metadata.creator, date=metadata.date,
                          language=metadata.language),
            masters=masters, access_pdf=access, pages=mets_pages, texts=texts,
            created=when, agent=f"Qor {_qor_version()}", encryption_format=ENCRYPTION_FORMAT,
            web_pdf=web_pdf, web_images=web_images,
        )

    return make


def package_copy(
    *,
    dest: Path,
    bag_id: str,
    pages: Sequence[PageResult],
    pdf: Path,
    sources: Sequence[Path],
    metadata: DocumentMetadata,
    version: int,
    bag_key: BagKey,
    library_name: str,
    fingerprint: str,
    pdfa_verdict: str,
    languages: str,
    confidence_gate: float = 70.0,
    web_pdf: Path | None = None,
    web_pages: Sequence[Path] = (),
    web_pdf_verdict: str | None = None,
) -> BagSummary:
    """Build the encrypted bag of one digital copy at ``dest`` and say what was written.

    Every payload file is encrypted, hashed and written in one pass; the manifests cover the
    ciphertext, so fixity is checked without keys. ``metadata/`` holds Dublin Core and PREMIS in
    clear so the copy stays findable and explainable without the keys.
    """
    now = datetime.now(UTC)
    payload = _payload(
        pages=pages, pdf=pdf, sources=sources, inventory_number=metadata.identifier
    )
    web = web_payload(web_pdf=web_pdf, web_pages=web_pages,
                      inventory_number=metadata.identifier)
    payload.extend(web)

    encrypted = 0

    def encrypt(source: BinaryIO, file_id: str) -> Iterator[bytes]:
        nonlocal encrypted
        encrypted += 1
        if encrypted == 2:  # one payload file written, the others not yet
            faults.reached("packaging")
        return encrypt_chunks(source, bag_key=bag_key, file_id=file_id)

    agent = PremisAgent(identifier="qor", name="Qor", agent_type="software",
                        version=_qor_version())
    events = [
        PremisEvent(EventType.CREATION, now, "success",
                    detail=f"{len(pages)} page(s) digitised, OCR languages {languages}"
                           + _page_origins(pages),
                    agent_ids=("qor",)),
        # One event per page: what preparation did to it and how well it read (its access
        # image in the PDF, its text, hOCR and ALTO were made from it).
        *(PremisEvent(EventType.CREATION, now, "success", detail=report.sentence(),
                      outcome_detail="below the confidence gate "
                      f"({confidence_gate:g}): marked for review" if report.below_gate else None,
                      object_ids=layout.page_text_paths(safe_component(report.label)),
                      agent_ids=("qor",))
          for report in (page_report(p, confidence_gate=confidence_gate) for p in pages)),
        PremisEvent(EventType.VALIDATION, now, "success", detail=pdfa_verdict,
                    agent_ids=("qor",)),
        *([derivatives_event(web, now, detail=(
            "access derivatives made from the prepared page images: "
            + (f"access PDF ({web_pdf_verdict}), " if web_pdf is not None else "")
            + f"{len(web_pages)} reading image(s)"))] if web else []),
        PremisEvent(EventType.ENCRYPTION, now, "success",
                    detail=f"{ENCRYPTION_FORMAT}, key-encryption key {bag_key.wrapped.kek_id}",
                    agent_ids=("qor",)),
    ]
    # Identified on the plaintext: the stored bytes are ciphertext to any identifier.
    identified = {f"data/{item.bag_path}": identify(item.source) for item in payload}
    metadata_files: dict[str, MetadataContent] = {
        "dc.xml": dublin_core_xml(
            title=metadata.title, identifier=metadata.identifier,
            creator=[metadata.creator] if metadata.creator else [],
            date_issued=metadata.date, language=[metadata.language] if metadata.language else [],
            type_="Text", format_="application/pdf",
        ),
        "premis.xml": premis_for_bag(
            inventory_number=metadata.identifier, bag_id=bag_id, format_of=_format_of,
            agent=agent, events=events, when=now, identified=identified,
            identifier=PremisAgent(identifier="fido", name=identifier_name(),
                                   agent_type="software"),
        ),
        "mets.xml": _mets_for_bag(bag_id=bag_id, pages=pages, sources=sources,
                                  payload=payload, metadata=metadata, identified=identified,
                                  when=now),
    }
    info = BagInfo(
        source_organization=library_name,
        external_identifier=metadata.identifier,
        bag_group_identifier=metadata.identifier,
        external_description=metadata.title,
        encryption_format=ENCRYPTION_FORMAT,
        key_id=bag_key.wrapped.kek_id,
        extra=(
            ("Qor-Bag-Id", bag_id),
            ("Qor-Copy-Version", str(version)),
            ("Qor-Batch-Fingerprint", fingerprint),
        ),
    )
    return build_bag(dest, payload=payload, info=info, transform=encrypt,
                     metadata_files=metadata_files)


def _qor_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qor")
    except PackageNotFoundError:
        return "source"


def _manifest_sha256(bag_dir: Path) -> dict[str, str]:
    known: dict[str, str] = {}
    for name in ("manifest-sha256.txt", "tagmanifest-sha256.txt"):
        manifest = bag_dir / name
        if manifest.is_file():
            for line in manifest.read_text(encoding="utf-8").splitlines():
                digest, _, path = line.partition(" ")
                known[path.strip()] = digest.lower()
    return known


def store_bag(
    bag_dir: Path,
    *,
    bag_id: str,
    store: ObjectStore,
    on_file: Callable[[int, int], None] | None = None,
) -> StoredBag:
    """Upload every file of ``bag_dir`` under ``bags/<bag_id>/`` and verify each object.

    Writes are create-only and checked against the manifests' sha256 (the store refuses an
    object whose bytes do not match). Each object is then read back through ``head`` and its
    recorded size and checksum compared. Nothing here makes the bag count as stored: that
    happens when the register records it, after this returns.

    Resumable: an object already present with the same size and sha256 (left by an attempt
    that died half-way, e.g. the store went away) is kept, not written again; one that differs
    is an error, never overwritten.
    """
    known = _manifest_sha256(bag_dir)
    files = sorted(p for p in bag_dir.rglob("*") if p.is_file())
    prefix = layout.bag_prefix(bag_id).rstrip("/")
    stored: list[StoredFile] = []
    for done, path in enumerate(files, start=1):
        rel = path.relative_to(bag_dir).as_posix()
        digest = known.get(rel) or sha256_file(path)
        key = f"{prefix}/{rel}"
        try:
            info = store.put_file(key, path, sha256=digest)
        except ObjectExists:
            info = store.head(key)  # compared below like a fresh write
        size = path.stat().st_size
        if info.size != size or (info.sha256 is not None and info.sha256 != digest):
            raise StoreVerificationFailed(
                key=key, expected=f"{size} bytes, sha256 {digest}",
                found=f"{info.size} bytes, sha256 {info.sha256}",
            )
        stored.append(StoredFile(bag_path=rel, size=size, sha256=digest))
        if on_file is not None:
            on_file(done, len(files))
    for item in stored:
        head = store.head(f"{prefix}/{item.bag_path}")
        if head.size != item.size or (head.sha256 is not None and head.sha256 != item.sha256):
            raise StoreVerificationFailed(
                key=f"{prefix}/{item.bag_path}",
                expected=f"{item.size} bytes, sha256 {item.sha256}",
                found=f"{head.size} bytes, sha256 {head.sha256}",
            )
    logger.info("stored bag %s in %s (%d objects)", bag_id, store.uri, len(stored))
    return StoredBag(bag_id=bag_id, store_uri=store.uri, prefix=prefix, files=tuple(stored))


def remove_tree(path: Path) -> None:
    """Remove a scratch folder; never fails the run over leftover scratch."""
    shutil.rmtree(path, ignore_errors=True)


def fresh_dir(path: Path) -> Path:
    """Create ``path`` (and parents) private to this user, emptying any leftover of a crash."""
    remove_tree(path)
    path.mkdir(parents=True, mode=0o700)
    path.chmod(0o700)
    return path
