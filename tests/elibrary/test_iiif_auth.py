"""IIIF Authorization Flow 2.0 for restricted copies: probe, access and token services mapped
to the reader's rights (R6/R10). The token (HMAC bound to the reader's session) opens images,
info.json, search and the access PDF as ``Authorization: Bearer``; without the right, 0 bytes
of any image or text."""

from __future__ import annotations

import json
import re
import time

import pytest
from fastapi.testclient import TestClient

from tests.elibrary.conftest import OUTSIDE_IP, Copies, build_app
from tests.elibrary.iiif_schemas import validate_info, validate_probe
from tests.elibrary.library import Library
from tests.elibrary.test_security import csrf_of, sign_in

ORIGIN = "http://localhost"


@pytest.fixture(scope="module")
def app_(library: Library, copies: Copies) -> object:
    return build_app(library)


def client(app: object, port: int = 41000) -> TestClient:
    return TestClient(app, base_url="https://testserver",  # type: ignore[arg-type]
                      client=(OUTSIDE_IP, port), follow_redirects=False)


def token_message(c: TestClient, origin: str = ORIGIN) -> dict[str, object]:
    r = c.get("/iiif/auth/token", params={"messageId": "m-1", "origin": origin})
    assert r.status_code == 200
    assert "frame-ancestors 'self'" in r.headers["content-security-policy"]
    m = re.search(r"postMessage\((\{.*?\}), (\"[^\"]*\")\)", r.text)
    assert m is not None, r.text
    msg: dict[str, object] = json.loads(m.group(1))
    assert json.loads(m.group(2)) == ORIGIN  # never posted to another origin
    return msg


def protected_urls(copies: Copies, bag: str | None = None) -> list[str]:
    bag = bag or copies.readers.bag_id
    return [f"/iiif/3/{bag}~1/info.json", f"/iiif/3/{bag}~1/0,0,512,512/512,/0/default.jpg",
            f"/iiif/3/{bag}~1/full/max/0/default.jpg", f"/iiif/search/{bag}?q=степь",
            f"/copies/{bag}/file.pdf"]


def assert_no_bytes(r: object, url: str) -> None:
    body: bytes = r.content  # type: ignore[attr-defined]
    assert r.status_code in (401, 403), (url, r.status_code)  # type: ignore[attr-defined]
    assert not r.headers["content-type"].startswith(  # type: ignore[attr-defined]
        ("image/", "application/json", "application/pdf"))
    assert b"\xff\xd8" not in body and b"%PDF" not in body
    assert b"xywh" not in body and "степь".encode() not in body


def test_probe_answers_the_visitors_rights(app_: object, copies: Copies) -> None:
    anon = client(app_)
    for bag, status in ((copies.open.bag_id, 200), (copies.readers.bag_id, 401),
                        (copies.reading_room.bag_id, 401)):
        r = anon.get(f"/iiif/auth/probe/{bag}")
        assert r.status_code == 200
        body = r.json()
        validate_probe(body)
        assert body["@context"] == "http://iiif.io/api/auth/2/context.json"
        assert body["type"] == "AuthProbeResult2" and body["status"] == status, bag
    assert anon.get(f"/iiif/auth/probe/{copies.dark.bag_id}").status_code == 404
    info = client(app_).get(f"/iiif/3/{copies.open.bag_id}~1/info.json").json()
    assert "service" not in info  # open copies need no auth


def test_without_rights_not_one_byte_of_image_or_text(app_: object, copies: Copies) -> None:
    """R6/R10: anonymous → 401 on every route; a reader outside the reading rooms → 403 on a
    reading-room copy, and its token does not help."""
    anon = client(app_, 41001)
    for url in protected_urls(copies):
        assert_no_bytes(anon.get(url), url)
    assert token_message(anon)["profile"] == "missingAspect"
    reader = client(app_, 41002)
    sign_in(reader, "T-1002")
    token = token_message(reader)["accessToken"]
    bearer = client(app_, 41003)
    for url in protected_urls(copies, copies.reading_room.bag_id):
        for c, headers in ((reader, {}), (bearer, {"Authorization": f"Bearer {token}"})):
            r = c.get(url, headers=headers)
            assert r.status_code == 403, url
            assert_no_bytes(r, url)
    r = bearer.get(f"/iiif/auth/probe/{copies.reading_room.bag_id}",
                   headers={"Authorization": f"Bearer {token}"})
    assert r.json()["status"] == 403


def test_the_token_opens_images_search_and_pdf(app_: object, copies: Copies,
                                               library: Library) -> None:
    reader = client(app_, 41004)
    sign_in(reader, "T-1001")
    msg = token_message(reader)
    assert msg["type"] == "AuthAccessToken2" and msg["messageId"] == "m-1"
    assert isinstance(msg["expiresIn"], int) and 0 < msg["expiresIn"] <= 3600
    token = str(msg["accessToken"])
    assert reader.cookies.get("__Host-qor-reader", "") not in token  # not the session cookie
    viewer = client(app_, 41005)  # no cookies: only the bearer token
    auth = {"Authorization": f"Bearer {token}"}
    for url in protected_urls(copies):
        r = viewer.get(url, headers=auth)
        assert r.status_code == 200, (url, r.status_code)
    info = viewer.get(protected_urls(copies)[0], headers=auth).json()
    validate_info(info)
    assert info["service"][0]["type"] == "AuthProbeService2"
    assert viewer.get(f"/iiif/auth/probe/{copies.readers.bag_id}",
                      headers=auth).json()["status"] == 200
    # forged, expired, or for a foreign origin: nothing
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    lib = app_.state.elibrary  # type: ignore[attr-defined]
    expired, _ = lib.access_token(reader.cookies.get("__Host-qor-reader"),
                                  now=time.time() - 3600)
    for bad in (forged, expired, "garbage", token + "x"):
        for url in protected_urls(copies):
            assert_no_bytes(viewer.get(url, headers={"Authorization": f"Bearer {bad}"}), url)
    foreign = token_message(reader, origin="https://evil.example")
    assert foreign["profile"] == "invalidOrigin" and "accessToken" not in foreign
    # signing out ends the session, and so the token
    r = reader.post("/logout", data={"csrf_token": csrf_of(reader)})
    assert r.status_code in (303, 200)
    for url in protected_urls(copies):
        assert_no_bytes(viewer.get(url, headers=auth), url)


def test_access_service_signs_in_then_closes(app_: object, copies: Copies) -> None:
    c = client(app_, 41006)
    r = c.get("/iiif/auth/access", params={"origin": ORIGIN})
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=%2Fiiif%2Fauth%2Faccess")
    login = c.get(r.headers["location"])
    assert login.status_code == 200 and "/iiif/auth/access" in login.text
    sign_in(c, "T-1001")
    done = c.get("/iiif/auth/access", params={"origin": ORIGIN})
    assert done.status_code == 200 and "window.close()" in done.text
    assert "nonce-" in done.headers["content-security-policy"]
    assert c.get("/iiif/auth/token", params={"messageId": "<x>", "origin": ORIGIN}
                 ).status_code == 400
