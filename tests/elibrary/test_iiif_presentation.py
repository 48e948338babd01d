"""IIIF Presentation API 3.0: a manifest per copy (kk/ru/en labels, register metadata, rights,
thumbnails, canvases sized from the reading images, Image API services, search and auth
services, the access PDF where a download is allowed), a collection per fund, linked from the
record page and OAI-PMH; validated against the IIIF Presentation 3 JSON schema."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree
from PIL import Image

from elibrary.iiif_presentation import MAIN_FUND, RIGHTS_STATEMENT
from tests.elibrary.conftest import Copies, build_app
from tests.elibrary.iiif_schemas import validate_presentation
from tests.elibrary.library import Library


@pytest.fixture(scope="module")
def http(library: Library, copies: Copies) -> TestClient:
    return TestClient(build_app(library), base_url="https://testserver")


def manifest_of(http: TestClient, bag_id: str) -> dict[str, Any]:
    r = http.get(f"/iiif/presentation/{bag_id}/manifest.json")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_the_manifest_of_an_open_copy(http: TestClient, copies: Copies) -> None:
    m = manifest_of(http, copies.open.bag_id)
    validate_presentation(m)
    base = "http://localhost"
    bag = copies.open.bag_id
    assert m["@context"] == "http://iiif.io/api/presentation/3/context.json"
    assert m["type"] == "Manifest"
    assert m["id"] == f"{base}/iiif/presentation/{bag}/manifest.json"
    assert m["label"] == {"kk": ["Қазақ даласының тарихы"]}
    labels = {f["label"]["en"][0]: f["value"] for f in m["metadata"]}
    assert labels["Title"] == {"kk": ["Қазақ даласының тарихы"]}
    assert labels["Authors"] == {"kk": ["Әлихан Бөкейханов"]}
    assert labels["Year"] == {"none": ["2001"]}
    assert labels["Inventory number"] == {"none": [copies.open.inventory_number]}
    assert labels["Fund"] == {"none": [MAIN_FUND]}
    assert all(set(f["label"]) == {"kk", "ru", "en"} for f in m["metadata"])
    assert m["rights"] == RIGHTS_STATEMENT
    assert set(m["requiredStatement"]["label"]) == {"kk", "ru", "en"}
    assert len(m["items"]) == 3
    for page, canvas in enumerate(m["items"], start=1):
        assert canvas["label"]["en"] == [f"Page {page}"] and "kk" in canvas["label"]
        body = canvas["items"][0]["items"][0]["body"]
        service = body["service"][0]
        assert service["id"] == f"{base}/iiif/3/{bag}~{page}"
        assert service["type"] == "ImageService3"
        # the canvas is the reading image's size (as the Image API's info.json says)
        info = http.get(f"/iiif/3/{bag}~{page}/info.json").json()
        assert (canvas["width"], canvas["height"]) == (info["width"], info["height"])
        assert (body["width"], body["height"]) == (info["width"], info["height"])
        thumb = http.get(canvas["thumbnail"][0]["id"].removeprefix(base))
        assert thumb.status_code == 200
        assert Image.open(io.BytesIO(thumb.content)).width == canvas["thumbnail"][0]["width"]
    assert m["thumbnail"][0]["id"] == m["items"][0]["thumbnail"][0]["id"]
    services = {s["type"]: s for s in m["service"]}
    assert services["SearchService2"]["id"] == f"{base}/iiif/search/{bag}"
    assert "AuthProbeService2" not in services  # open: nothing to authorise
    assert m["rendering"][0]["id"] == f"{base}/copies/{bag}/file.pdf"
    assert m["rendering"][0]["format"] == "application/pdf"


def test_restricted_copies_announce_the_auth_services(http: TestClient, copies: Copies) -> None:
    readers = manifest_of(http, copies.readers.bag_id)
    validate_presentation(readers)
    probe = next(s for s in readers["service"] if s["type"] == "AuthProbeService2")
    assert probe["id"].endswith(f"/iiif/auth/probe/{copies.readers.bag_id}")
    access = probe["service"][0]
    assert access["type"] == "AuthAccessService2" and access["profile"] == "active"
    assert access["service"][0]["type"] == "AuthAccessTokenService2"
    body = readers["items"][0]["items"][0]["items"][0]["body"]
    assert [s["type"] for s in body["service"]] == ["ImageService3", "AuthProbeService2"]
    assert "rendering" in readers  # readers may download it once signed in
    room = manifest_of(http, copies.reading_room.bag_id)
    validate_presentation(room)
    assert "rendering" not in room  # only read in the reading rooms, never downloaded


def test_dark_and_unknown_copies_have_no_manifest(http: TestClient, copies: Copies) -> None:
    assert http.get(f"/iiif/presentation/{copies.dark.bag_id}/manifest.json").status_code == 404
    assert http.get("/iiif/presentation/bag-nothere/manifest.json").status_code == 404
    assert http.get("/iiif/presentation/..%2Fetc/manifest.json").status_code in (400, 404)


def test_a_collection_per_fund(http: TestClient, copies: Copies) -> None:
    r = http.get(f"/iiif/presentation/collection/{MAIN_FUND}.json")
    assert r.status_code == 200
    c = r.json()
    validate_presentation(c)
    assert c["type"] == "Collection" and set(c["label"]) == {"kk", "ru", "en"}
    ids = [i["id"] for i in c["items"]]
    for made in (copies.open, copies.readers, copies.reading_room):
        assert f"http://localhost/iiif/presentation/{made.bag_id}/manifest.json" in ids
    assert not any(copies.dark.bag_id in i for i in ids)
    assert http.get("/iiif/presentation/collection/no-such-fund.json").status_code == 404
    assert http.get("/iiif/presentation/collection/a%20b.json").status_code == 400


def test_linked_from_the_record_page_and_oai(http: TestClient, copies: Copies) -> None:
    bag = copies.readers.bag_id
    url = f"http://localhost/iiif/presentation/{bag}/manifest.json"
    page = http.get(f"/copies/{bag}").text
    assert f'href="{url}"' in page and f"?manifest={url}" in page
    oai = http.get("/oai", params={"verb": "GetRecord", "metadataPrefix": "oai_dc",
                                   "identifier": f"oai:localhost:{bag}"})
    root = etree.fromstring(oai.content)
    relations = root.xpath("//dc:relation/text()",
                           namespaces={"dc": "http://purl.org/dc/elements/1.1/"})
    assert url in relations, oai.text


def test_the_schema_refuses_what_the_specifications_forbid(http: TestClient,
                                                           copies: Copies) -> None:
    """The validator is not a rubber stamp: broken variants of a served manifest, info.json
    and search answer are refused."""
    from tests.elibrary.iiif_schemas import errors, validate_info, validate_search

    good = manifest_of(http, copies.open.bag_id)
    assert errors(good, "manifest") == []
    broken = [
        {**good, "label": "plain string"},
        {**good, "id": "not a url"},
        {**good, "rights": "all rights reserved"},
        {**good, "items": [{**good["items"][0], "width": "874"}]},
        {**good, "items": [{**good["items"][0], "label": {"en": "Page 1"}}]},
        {k: v for k, v in good.items() if k != "@context"},
    ]
    assert all(errors(b, "manifest") for b in broken)
    info = http.get(f"/iiif/3/{copies.open.bag_id}~1/info.json").json()
    validate_info(info)
    assert errors({**info, "protocol": "iiif"}, "imageInfo")
    assert errors({**info, "tiles": [{"width": 512}]}, "imageInfo")
    found = http.get(f"/iiif/search/{copies.open.bag_id}", params={"q": "бет"}).json()
    validate_search(found)
    bad = {**found, "items": [{**found["items"][0], "target": "http://x/canvas/1"}]}
    assert errors(bad, "searchResponse")
