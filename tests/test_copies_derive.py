"""Issue 16: ``qor copies derive`` gives copies stored without access derivatives their access
PDF and reading images — encrypted into the bag as new objects, manifests, PREMIS and METS as
new versions (the old ones kept), fixity intact — and then the e-library serves them.

The copy without derivatives is made by ``qor digitise`` itself with
``QOR_ACCESS_DERIVATIVES=false``: the same packaging call (no ``web_pdf``, no reading images)
that every copy went through before derivatives existed. Everything runs as an operator runs
it: the CLI as a subprocess, on a file store and on the S3 server (versitygw).
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pytest
from fastapi.testclient import TestClient
from lxml import etree

from flows.capture.samples import SamplePage
from integrity import layout
from qor import wiring
from qor.settings import QorSettings, load_settings
from tests.conftest import qor_environment
from tests.test_cli import _env, qor

PREMIS = "http://www.loc.gov/premis/v3"
METS = "http://www.loc.gov/METS/"
XLINK = "http://www.w3.org/1999/xlink"
INVENTORY = "KZ-000777"


@dataclass(frozen=True)
class DerivedCopy:
    data_dir: Path
    env: dict[str, str]
    bag_id: str
    before: dict[str, bytes]
    derive: dict[str, object]
    again: dict[str, object]
    again_text: str


def _settings(env: dict[str, str]) -> QorSettings:
    """The settings the CLI subprocesses ran with (``env``'s ``QOR_*``), in this process."""
    extra = {k.removeprefix("QOR_").lower(): v for k, v in env.items()
             if k.startswith("QOR_") and not k.startswith(("QOR_TEST_", "QOR_VERAPDF"))
             and k != "QOR_DATA_DIR"}
    with qor_environment(Path(env["QOR_DATA_DIR"]), **extra):
        return load_settings()


def _read(env: dict[str, str], key: str) -> bytes:
    with wiring.primary_store(_settings(env)).open_read(key) as fh:
        return fh.read()


def _manifest(data: bytes) -> dict[str, str]:
    return {line.split(maxsplit=1)[1].strip(): line.split()[0]
            for line in data.decode("utf-8").splitlines() if line.strip()}


def _make(env: dict[str, str], data_dir: Path, page: SamplePage) -> DerivedCopy:
    qor("items", "add", INVENTORY, "--title", "Абай жолы", "--year", "1942", env=env)
    made = json.loads(qor("digitise", str(page.path), "--inventory", INVENTORY, "--json",
                          env={**env, "QOR_ACCESS_DERIVATIVES": "false"}).stdout)
    bag_id = str(made["bag_id"])
    prefix = layout.bag_prefix(bag_id)
    names = ("manifest-sha256.txt", "manifest-sha512.txt", "tagmanifest-sha256.txt",
             "bag-info.txt", "metadata/premis.xml", "metadata/mets.xml")
    before = {n: _read(env, prefix + n) for n in names}
    derived = qor("copies", "derive", INVENTORY, "--json", env=env)
    again = qor("copies", "derive", "--bag", bag_id, env=env)
    again_json = json.loads(qor("copies", "derive", "--all", "--json", env=env).stdout)
    return DerivedCopy(data_dir=data_dir, env=env, bag_id=bag_id, before=before,
                       derive=json.loads(derived.stdout)[0], again=again_json[0],
                       again_text=again.stdout)


@pytest.fixture(scope="module", params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def derived(request: pytest.FixtureRequest, prefect_server: None,
            sample_pages: list[SamplePage], s3_settings: dict[str, str],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[DerivedCopy]:
    data_dir = tmp_path_factory.mktemp(f"derive-{request.param}") / "qor"
    if request.param == "file":
        yield _make(_env(data_dir), data_dir, sample_pages[0])
        return
    from storage import S3Store
    from storage.s3options import S3Options

    bucket = f"qor-dv-{uuid.uuid4().hex[:10]}"
    options = S3Options(endpoint_url=s3_settings["s3_endpoint_url"],
                        access_key=s3_settings["s3_access_key"],
                        secret_key=s3_settings["s3_secret_key"],
                        region=s3_settings["s3_region"], addressing_style="path")
    S3Store(bucket=bucket, options=options).create_bucket(object_lock=True)  # versioned
    env = _env(data_dir, QOR_STORE_URI=f"s3://{bucket}",
               **{f"QOR_{k.upper()}": v for k, v in s3_settings.items()})
    yield _make(env, data_dir, sample_pages[0])


def test_derive_adds_the_derivatives_and_a_second_run_says_already_derived(
        derived: DerivedCopy) -> None:
    web_pdf = layout.web_pdf_path(INVENTORY)
    assert not any(p.startswith(layout.WEB_DIR)
                   for p in _manifest(derived.before["manifest-sha256.txt"]))
    result = derived.derive
    assert result["status"] == "derived" and result["bag_id"] == derived.bag_id
    assert result["files"] == [web_pdf, layout.web_page_path(1)]
    assert "compliant" in str(result["pdfa_verdict"])
    (choice,) = result["encodings"]  # type: ignore[misc]
    assert choice.startswith("text page") and "CCITT G4, 300 dpi" in choice
    assert derived.again["status"] == "already derived"
    assert f"{INVENTORY} ({derived.bag_id}): already derived" in derived.again_text
    prefix = layout.bag_prefix(derived.bag_id)
    manifest = _manifest(_read(derived.env, prefix + "manifest-sha256.txt"))
    old = _manifest(derived.before["manifest-sha256.txt"])
    assert {k: v for k, v in manifest.items() if k in old} == old  # nothing else changed
    assert set(manifest) - set(old) == {web_pdf, layout.web_page_path(1)}
    for path in (web_pdf, layout.web_page_path(1)):
        stored = _read(derived.env, prefix + path)
        assert not stored.startswith((b"%PDF", b"\xff\xd8"))  # encrypted
        import hashlib

        assert hashlib.sha256(stored).hexdigest() == manifest[path]
    info = _read(derived.env, prefix + "bag-info.txt").decode()
    octets, count = info.split("Payload-Oxum: ")[1].split()[0].split(".")
    old_octets, old_count = derived.before["bag-info.txt"].decode().split(
        "Payload-Oxum: ")[1].split()[0].split(".")
    assert int(count) == int(old_count) + 2
    assert int(octets) == int(old_octets) + int(str(result["stored_bytes"]))


def test_the_old_versions_of_the_tag_files_are_kept(derived: DerivedCopy) -> None:
    store = wiring.primary_store(_settings(derived.env))
    prefix = layout.bag_prefix(derived.bag_id)
    for name in ("manifest-sha256.txt", "metadata/premis.xml", "tagmanifest-sha256.txt"):
        versions = store.list_versions(prefix + name)
        assert len(versions) == 2, name
        with store.open_read(prefix + name, version_id=versions[-1].version_id) as fh:
            assert fh.read() == derived.before[name]


def test_deep_and_quick_fixity_audits_pass_after_derive(derived: DerivedCopy) -> None:
    for mode in ("deep", "quick"):
        proc = qor("fixity", "audit", "--mode", mode, "--bag", derived.bag_id, "--json",
                   env=derived.env, check=False)
        assert proc.returncode == 0, proc.stderr
        run = json.loads(proc.stdout)
        (bag,) = run["bags"]
        assert bag["bag_id"] == derived.bag_id and bag["failures"] == []


def test_premis_records_the_derivation_and_the_new_files(derived: DerivedCopy) -> None:
    prefix = layout.bag_prefix(derived.bag_id)
    web_pdf = layout.web_pdf_path(INVENTORY)
    premis = etree.fromstring(_read(derived.env, prefix + "metadata/premis.xml"))
    ns = {"p": PREMIS}
    (event,) = [e for e in premis.iterfind("p:event", ns)
                if e.findtext("p:eventType", namespaces=ns) == "derivation"]
    assert event.find("p:eventType", ns).get("valueURI") == (  # type: ignore[union-attr]
        "http://id.loc.gov/vocabulary/preservation/eventType/der")
    assert event.findtext("p:eventOutcomeInformation/p:eventOutcome", namespaces=ns) == "success"
    linked = [e.findtext("p:linkingObjectIdentifierValue", namespaces=ns)
              for e in event.iterfind("p:linkingObjectIdentifier", ns)]
    assert linked == [f"data/access/{INVENTORY}.pdf", web_pdf, layout.web_page_path(1)]
    detail = event.findtext("p:eventDetailInformation/p:eventDetail", namespaces=ns) or ""
    assert "PDF/A-2U compliant (veraPDF)" in detail and "CCITT G4" in detail
    manifest = _manifest(_read(derived.env, prefix + "manifest-sha256.txt"))
    objects = {o.findtext("p:objectIdentifier/p:objectIdentifierValue", namespaces=ns): o
               for o in premis.iterfind("p:object", ns)}
    for path in (web_pdf, layout.web_page_path(1)):
        obj = objects[path]
        chars = obj.find("p:objectCharacteristics", ns)
        assert chars is not None
        stored = _read(derived.env, prefix + path)
        assert chars.findtext("p:size", namespaces=ns) == str(len(stored))
        digests = {f.findtext("p:messageDigestAlgorithm", namespaces=ns):
                   f.findtext("p:messageDigest", namespaces=ns)
                   for f in chars.iterfind("p:fixity", ns)}
        assert digests["SHA-256"] == manifest[path]
        assert chars.findtext("p:format/p:formatRegistry/p:formatRegistryKey", namespaces=ns)
    # every earlier object and event is still there
    before = etree.fromstring(derived.before["metadata/premis.xml"])
    assert len(premis.findall("p:object", ns)) == len(before.findall("p:object", ns)) + 2
    assert len(premis.findall("p:event", ns)) == len(before.findall("p:event", ns)) + 2
    shown = json.loads(qor("copies", "show", INVENTORY, "--json", env=derived.env).stdout)
    (registered,) = [e for e in shown[0]["events"] if e["event_type"] == "derivation"]
    assert registered["outcome"] == "success" and "CCITT G4" in registered["detail"]


def test_mets_lists_the_derivatives_and_stays_valid(derived: DerivedCopy) -> None:
    from integrity.mets import validate_mets
    from tests.integrity.test_mets import xlink_schema

    prefix = layout.bag_prefix(derived.bag_id)
    data = _read(derived.env, prefix + "metadata/mets.xml")
    validate_mets(data, xlink=xlink_schema())
    mets = etree.fromstring(data)
    ns = {"m": METS}
    groups = {g.get("USE"): g for g in mets.iterfind("m:fileSec/m:fileGrp", ns)}
    (pdf,) = groups["ACCESS"].findall("m:file", ns)
    (image,) = groups["WEB"].findall("m:file", ns)
    for el, path, mime in ((pdf, layout.web_pdf_path(INVENTORY), "application/pdf"),
                           (image, layout.web_page_path(1), "image/jpeg")):
        assert el.get("MIMETYPE") == mime
        assert el.get("SIZE") == str(len(_read(derived.env, prefix + path)))
        assert el.find("m:FLocat", ns).get(f"{{{XLINK}}}href") == f"../{path}"  # type: ignore[union-attr]
        assert el.find("m:transformFile", ns).get("TRANSFORMTYPE") == "decryption"  # type: ignore[union-attr]
    seq = mets.find("m:structMap[@TYPE='PHYSICAL']/m:div", ns)
    assert seq is not None
    assert pdf.get("ID") in [f.get("FILEID") for f in seq.findall("m:fptr", ns)]
    (page,) = seq.findall("m:div[@TYPE='page']", ns)
    assert image.get("ID") in [f.get("FILEID") for f in page.findall("m:fptr", ns)]


def test_the_elibrary_serves_iiif_and_the_access_pdf_after_derive(derived: DerivedCopy) -> None:
    from catalog_sync import db
    from elibrary.config import ElibraryConfig, parse_networks
    from elibrary.library import set_rights
    from elibrary.models import Rights
    from elibrary.web import create_app
    from tests.elibrary.iiif_schemas import validate_info

    settings = _settings(derived.env)
    sessions = db.session_factory(wiring.register_engine(settings))
    with sessions() as s, s.begin():
        set_rights(s, bag_id=derived.bag_id, rights=Rights.OPEN, actor="test")
    config = ElibraryConfig(secret_key=b"derive test secret key, long enough for HMAC!",
                            library_name="Test", base_url="http://localhost",
                            reading_room_networks=parse_networks("10.9.0.0/16", name="t"))
    app = create_app(config, sessions=sessions,
                     open_store=lambda uri: wiring.store_for_uri(settings, uri),
                     keyring=wiring.keyring(settings), flush_seconds=0.2)
    with TestClient(app) as http:
        info = http.get(f"/iiif/3/{derived.bag_id}~1/info.json")
        assert info.status_code == 200
        validate_info(info.json())
        assert max(info.json()["width"], info.json()["height"]) <= 2400
        tile = http.get(f"/iiif/3/{derived.bag_id}~1/0,0,512,512/512,/0/default.jpg")
        assert tile.status_code == 200 and tile.content.startswith(b"\xff\xd8")
        pdf = http.get(f"/copies/{derived.bag_id}/file.pdf")
        assert pdf.status_code == 200
    with pikepdf.open(io.BytesIO(pdf.content)) as doc:  # the access PDF, not the archival one
        (raw,) = doc.pages[0].get_images().values()
        assert raw.Filter == pikepdf.Name.CCITTFaxDecode
    assert len(pdf.content) < len(_read(derived.env, layout.bag_prefix(derived.bag_id)
                                        + f"data/access/{INVENTORY}.pdf"))



def test_a_derive_interrupted_by_the_store_resumes_and_keeps_what_it_stored(
        prefect_server: None, sample_pages: list[SamplePage], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The store goes away after the new objects were written and before the tag files got
    their new versions (fault at the store seam): the bag's manifests are untouched, the
    copy is not marked derived; the next run finishes it with the objects already stored."""
    from catalog_sync import register
    from flows.derivation import derive_copy
    from storage import FileStore, StoreUnavailable

    data_dir = tmp_path / "qor"
    env = _env(data_dir)
    qor("items", "add", INVENTORY, "--title", "Абай жолы", env=env)
    made = json.loads(qor("digitise", str(sample_pages[1].path), "--inventory", INVENTORY,
                          "--json", env={**env, "QOR_ACCESS_DERIVATIVES": "false"}).stdout)
    bag_id = str(made["bag_id"])
    prefix = layout.bag_prefix(bag_id)
    settings = _settings(env)
    with wiring.register_session(settings) as session:
        facts = register.copy_facts(register.get_digital_copy(session, bag_id))
    manifest_before = _read(env, prefix + "manifest-sha256.txt")

    def store_gone(self: FileStore, key: str, *args: object, **kwargs: object) -> object:
        raise StoreUnavailable(self.uri, f"new version of {key}", "test: the store went away")

    with monkeypatch.context() as mp:
        mp.setattr(FileStore, "put_new_version", store_gone)
        with pytest.raises(StoreUnavailable) as failed:
            derive_copy(settings, facts=facts, work=tmp_path / "work")
    assert failed.value.retryable and failed.value.operation.startswith("new version of")
    assert _read(env, prefix + "manifest-sha256.txt") == manifest_before
    store = wiring.primary_store(settings)
    orphans = [i.key for i in store.list(prefix + layout.WEB_DIR)]
    assert prefix + layout.web_pdf_path(INVENTORY) in orphans
    stored_pdf = _read(env, prefix + layout.web_pdf_path(INVENTORY))

    result = json.loads(qor("copies", "derive", INVENTORY, "--json", env=env).stdout)[0]
    assert result["status"] == "derived"
    assert _read(env, prefix + layout.web_pdf_path(INVENTORY)) == stored_pdf  # kept as stored
    proc = qor("fixity", "audit", "--mode", "deep", "--bag", bag_id, "--json", env=env,
               check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["bags"][0]["failures"] == []
