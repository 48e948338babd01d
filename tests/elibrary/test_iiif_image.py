"""IIIF Image API 3.0 from the encrypted bags: info.json (schema-valid), regions, sizes,
rotations, qualities, tiles, and the rights of the PDF route (R6/R10: 0 bytes without them)."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from elibrary.iiif_image import ByteLRU, scale_factors
from tests.elibrary.conftest import OUTSIDE_IP, Copies, build_app
from tests.elibrary.iiif_schemas import validate_info
from tests.elibrary.library import Library
from tests.elibrary.test_security import sign_in


@pytest.fixture(scope="module")
def http(library: Library, copies: Copies) -> TestClient:
    return TestClient(build_app(library, iiif_cache_bytes=64 * 1024 * 1024),
                      base_url="https://testserver")


def ident(copies: Copies, page: int = 1) -> str:
    return f"{copies.open.bag_id}~{page}"


def _image(resp: object) -> Image.Image:
    return Image.open(io.BytesIO(resp.content))  # type: ignore[attr-defined]


def test_info_json_describes_the_page_and_its_tiles(http: TestClient, copies: Copies) -> None:
    r = http.get(f"/iiif/3/{ident(copies)}/info.json")
    assert r.status_code == 200
    info = r.json()
    validate_info(info)
    # Image API 3.0 §5: the required properties with their fixed values
    assert info["@context"] == "http://iiif.io/api/image/3/context.json"
    assert info["type"] == "ImageService3" and info["profile"] == "level1"
    assert info["protocol"] == "http://iiif.io/api/image"
    assert all(isinstance(info[k], int) and info[k] > 0 for k in ("width", "height"))
    assert info["id"] == f"http://localhost/iiif/3/{ident(copies)}"
    assert max(info["width"], info["height"]) <= 2400
    assert info["tiles"][0]["width"] == 512
    assert info["tiles"][0]["scaleFactors"] == scale_factors(info["width"], info["height"])
    ld = http.get(f"/iiif/3/{ident(copies)}/info.json",
                  headers={"Accept": "application/ld+json"})
    assert ld.headers["content-type"].startswith("application/ld+json")


def test_regions_sizes_rotations_and_qualities(http: TestClient, copies: Copies) -> None:
    info = http.get(f"/iiif/3/{ident(copies)}/info.json").json()
    w, h = info["width"], info["height"]
    base = f"/iiif/3/{ident(copies)}"
    cases = {
        "full/max/0/default.jpg": (w, h),
        "full/200,/0/default.jpg": (200, round(h * 200 / w)),
        "full/,100/0/color.jpg": (round(w * 100 / h), 100),
        "full/pct:10/0/default.jpg": (round(w / 10), round(h / 10)),
        "full/!150,150/0/default.jpg": None,
        "square/100,100/0/default.jpg": (100, 100),
        "10,20,300,200/max/0/default.jpg": (300, 200),
        "10,20,300,200/150,100/90/gray.png": (100, 150),
        "pct:0,0,50,50/max/!180/default.jpg": (round(w / 2), round(h / 2)),
        "0,0,512,512/512,/0/default.jpg": (512, 512),
    }
    for path, dims in cases.items():
        r = http.get(f"{base}/{path}")
        assert r.status_code == 200, (path, r.status_code)
        im = _image(r)
        if dims is None:
            assert max(im.size) == 150 and im.width <= 150 and im.height <= 150
        else:
            assert im.size == dims, path
    assert _image(http.get(f"{base}/full/50,/0/gray.jpg")).mode == "L"
    assert http.get(f"{base}/full/50,/0/default.png").headers["content-type"] == "image/png"


def test_a_tile_of_every_scale_factor(http: TestClient, copies: Copies) -> None:
    info = http.get(f"/iiif/3/{ident(copies)}/info.json").json()
    w, h = info["width"], info["height"]
    for s in info["tiles"][0]["scaleFactors"]:
        rw, rh = min(512 * s, w), min(512 * s, h)
        r = http.get(f"/iiif/3/{ident(copies)}/0,0,{rw},{rh}/{-(-rw // s)},/0/default.jpg")
        assert r.status_code == 200
        assert _image(r).width == -(-rw // s)


@pytest.mark.parametrize("path", [
    "full/max/45/default.jpg", "full/max/0/sepia.jpg", "full/max/0/default.tif",
    "0,0,0,10/max/0/default.jpg", "99999,0,10,10/max/0/default.jpg",
    "full/99999,/0/default.jpg", "full/abc/0/default.jpg", "nonsense/max/0/default.jpg",
])
def test_bad_requests_are_refused_with_400(http: TestClient, copies: Copies, path: str) -> None:
    r = http.get(f"/iiif/3/{ident(copies)}/{path}")
    assert r.status_code == 400
    assert not r.headers["content-type"].startswith("image/")


def test_unknown_pages_identifiers_and_dark_copies_are_404(
        http: TestClient, copies: Copies) -> None:
    assert http.get(f"/iiif/3/{copies.open.bag_id}~99/info.json").status_code == 404
    assert http.get(f"/iiif/3/{copies.dark.bag_id}~1/info.json").status_code == 404
    # Image API 3.0 §7: an identifier that names no image is 404, whatever its shape
    assert http.get("/iiif/3/no-tilde/info.json").status_code == 404
    assert http.get(f"/iiif/3/{copies.open.bag_id}~0/info.json").status_code == 404
    assert http.get("/iiif/3/..~1/full/max/0/default.jpg").status_code == 404
    assert http.get("/iiif/3/no-tilde/full/max/0/default.jpg").status_code == 404
    assert http.get("/iiif/3/no-tilde", follow_redirects=False).status_code == 404


def test_rights_are_those_of_the_pdf_route(library: Library, copies: Copies) -> None:
    """R6/R10: without the right to read a copy, not one byte of its images or info.json."""
    anon = TestClient(build_app(library), base_url="https://testserver",
                      client=(OUTSIDE_IP, 40000), follow_redirects=False)
    readers = f"/iiif/3/{copies.readers.bag_id}~1"
    room = f"/iiif/3/{copies.reading_room.bag_id}~1"
    for url in (f"{readers}/info.json", f"{readers}/0,0,512,512/512,/0/default.jpg",
                f"{room}/full/max/0/default.jpg"):
        r = anon.get(url)
        assert r.status_code == 401, url
        assert not r.headers["content-type"].startswith(("image/", "application/json"))
        assert b"\xff\xd8" not in r.content
    sign_in(anon, "T-1001")
    assert anon.get(f"{readers}/full/100,/0/default.jpg").status_code == 200
    assert anon.get(f"{readers}/full/100,/0/default.jpg").headers["cache-control"] == (
        "private, no-store")
    assert anon.get(f"{room}/full/100,/0/default.jpg").status_code == 403


def test_the_cache_is_bounded_by_bytes() -> None:
    lru = ByteLRU(100)
    for i in range(10):
        lru.put(i, b"x" * 30, 30)
    assert lru.size <= 100
    assert lru.get(9) is not None and lru.get(0) is None
    lru.put("huge", b"x" * 101, 101)
    assert lru.get("huge") is None


def test_a_copy_closed_after_being_open_serves_no_tile_after_the_rights_ttl(
        library: Library, http: TestClient) -> None:
    """R6: the cached fast path for open copies never outlives VIEW_TTL_S."""
    import time

    from elibrary.iiif_image import VIEW_TTL_S
    from elibrary.library import set_rights
    from elibrary.models import Rights

    made = library.add_copy(title="Ашық, сосын жабық", pages=["Бет."], rights=Rights.OPEN)
    url = f"/iiif/3/{made.bag_id}~1/0,0,512,512/512,/0/default.jpg"
    assert http.get(url).status_code == 200
    assert http.get(url).status_code == 200  # answered from the cache
    with library.sessions() as s, s.begin():
        set_rights(s, bag_id=made.bag_id, rights=Rights.READERS, actor="test")
    time.sleep(VIEW_TTL_S + 0.1)
    r = http.get(url)
    assert r.status_code == 401 and not r.content.startswith(b"\xff\xd8")
