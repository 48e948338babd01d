"""The digitise flow end to end, on embedded defaults and on PostgreSQL + S3 (issue 2).

Real Tesseract, real veraPDF, a real Prefect server, the real S3 server and PostgreSQL: nothing
here is mocked. The expensive run on embedded defaults is made once per session and several
tests read what it left.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bagit
import pytest
from pypdf import PdfReader

from catalog_sync import register
from catalog_sync.errors import ItemNotFound
from flows._exec import verapdf
from flows.capture.samples import KAZAKH_SENTENCE, RUSSIAN_SENTENCE, SamplePage, normalise_text
from flows.digitise import run_digitise
from flows.errors import CopyAlreadyExists, LanguagesUnavailable, PageRejected
from flows.export import export_copy
from flows.reporting import DigitiseSummary
from qor import wiring
from qor.settings import load_settings
from storage.errors import DecryptionFailed
from tests.conftest import make_s3_client, qor_environment

INVENTORY = "KZ-000777"
KAZAKH_LETTERS = "әғқңөұүһі"


@dataclass(frozen=True)
class StoredCopy:
    data_dir: Path
    summary: DigitiseSummary

    @property
    def bag_dir(self) -> Path:
        return self.data_dir / "store" / "bags" / self.summary.bag_id


def _add_item(inventory: str, title: str = "Қор туралы") -> None:
    with wiring.register_session(load_settings()) as session:
        register.add_item(session, inventory_number=inventory, title=title, actor="tests")


def _digitise(pages: Sequence[Path], inventory: str = INVENTORY, **kw: object) -> DigitiseSummary:
    return run_digitise(list(pages), inventory_number=inventory, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def embedded_copy(
    prefect_server: None, sample_pages: list[SamplePage], tmp_path_factory: pytest.TempPathFactory
) -> StoredCopy:
    """One digitise run of the sample scans on embedded defaults (SQLite, FileStore, key file)."""
    data_dir = tmp_path_factory.mktemp("embedded") / "qor"
    with qor_environment(data_dir):
        _add_item(INVENTORY)
        summary = _digitise([p.path for p in sample_pages])
    return StoredCopy(data_dir=data_dir, summary=summary)


def _extract_text(pdf: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(pdf).pages)


def _page_words(samples: Sequence[SamplePage], count: int = 12) -> list[str]:
    words = {w.strip(".,;:()«»") for s in samples for w in s.text.split()}
    return sorted((w for w in words if len(w) >= 7), key=len, reverse=True)[:count]


def test_digitising_the_samples_creates_exactly_one_bag(embedded_copy: StoredCopy) -> None:
    bags = sorted(p.name for p in (embedded_copy.data_dir / "store" / "bags").iterdir())
    assert bags == [embedded_copy.summary.bag_id]
    assert embedded_copy.summary.status == "created"
    assert embedded_copy.summary.pages == 3
    assert set(embedded_copy.summary.stage_seconds) >= {"check", "ocr", "pdfa", "package",
                                                        "store", "register"}


def test_stored_bag_validates_with_bagit_python(embedded_copy: StoredCopy) -> None:
    bag = bagit.Bag(str(embedded_copy.bag_dir))
    bag.validate(fast=False)  # raises BagValidationError on any problem
    assert bag.info["External-Identifier"] == INVENTORY
    assert "sha256" in bag.algorithms and "sha512" in bag.algorithms


def test_decrypted_pdf_is_pdfa_and_keeps_the_kazakh_text(
    embedded_copy: StoredCopy, tmp_path: Path
) -> None:
    with qor_environment(embedded_copy.data_dir):
        written = export_copy(load_settings(), inventory_number=INVENTORY, dest=tmp_path / "out")
    pdfs = [p for p in written if p.suffix == ".pdf"]
    assert len(pdfs) == 1
    report = verapdf.validate(pdfs[0], flavour="2u")
    assert report.compliant, report.failures
    text = _extract_text(pdfs[0])
    assert normalise_text(KAZAKH_SENTENCE) in normalise_text(text)
    for letter in KAZAKH_LETTERS:
        assert letter in text.lower(), f"{letter!r} lost in the PDF text layer"
    texts = [p for p in written if p.name.endswith(".txt")]
    assert len(texts) == 3


def test_register_links_the_copy_to_the_inventory_number(embedded_copy: StoredCopy) -> None:
    with qor_environment(embedded_copy.data_dir), \
            wiring.register_session(load_settings()) as session:
        copies = register.digital_copies(session, INVENTORY)
        facts = [register.copy_facts(c) for c in copies]
    assert [(f.bag_id, f.version) for f in facts] == [(embedded_copy.summary.bag_id, 1)]
    assert facts[0].store_uri == embedded_copy.summary.store_uri
    assert facts[0].page_count == 3


def test_a_digitised_copy_is_found_by_its_ocr_text_in_the_e_library(
    embedded_copy: StoredCopy,
) -> None:
    """R6: the register step indexes the copy's OCR text for the e-library's search, so the
    Kazakh sentence on page 1 finds it (upper case folds to the text's lower case)."""
    from catalog_sync.models import DigitalCopy
    from elibrary.models import Rights
    from elibrary.textindex import search

    with qor_environment(embedded_copy.data_dir), \
            wiring.register_session(load_settings()) as session:
        # Copies enter with the default rights (readers): search as a signed-in reader sees.
        result = search(session, "ШАҺАРДАҒЫ ОҚЫРМАНДАР",
                        readable={Rights.OPEN, Rights.READERS})
        copy_id = session.query(DigitalCopy.id).filter_by(
            bag_id=embedded_copy.summary.bag_id).scalar()
    assert [(h.copy_id, h.page) for h in result.hits] == [(copy_id, 1)]


def test_no_plaintext_page_text_in_any_stored_object(
    embedded_copy: StoredCopy, sample_pages: list[SamplePage]
) -> None:
    needles = [KAZAKH_SENTENCE, RUSSIAN_SENTENCE, *_page_words(sample_pages)]
    encoded = [n.encode("utf-8") for n in needles] + [n.encode("utf-16-be") for n in needles]
    objects = [p for p in embedded_copy.bag_dir.rglob("*") if p.is_file()]
    assert len(objects) > 10
    for obj in objects:
        data = obj.read_bytes()
        where = obj.relative_to(embedded_copy.bag_dir)
        for needle in encoded:
            assert needle not in data, f"plaintext found in {where}"
        if obj.relative_to(embedded_copy.bag_dir).parts[0] == "data":
            assert b"%PDF" not in data and b"<alto" not in data and b"ocrx_word" not in data


def test_prefect_result_storage_holds_no_page_text(
    embedded_copy: StoredCopy, sample_pages: list[SamplePage], prefect_results_dir: Path
) -> None:
    """OCR results persisted for resumption live outside the encrypted depository (R13): they
    must not carry the pages' text."""
    import base64
    import json

    results = [p for p in prefect_results_dir.rglob("*") if p.is_file()]
    assert len(results) >= len(sample_pages), "the OCR task results were not persisted"
    needles = [w.encode("utf-8") for w in _page_words(sample_pages)]
    pickled_pages = 0
    for result in results:
        record = json.loads(result.read_bytes())
        payload = base64.b64decode(record["result"])  # cloudpickle bytes: str kept as UTF-8
        pickled_pages += b"PageResult" in payload
        assert not any(n in payload for n in needles), f"page text persisted in {result}"
    assert pickled_pages >= len(sample_pages)


def test_rerun_of_the_same_batch_reports_the_existing_copy(
    embedded_copy: StoredCopy, sample_pages: list[SamplePage]
) -> None:
    with qor_environment(embedded_copy.data_dir):
        again = _digitise([p.path for p in sample_pages])
    assert again.status == "existing"
    assert again.bag_id == embedded_copy.summary.bag_id
    bags = list((embedded_copy.data_dir / "store" / "bags").iterdir())
    assert len(bags) == 1


def test_another_batch_for_a_digitised_item_is_refused_without_new_version(
    embedded_copy: StoredCopy, sample_pages: list[SamplePage]
) -> None:
    with qor_environment(embedded_copy.data_dir), pytest.raises(CopyAlreadyExists) as err:
        _digitise([sample_pages[0].path])
    assert err.value.inventory_number == INVENTORY
    assert err.value.version == 1
    assert len(list((embedded_copy.data_dir / "store" / "bags").iterdir())) == 1


def test_new_version_flag_stores_a_second_version(
    prefect_server: None, sample_pages: list[SamplePage], tmp_path: Path
) -> None:
    with qor_environment(tmp_path / "qor"):
        _add_item("KZ-000888")
        first = _digitise([sample_pages[1].path], inventory="KZ-000888")
        second = _digitise([sample_pages[1].path], inventory="KZ-000888", new_version=True)
        with wiring.register_session(load_settings()) as session:
            versions = [register.copy_facts(c).version
                        for c in register.digital_copies(session, "KZ-000888")]
    assert (first.version, second.version) == (1, 2)
    assert first.bag_id != second.bag_id
    assert versions == [1, 2]


def test_export_refuses_and_writes_nothing_when_a_stored_byte_is_flipped(
    embedded_copy: StoredCopy, tmp_path: Path
) -> None:
    pdf_object = next((embedded_copy.bag_dir / "data" / "access").glob("*.pdf"))
    original = pdf_object.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x01  # behind the store's back, as bit rot would
    out = tmp_path / "out"
    pdf_object.chmod(0o644)
    try:
        pdf_object.write_bytes(bytes(damaged))
        with qor_environment(embedded_copy.data_dir), pytest.raises(DecryptionFailed) as err:
            export_copy(load_settings(), inventory_number=INVENTORY, dest=out)
    finally:
        pdf_object.write_bytes(original)
        pdf_object.chmod(0o444)
    assert err.value.file_id.startswith("data/access/")
    assert not out.exists()


def test_a_page_that_is_not_an_image_stops_the_flow_before_anything_is_stored(
    prefect_server: None, sample_pages: list[SamplePage], tmp_path: Path
) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(sample_pages[0].path, batch / "0001.png")
    (batch / "0002.png").write_bytes(sample_pages[1].path.read_bytes()[:2000])  # truncated
    data_dir = tmp_path / "qor"
    with qor_environment(data_dir):
        _add_item(INVENTORY)
        with pytest.raises(PageRejected) as err:
            _digitise([batch])
        with wiring.register_session(load_settings()) as session:
            assert register.digital_copies(session, INVENTORY) == []
    assert err.value.path.name == "0002.png"
    assert "0002.png" in str(err.value)
    store = data_dir / "store"
    assert not store.exists() or not any(store.rglob("*.pdf"))
    assert not (store / "bags").exists() or not any((store / "bags").iterdir())


def test_an_unknown_inventory_number_is_refused_before_anything_is_stored(
    prefect_server: None, sample_pages: list[SamplePage], tmp_path: Path
) -> None:
    data_dir = tmp_path / "qor"
    with qor_environment(data_dir), pytest.raises(ItemNotFound) as err:
        _digitise([sample_pages[0].path], inventory="KZ-404404")
    assert err.value.inventory_number == "KZ-404404"
    bags = data_dir / "store" / "bags"
    assert not bags.exists() or not any(bags.iterdir())


def test_digitise_on_postgresql_and_the_s3_server(
    prefect_server: None,
    sample_pages: list[SamplePage],
    postgres_database_url: str,
    s3_bucket: str,
    s3_settings: dict[str, str],
    tmp_path: Path,
) -> None:
    with qor_environment(tmp_path / "qor", database_url=postgres_database_url,
                         store_uri=f"s3://{s3_bucket}/depository", **s3_settings):
        _add_item(INVENTORY)
        summary = _digitise([p.path for p in sample_pages])
        written = export_copy(load_settings(), inventory_number=INVENTORY, dest=tmp_path / "out")
        with wiring.register_session(load_settings()) as session:
            facts = [register.copy_facts(c) for c in register.digital_copies(session, INVENTORY)]
    assert [f.bag_id for f in facts] == [summary.bag_id]
    assert facts[0].store_uri.rstrip("/") == f"s3://{s3_bucket}/depository"

    # Fetch the bag's objects from the server and validate them as a bag.
    client = make_s3_client(s3_settings)
    prefix = f"depository/bags/{summary.bag_id}/"
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=s3_bucket, Prefix="depository/bags/") for o in page.get("Contents", [])]
    assert keys and all(k.startswith(prefix) for k in keys)  # exactly one bag
    local = tmp_path / "fetched"
    for key in keys:
        target = local / key.removeprefix(prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(s3_bucket, key, str(target))
    bagit.Bag(str(local)).validate(fast=False)

    pdf = next(p for p in written if p.suffix == ".pdf")
    assert normalise_text(KAZAKH_SENTENCE) in normalise_text(_extract_text(pdf))


def test_a_configured_replica_receives_a_verified_copy_of_the_bag(
    prefect_server: None,
    sample_pages: list[SamplePage],
    s3_bucket: str,
    s3_settings: dict[str, str],
    tmp_path: Path,
) -> None:
    """The flow copies each verified bag to the replica store (S3 here) and verifies it there."""
    with qor_environment(tmp_path / "qor", replica_store_uri=f"s3://{s3_bucket}/replica",
                         **s3_settings):
        _add_item("KZ-000999")
        summary = _digitise([sample_pages[2].path], inventory="KZ-000999")
        with wiring.register_session(load_settings()) as session:
            events = register.copy_events(session, summary.bag_id)
    primary = tmp_path / "qor" / "store" / "bags" / summary.bag_id
    local = {p.relative_to(primary).as_posix(): p.read_bytes()
             for p in primary.rglob("*") if p.is_file()}
    client = make_s3_client(s3_settings)
    prefix = f"replica/bags/{summary.bag_id}/"
    remote = {o["Key"].removeprefix(prefix): client.get_object(Bucket=s3_bucket,
                                                                Key=o["Key"])["Body"].read()
              for page in client.get_paginator("list_objects_v2").paginate(
                  Bucket=s3_bucket, Prefix=prefix) for o in page.get("Contents", [])}
    assert remote == local  # byte for byte: the same ciphertext, manifests and tags
    replications = [e for e in events if e.event_type == "replication"]
    assert len(replications) == 1 and replications[0].outcome == "success"
    assert f"s3://{s3_bucket}/replica" in replications[0].detail


def test_item_language_chooses_the_ocr_models_and_the_summary_shows_each_page(
    prefect_server: None, sample_pages: list[SamplePage], tmp_path: Path
) -> None:
    # A Russian item is read with the Russian model alone (no eng look-alikes); a batch may
    # still say otherwise. Each page's choices reach the summary (and so --json).
    with qor_environment(tmp_path / "qor"):
        with wiring.register_session(load_settings()) as session:
            register.add_item(session, inventory_number="KZ-000999", title="Акт", actor="tests",
                              language="ru")
        summary = _digitise([sample_pages[1].path], inventory="KZ-000999")
        with pytest.raises(LanguagesUnavailable, match="no model xyz"):
            _digitise([sample_pages[1].path], inventory="KZ-000999", new_version=True,
                      languages="rus+xyz")
    choices = summary.as_dict()["page_choices"]
    assert [c["label"] for c in choices] == [sample_pages[1].path.stem]
    assert choices[0]["languages"] == "rus"
    assert choices[0]["segmentation"] == "page"
    assert choices[0]["preparation"] == "none"
    assert choices[0]["script_corrections"] >= 0


def test_the_bag_carries_access_derivatives_beside_the_lossless_masters(
    embedded_copy: StoredCopy, tmp_path: Path
) -> None:
    """Issue 16: an access PDF (same text layer, JPEG pages, PDF/A-2u, ≤ 300 KB a page) and
    one reading image per page (long side ≤ 2400 px), encrypted, in the manifests and PREMIS."""
    import io

    from PIL import Image

    from integrity import layout
    from integrity.validate import problems
    from storage import WrappedKey, decrypt_chunks

    bag = embedded_copy.bag_dir
    web_pdf = layout.web_pdf_path(INVENTORY)
    pages = [layout.web_page_path(n) for n in (1, 2, 3)]
    manifest = (bag / "manifest-sha256.txt").read_text("utf-8")
    for path in (web_pdf, *pages):
        assert f"  {path}\n" in manifest
        assert not (bag / path).read_bytes().startswith((b"%PDF", b"\xff\xd8"))  # encrypted
    premis = (bag / "metadata" / "premis.xml").read_text("utf-8")
    assert "access derivatives made" in premis and web_pdf in premis
    with qor_environment(embedded_copy.data_dir):
        settings = load_settings()
        keyring = wiring.keyring(settings)
        with wiring.register_session(settings) as session:
            facts = register.copy_facts(register.find_copy(session, INVENTORY))
        wrapped = WrappedKey(kek_id=facts.kek_id, wrapped=facts.wrapped_key)

        def plain(path: str) -> bytes:
            with (bag / path).open("rb") as fh:
                return b"".join(decrypt_chunks(fh, keyring=keyring, file_id=path,
                                               wrapped=wrapped))

        pdf = tmp_path / "web.pdf"
        pdf.write_bytes(plain(web_pdf))
        archival = len(plain(f"{layout.ACCESS_DIR}{INVENTORY}.pdf"))
        for path in pages:
            with Image.open(io.BytesIO(plain(path))) as im:
                assert im.format == "JPEG" and max(im.size) <= 2400
    assert verapdf.validate(pdf, flavour="2u").compliant
    assert pdf.stat().st_size <= 300_000 * 3
    assert pdf.stat().st_size < archival
    assert normalise_text(KAZAKH_SENTENCE) in normalise_text(_extract_text(pdf))
    assert problems(bag) == []  # the deep fixity check covers the derivatives
