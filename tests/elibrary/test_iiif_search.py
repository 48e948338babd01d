"""IIIF Content Search API 2.0 from the ALTO word boxes: Kazakh and Russian words, case-folded
prefixes, hits as ``xywh`` on the right canvas; R6/R10 (issue 15): no hits nor counts for a
visitor who may not read the copy."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.elibrary.conftest import OUTSIDE_IP, UNIQUE_WORD, Copies, build_app
from tests.elibrary.iiif_schemas import validate_search
from tests.elibrary.library import Library
from tests.elibrary.test_security import sign_in

BASE = "http://localhost"


@pytest.fixture(scope="module")
def http(library: Library, copies: Copies) -> TestClient:
    return TestClient(build_app(library), base_url="https://testserver",
                      client=(OUTSIDE_IP, 40000))


def hits(http: TestClient, bag_id: str, q: str) -> list[dict[str, Any]]:
    r = http.get(f"/iiif/search/{bag_id}", params={"q": q})
    assert r.status_code == 200, r.text
    body = r.json()
    validate_search(body)
    items: list[dict[str, Any]] = body["items"]
    return items


def test_a_kazakh_word_is_found_on_its_page_with_its_box(http: TestClient,
                                                         copies: Copies) -> None:
    bag = copies.open.bag_id
    found = hits(http, bag, UNIQUE_WORD.upper())  # case-folded
    assert len(found) == 1
    hit = found[0]
    assert hit["motivation"] == "highlighting"
    assert hit["body"]["value"] == UNIQUE_WORD
    canvas, _, frag = hit["target"].partition("#xywh=")
    assert canvas == f"{BASE}/iiif/presentation/{bag}/canvas/3"  # the right page
    x, y, w, h = (int(v) for v in frag.split(","))
    info = http.get(f"/iiif/3/{bag}~3/info.json").json()
    assert 0 <= x < x + w <= info["width"] and 0 <= y < y + h <= info["height"]
    # a word of 10 letters at 14 pt, 150 dpi: roughly 10 × 0.6 × 14 pt wide, one line high
    assert 100 < w < 400 and 15 < h < 60, (w, h)
    # the box is where the word is drawn: the region is dark ink on white paper
    from io import BytesIO

    from PIL import Image, ImageStat
    crop = http.get(f"/iiif/3/{bag}~3/{x},{y},{w},{h}/max/0/gray.png")
    blank = http.get(f"/iiif/3/{bag}~3/{x},{info['height'] - h - 5},{w},{h}/max/0/gray.png")
    ink = ImageStat.Stat(Image.open(BytesIO(crop.content))).mean[0]
    paper = ImageStat.Stat(Image.open(BytesIO(blank.content))).mean[0]
    assert ink < paper - 20, (ink, paper)


def test_prefixes_and_several_pages(http: TestClient, copies: Copies) -> None:
    bag = copies.open.bag_id
    found = hits(http, bag, "бет")  # "Бірінші бет", "Екінші бет", "Үшінші бет"
    pages = sorted(int(h["target"].split("#")[0].rsplit("/", 1)[1]) for h in found)
    assert pages == [1, 2, 3]
    assert hits(http, bag, "қазақ")[0]["body"]["value"].startswith("Қазақ")  # prefix
    assert hits(http, bag, "несуществующее") == []


def test_a_russian_word_for_a_signed_in_reader(library: Library, copies: Copies) -> None:
    """R6: a `readers` copy is searched for a signed-in reader only; the anonymous visitor
    gets 401 and not a count, not a word (issue 15)."""
    anon = TestClient(build_app(library), base_url="https://testserver",
                      client=(OUTSIDE_IP, 40001), follow_redirects=False)
    bag = copies.readers.bag_id
    r = anon.get(f"/iiif/search/{bag}", params={"q": "степь"})
    assert r.status_code == 401
    assert "степь" not in r.text and "items" not in r.text and "xywh" not in r.text
    # the same answer whether or not the word is in the copy (no oracle)
    r2 = anon.get(f"/iiif/search/{bag}", params={"q": "жоқсөз"})
    assert r2.status_code == 401 and len(r2.content) == len(r.content)
    sign_in(anon, "T-1001")
    found = hits(anon, bag, "СТЕП")
    assert [h["body"]["value"] for h in found] == ["степь"]
    room = anon.get(f"/iiif/search/{copies.reading_room.bag_id}", params={"q": "сирек"})
    assert room.status_code == 403 and "xywh" not in room.text


def test_dark_copies_and_bad_queries(http: TestClient, copies: Copies) -> None:
    assert http.get(f"/iiif/search/{copies.dark.bag_id}", params={"q": "қазақ"}
                    ).status_code == 404
    assert http.get(f"/iiif/search/{copies.open.bag_id}", params={"q": "  !!"}
                    ).status_code == 400
    assert http.get(f"/iiif/search/{copies.open.bag_id}", params={"q": "x" * 500}
                    ).status_code == 400
