"""The IIIF viewer (Mirador from npm, served by the e-library) in Debian's headless Chromium, on a
desktop window and on a 390×844 phone viewport, and axe-core on every reader page.

* A reader signs in, searches a Kazakh word, opens the hit in the viewer: the copy opens on the
  hit's page, the hit is drawn highlighted on that page image (Content Search 2.0 → Mirador),
  thumbnails are there, and zooming in fetches Image API tiles of a finer scale; the OCR text of
  the page on screen is in the page for screen readers.
* A restricted copy (R6, R10) shows the IIIF authorization prompt, and the browser fetches no
  image bytes and no text at all; signing in through the prompt (access window, token
  iframe, probe) brings the copy into the viewer.
* axe-core (npm, installed by ``infra/web-assets``) finds no serious or critical violation on
  home, search, record, read (pdf.js), view (Mirador), sign-in and error pages.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, Request, Response, expect

from tests.elibrary.conftest import UNIQUE_WORD, Copies, LiveServer
from tests.elibrary.library import PASSWORD

AXE_VERSION = "4.14.1"
AXE = (Path(os.environ.get("QOR_TOOLS_CACHE", Path.home() / ".cache" / "qor-tools"))
       / f"axe-core-{AXE_VERSION}" / "axe.min.js")
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
#: Image API requests: /iiif/3/{bag}~{page}/{region}/{size}/{rotation}/{quality}.{format}
IMAGE_URL = re.compile(r"/iiif/3/(?P<bag>[^/~]+)~(?P<page>\d+)/(?P<region>[^/]+)/(?P<size>[^/]+)/")


@dataclass
class Traffic:
    """What the page asked for and got (URL, status, content type, body size)."""

    requests: list[str] = field(default_factory=list)
    responses: list[tuple[str, int, str, int]] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("requestfinished", self._finished)

    def _finished(self, request: Request) -> None:
        resp: Response | None = request.response()
        if resp is None:
            return
        try:
            size = len(resp.body())
        except Exception:  # a body the browser did not keep (redirects)
            size = 0
        self.responses.append((request.url, resp.status, resp.headers.get("content-type", ""),
                               size))

    def image_requests(self, bag_id: str) -> list[re.Match[str]]:
        out = []
        for url in self.requests:
            m = IMAGE_URL.search(urlsplit(url).path)
            if m and m["bag"] == bag_id:
                out.append(m)
        return out


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/login?lang=en")
    page.get_by_label("Reader ticket number").fill("T-1001")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in as reader T-1001")).to_be_visible()


def highlight_pixels(page: Page) -> int:
    """Pixels of the OpenSeadragon view tinted by Mirador's selected search hit (yellow
    ``#ffff00`` at 30 % over the page: about (255, 255, 178))."""
    shot = Image.open(io.BytesIO(page.locator(".openseadragon-container").first.screenshot()))
    rgb = shot.convert("RGB")
    n = 0
    for r, g, b in rgb.getdata():  # type: ignore[misc]
        if r > 235 and g > 235 and 140 < b < 215:
            n += 1
    return n


def finest_scale(matches: list[re.Match[str]]) -> float:
    """The smallest region-width / delivered-width ratio among tile requests (1 = full
    resolution); whole-image requests do not count."""
    best = float("inf")
    for m in matches:
        region, size = m["region"], unquote(m["size"])
        if region in ("full", "square") or not re.fullmatch(r"\d+,\d+,\d+,\d+", region):
            continue
        width = int(region.split(",")[2])
        got = size.split(",")[0]
        if got.isdigit() and int(got) > 0:
            best = min(best, width / int(got))
    return best


def new_context(browser: Browser, viewport: str) -> BrowserContext:
    return browser.new_context(viewport=VIEWPORTS[viewport],  # type: ignore[arg-type]
                               locale="kk-KZ", is_mobile=viewport == "phone",
                               has_touch=viewport == "phone")


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_search_hit_opens_highlighted_in_the_viewer_and_zoom_fetches_tiles(
    browser: Browser, live_server: LiveServer, copies: Copies, viewport: str
) -> None:
    context = new_context(browser, viewport)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    traffic = Traffic()
    traffic.watch(page)
    bag = copies.open.bag_id

    sign_in(page, live_server.url)
    page.get_by_label("Words to find").fill(UNIQUE_WORD.lower())
    page.get_by_role("button", name="Search").click()
    hit = page.locator("ol.results > li a.page")
    expect(hit).to_have_text("page 3")
    hit.click()
    assert f"/copies/{bag}/view" in page.url

    viewer = page.locator("#iiif-viewer")
    expect(viewer).to_have_attribute("data-state", "ready")
    # The copy opens on the hit's page, and the hit is the selected search annotation there.
    expect(viewer).to_have_attribute("data-canvas-page", "3")
    selected = page.wait_for_function(
        """() => { const s = window.qorViewer.store.getState();
                   const w = s.windows.copy;
                   const panels = Object.values((s.searches || {}).copy || {});
                   const ids = [].concat(...panels.map(
                       p => p.selectedContentSearchAnnotationIds || []));
                   return ids.length && w ? {ids: ids, canvas: w.canvasId} : null; }""")
    value = selected.json_value()
    manifest = page.evaluate(
        "() => window.qorViewer.store.getState().manifests[document.getElementById("
        "'iiif-viewer').dataset.manifest].json")
    assert value["canvas"] == manifest["items"][2]["id"]
    # … and drawn: Mirador paints the selected hit's box in yellow over the page image.
    page.wait_for_timeout(1500)
    assert highlight_pixels(page) > 30, "the search hit is not highlighted on the page"
    # The first search hit was found by the Content Search 2.0 service.
    assert any(f"/iiif/search/{bag}" in u for u in traffic.requests)

    # Thumbnails of the pages (the strip at the bottom).
    expect(page.locator(".mirador-thumb-navigation img").first).to_be_visible()
    # The OCR text of the page on screen is in the page (for screen readers).
    expect(page.locator("#ocr-text")).to_contain_text(UNIQUE_WORD)

    # Deep zoom: zooming in asks the Image API for tiles at a finer scale.
    page.wait_for_timeout(500)
    before = finest_scale(traffic.image_requests(bag))
    n_before = len(traffic.image_requests(bag))
    zoom_in = page.get_by_role("button", name="Zoom in").first
    for _ in range(4):
        zoom_in.click()
        page.wait_for_timeout(400)
    page.wait_for_timeout(1500)
    after = traffic.image_requests(bag)
    assert len(after) > n_before, "zooming fetched no tiles"
    assert finest_scale(after) < before, (before, finest_scale(after))
    tiles = [r for r in traffic.responses if IMAGE_URL.search(urlsplit(r[0]).path)
             and "/full/" not in r[0]]
    assert tiles and all(status == 200 and ctype == "image/jpeg" and size > 0
                         for _, status, ctype, size in tiles)

    # Page turning: "previous" leaves the hit's page, and the OCR text follows the page shown.
    page.get_by_role("button", name="Previous item").first.click()
    expect(viewer).not_to_have_attribute("data-canvas-page", "3")
    shown = viewer.get_attribute("data-canvas-page")
    expect(page.locator("#ocr-text")).to_contain_text(
        {"1": "Бірінші бет", "2": "Екінші бет"}[str(shown)])
    assert not errors, errors
    context.close()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_restricted_copy_shows_the_auth_prompt_and_no_pixels(
    browser: Browser, live_server: LiveServer, copies: Copies, viewport: str
) -> None:
    # R6/R10: a visitor who is not signed in gets the prompt, and 0 bytes of images or text.
    context = new_context(browser, viewport)
    page = context.new_page()
    page.set_default_timeout(20_000)
    traffic = Traffic()
    traffic.watch(page)
    bag = copies.readers.bag_id
    page.goto(f"{live_server.url}/copies/{bag}/view?lang=en")
    viewer = page.locator("#iiif-viewer")
    expect(viewer).to_have_attribute("data-state", "auth")
    expect(page.locator("#auth-prompt")).to_be_visible()
    expect(page.locator("#auth-confirm")).to_be_visible()
    expect(page.locator("#mirador")).to_be_hidden()
    expect(page.locator("#ocr")).to_be_hidden()
    page.wait_for_timeout(1000)
    assert not traffic.image_requests(bag), traffic.requests
    for url, status, ctype, size in traffic.responses:
        if ctype.startswith("image/") or "/text" in urlsplit(url).path:
            assert size == 0 or status >= 400, (url, status, ctype, size)
    assert not any(ctype.startswith("image/") and status == 200
                   for _, status, ctype, _s in traffic.responses)
    assert page.locator("#ocr-text").inner_text() == ""
    if viewport == "desktop":
        # Auth Flow 2.0 end to end: the prompt's button opens the access service (sign-in in
        # its own window, which closes itself), the token service answers in an iframe, the
        # probe says yes with the token, and the page comes back with the copy in the viewer.
        with page.expect_popup() as popup_info:
            page.locator("#auth-confirm").click()
        popup = popup_info.value
        popup.locator("#name").fill("T-1001")
        popup.locator("#password").fill(PASSWORD)
        with popup.expect_event("close"):
            popup.locator("button[type=submit]").click()
        expect(viewer).to_have_attribute("data-state", "ready")
        expect(page.locator("#ocr-text")).to_contain_text("Первая страница")
        page.wait_for_timeout(1000)
        assert traffic.image_requests(bag), "signed in, the viewer fetched no image"
    context.close()


def _axe(page: Page) -> list[dict[str, object]]:
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, object]] = page.evaluate(
        """() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations
              .filter(v => v.impact === 'serious' || v.impact === 'critical')
              .map(v => ({id: v.id, impact: v.impact,
                          nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))})))""")
    return found


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_every_reader_page_passes_axe(
    browser: Browser, live_server: LiveServer, copies: Copies, viewport: str
) -> None:
    if not AXE.is_file():
        pytest.fail(f"axe-core is not installed at {AXE} (run infra/install-system)",
                    pytrace=False)
    # axe is injected as a script tag: the test's context lets it past the page's CSP (the
    # pages are checked as served otherwise).
    context = browser.new_context(viewport=VIEWPORTS[viewport],  # type: ignore[arg-type]
                                  bypass_csp=True, locale="kk-KZ")
    page = context.new_page()
    page.set_default_timeout(20_000)
    base = live_server.url
    bag = copies.open.bag_id
    pages = {
        "login": "/login",
        "home": "/",
        "search": f"/search?q={UNIQUE_WORD}",
        "record": f"/copies/{bag}",
        "read": f"/copies/{bag}/read?page=1",
        "view": f"/copies/{bag}/view?page=3&q={UNIQUE_WORD}",
        "view-restricted": f"/copies/{copies.readers.bag_id}/view",
        "error": "/copies/bag-000000000000",
    }
    problems: dict[str, object] = {}
    for lang in ("kk", "en"):
        for name, path in pages.items():
            page.goto(f"{base}{path}{'&' if '?' in path else '?'}lang={lang}")
            if name == "read":
                expect(page.locator("#page-canvas")).to_have_attribute("data-rendered-page", "1")
            if name.startswith("view"):
                expect(page.locator("#iiif-viewer")).to_have_attribute(
                    "data-state", "auth" if name == "view-restricted" else "ready")
                page.wait_for_timeout(1500)
            found = _axe(page)
            if found:
                problems[f"{lang}:{name}"] = found
    assert not problems, problems
    context.close()
