"""CORS on the IIIF endpoints (issue 16): any site's viewer may load an ``open`` copy's
info.json, tiles, manifest and search (``Access-Control-Allow-Origin: *``, as IIIF asks); a
restricted copy's answers, every refusal and the auth token service carry no CORS grant, so a
foreign page can never read them with the reader's credentials (R6/R10)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.elibrary.conftest import OUTSIDE_IP, Copies, build_app
from tests.elibrary.library import Library
from tests.elibrary.test_security import sign_in

FOREIGN = {"Origin": "https://viewer.example.org"}


def client(library: Library, port: int) -> TestClient:
    return TestClient(build_app(library), base_url="https://testserver",
                      client=(OUTSIDE_IP, port), follow_redirects=False)


def test_open_copies_are_cors_enabled_for_any_viewer(library: Library, copies: Copies) -> None:
    c = client(library, 42001)
    bag = copies.open.bag_id
    for path in (f"/iiif/3/{bag}~1/info.json", f"/iiif/3/{bag}~1/full/200,/0/default.jpg",
                 f"/iiif/3/{bag}~1/0,0,512,512/256,/0/default.jpg",
                 f"/iiif/presentation/{bag}/manifest.json", f"/iiif/search/{bag}?q=бет"):
        r = c.get(path, headers=FOREIGN)
        assert r.status_code == 200, path
        assert r.headers.get("access-control-allow-origin") == "*", path
        assert r.headers["cache-control"].startswith("public"), path
        assert "access-control-allow-credentials" not in r.headers, path


def test_restricted_copies_refusals_and_the_token_service_grant_no_cors(
        library: Library, copies: Copies) -> None:
    anon = client(library, 42002)
    reader = client(library, 42003)
    sign_in(reader, "T-1001")
    bag = copies.readers.bag_id
    paths = (f"/iiif/3/{bag}~1/info.json", f"/iiif/3/{bag}~1/full/200,/0/default.jpg",
             f"/iiif/presentation/{bag}/manifest.json", f"/iiif/search/{bag}?q=степь")
    for path in paths:
        refused = anon.get(path, headers=FOREIGN)  # refusals: no grant, no bytes of the copy
        if "manifest.json" not in path:  # the manifest is public metadata, like the record
            assert refused.status_code == 401, path
        assert "access-control-allow-origin" not in refused.headers, path
        allowed = reader.get(path, headers=FOREIGN)  # the reader's own answer: not for others
        assert allowed.status_code == 200, path
        assert "access-control-allow-origin" not in allowed.headers, path
        assert "no-store" in allowed.headers["cache-control"], path
    token = reader.get("/iiif/auth/token", params={"messageId": "m-1",
                                                   "origin": "https://viewer.example.org"},
                       headers=FOREIGN)
    assert token.status_code == 200
    assert "access-control-allow-origin" not in token.headers
    for path in (f"/iiif/3/{copies.dark.bag_id}~1/info.json",
                 f"/iiif/presentation/{copies.dark.bag_id}/manifest.json"):
        gone = anon.get(path, headers=FOREIGN)
        assert gone.status_code == 404 and "access-control-allow-origin" not in gone.headers
