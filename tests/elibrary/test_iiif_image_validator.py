"""The IIIF community's own Image API validator (PyPI ``iiif-validator`` 1.0.5, the code behind
iiif.io's image validator) run, in-process, against Qor's Image API server under uvicorn.

The validator's tests read back the colours of a 10×10 grid of squares from its standard test
image; the package carries the grid's colours (``ValidationInfo.colorInfo``), and the test
image is drawn from them: 1000×1000 pixels, square (x, y) of 100×100 pixels in colour
``colorInfo[x][y]``. It is stored as an ``open`` copy the way scans are (the capture flow's
reading image, JPEG, in an encrypted bag) and served like every other page.

Every 3.0 test of compliance levels 0 and 1 must pass. Qor's info.json says ``level1`` plus
extra features (``extraQualities`` gray/bitonal, ``extraFormats`` png, ``extraFeatures``
mirroring, regionByPct, rotationBy90s, sizeByConfinedWh, sizeByPct, sizeUpscaling): the
level 2 and 3 tests of what it announces must pass too (upscaling, up to maxWidth/maxHeight:
see :data:`BEYOND_MAX_SIZE`). The tests of what it does not offer (GIF/TIFF/WebP/JPEG 2000/PDF,
arbitrary rotation, Link headers) are run and must fail, so the announcement and the server
agree both ways.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from iiif_validator import validator as iiif
from PIL import Image, ImageDraw

from elibrary.models import Rights
from tests.elibrary.conftest import Copies, LiveServer
from tests.elibrary.library import Library

VERSION = "3.0"
SUITE = iiif.TestSuite(iiif.ValidationInfo())
#: name -> {"label", "level", ...} of every test of the validator for Image API 3.0.
TESTS: dict[str, dict[str, Any]] = SUITE.list_tests(VERSION)
#: The level 3 tests of features Qor's info.json announces as extraFeatures.
ANNOUNCED_LEVEL3 = {"rot_mirror", "rot_mirror_180"}
#: "Size greater than 100%" asks for the full image upscaled to 1100-2000 px; Qor's info.json
#: says maxWidth/maxHeight are the image's own size (an upscaled page would cost memory for no
#: new detail), so that request is refused with 400, as Image API 3.0 §5.3 allows ("clients
#: MUST NOT expect requests with a width greater than [maxWidth] to be supported"). The
#: validator does not read maxWidth (its own comment: "should check the info.json").
BEYOND_MAX_SIZE = "size_up"
#: The tests of what Qor's server does not offer (and does not announce).
NOT_OFFERED = {"format_gif", "format_jp2", "format_pdf", "format_tif", "format_webp",
               "linkheader_canonical", "linkheader_profile", "rot_full_non90",
               "rot_region_non90"}
MUST_PASS = sorted(n for n, t in TESTS.items() if t["level"] <= 2 or n in ANNOUNCED_LEVEL3)
assert BEYOND_MAX_SIZE not in MUST_PASS  # level 3


def draw_test_image(path: Path) -> Path:
    """The validator's standard test image, drawn from the colours the validator checks."""
    colours = iiif.ValidationInfo().colorInfo
    image = Image.new("RGB", (1000, 1000))
    draw = ImageDraw.Draw(image)
    for x, column in enumerate(colours):
        for y, colour in enumerate(column):
            draw.rectangle((x * 100, y * 100, x * 100 + 99, y * 100 + 99), fill=colour)
    image.save(path, "PNG")
    return path


@pytest.fixture(scope="module")
def identifier(library: Library, copies: Copies, tmp_path_factory: pytest.TempPathFactory
               ) -> str:
    """The Image API identifier of the test image's page in an ``open`` copy."""
    png = draw_test_image(tmp_path_factory.mktemp("iiif-validator") / "testimage.png")
    made = library.add_copy(title="IIIF Image API validator test image", rights=Rights.OPEN,
                            pages=["IIIF test image"], scans=[png])
    return f"{made.bag_id}~1"


def run_validator(name: str, live: LiveServer, identifier: str) -> dict[str, Any]:
    """One test of the validator against the live server: its verdict as the validator's web
    service would give it (``status`` ``success`` or ``error``, with what was expected)."""
    random.seed(f"qor-{name}")  # the validator picks squares at random: the same each run
    result = iiif.ImageAPI(identifier, urlsplit(live.url).netloc, prefix="iiif/3", scheme="http",
                      version=VERSION, debug=False)
    try:
        SUITE.run_test(name, result)
    except Exception as exc:  # the validator's own web service reports these too
        return {"test": name, "status": "internal-error", "url": result.urls, "msg": repr(exc)}
    e = result.exception
    if e is not None:
        return {"test": name, "status": "error", "url": result.urls, "type": e.type,
                "got": e.got, "expected": e.expected, "message": e.message,
                "warning": e.warning}
    return {"test": name, "status": "success", "url": result.urls, "tests": result.tests}


@pytest.fixture(scope="module")
def verdicts(live_server: LiveServer, identifier: str) -> dict[str, dict[str, Any]]:
    """Every 3.0 test of the validator, run once against the server."""
    return {name: run_validator(name, live_server, identifier) for name in sorted(TESTS)}


def test_the_validator_has_its_3_0_suite() -> None:
    """The installed validator is the one pinned (its 3.0 tests of levels 0, 1, 2 and 3)."""
    from importlib.metadata import version

    assert version("iiif-validator") == "1.0.5"
    levels = {t["level"] for t in TESTS.values()}
    assert levels == {0, 1, 2, 3}
    assert {"info_json", "id_squares", "id_error_random", "size_noup"} <= set(TESTS)
    assert set(NOT_OFFERED) | ANNOUNCED_LEVEL3 <= set(TESTS)


@pytest.mark.parametrize("name", MUST_PASS)
def test_the_official_image_validator_passes(name: str,
                                             verdicts: dict[str, dict[str, Any]]) -> None:
    """Image API 3.0 compliance level 0 and 1, and the level 2/3 features info.json
    announces, by the IIIF validator's own tests."""
    verdict = verdicts[name]
    assert verdict["status"] == "success", (TESTS[name]["label"], verdict)


@pytest.mark.parametrize("name", sorted(NOT_OFFERED))
def test_what_is_not_offered_fails_the_validator(name: str,
                                                 verdicts: dict[str, dict[str, Any]]) -> None:
    """The validator is no rubber stamp: the tests of formats and features Qor neither
    offers nor announces fail against it. (Some of them stop on the validator's own Python 3
    faults, ``urllib.urlopen`` and a missing Link header: ``internal-error``; the server's
    refusals they would have seen are checked directly below.)"""
    assert verdicts[name]["status"] in ("error", "internal-error"), (TESTS[name]["label"],
                                                                     verdicts[name])


@pytest.mark.parametrize("path", ["full/max/0/default.gif", "full/max/0/default.jp2",
                                  "full/max/0/default.pdf", "full/max/0/default.tif",
                                  "full/max/0/default.webp", "full/max/22.5/default.jpg"])
def test_formats_and_rotations_not_offered_are_400(path: str, live_server: LiveServer,
                                                   identifier: str) -> None:
    """Image API 3.0 §7: what the server does not support is a 400, and no image."""
    r = httpx.get(f"{live_server.url}/iiif/3/{identifier}/{path}", timeout=10)
    assert r.status_code == 400
    assert not r.headers["content-type"].startswith("image/")


def test_upscaling_stops_at_max_width(verdicts: dict[str, dict[str, Any]], live_server: LiveServer,
                                      identifier: str) -> None:
    """sizeUpscaling within maxWidth/maxHeight: a region enlarged with ``^`` comes back at the
    asked size with the right squares; only the validator's request beyond maxWidth is
    refused, with 400."""
    verdict = verdicts[BEYOND_MAX_SIZE]
    assert verdict["status"] == "error" and verdict["type"] == "status", verdict
    assert (verdict["got"], verdict["expected"]) == (400, 200), verdict
    assert "/full/^" in verdict["url"][-1], verdict
    info = httpx.get(f"{live_server.url}/iiif/3/{identifier}/info.json", timeout=10).json()
    assert (info["maxWidth"], info["maxHeight"]) == (1000, 1000)
    assert "sizeUpscaling" in info["extraFeatures"]
    # squares (2..6, 3..7) enlarged twice: 500x500 -> 1000x1000
    url = f"{live_server.url}/iiif/3/{identifier}/200,300,500,500/^1000,/0/default.png"
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200
    up = Image.open(io.BytesIO(r.content))
    assert up.size == (1000, 1000)
    check = iiif.ValidationInfo()
    result = iiif.ImageAPI(identifier, "unused", version=VERSION, debug=False)
    for x in range(5):
        for y in range(5):
            square = up.crop((x * 200 + 26, y * 200 + 26, x * 200 + 174, y * 200 + 174))
            assert check.do_test_square(square.convert("RGB"), x + 2, y + 3, result), (x, y)


def test_every_3_0_test_is_accounted_for() -> None:
    """Each test of the suite is either required to pass or to fail here."""
    assert set(MUST_PASS) | NOT_OFFERED | {BEYOND_MAX_SIZE} == set(TESTS)
    assert len(MUST_PASS) + len(NOT_OFFERED) + 1 == len(TESTS)
