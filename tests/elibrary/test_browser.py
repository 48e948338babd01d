"""The e-library in a real browser: Debian's headless Chromium driven by Playwright.

Sign in; search a Kazakh word that occurs only in one copy's OCR text; open it; the first page
renders (pdf.js draws it: the canvas has ink); jump to the hit's page; sign out.
"""

from __future__ import annotations

import io

from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.elibrary.conftest import UNIQUE_WORD, Copies, LiveServer
from tests.elibrary.library import PASSWORD


def ink(page: Page) -> float:
    """Share of the canvas's pixels that are not white."""
    shot = Image.open(io.BytesIO(page.locator("#page-canvas").screenshot())).convert("L")
    dark = shot.histogram()[:200]  # grey levels 0–199: ink, not paper
    return sum(dark) / (shot.width * shot.height)


def test_reader_signs_in_searches_reads_and_signs_out(
    browser: Browser, live_server: LiveServer, copies: Copies
) -> None:
    context = browser.new_context(locale="kk-KZ")
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(f"{live_server.url}/login?lang=en")
    page.get_by_label("Reader ticket number").fill("T-1001")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in as reader T-1001")).to_be_visible()

    page.get_by_label("Words to find").fill(UNIQUE_WORD.lower())
    page.get_by_role("button", name="Search").click()
    results = page.locator("ol.results > li")
    expect(results).to_have_count(1)
    expect(results.locator("mark")).to_have_text(UNIQUE_WORD)
    expect(results.locator("a.page")).to_have_text("page 3")
    hit_page_url = results.locator("a.page").get_attribute("href")

    results.locator("a.hit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Қазақ даласының тарихы")
    # The pdf.js page is the download route (the viewer has its own tests in
    # test_viewer_browser.py).
    page.get_by_role("link", name="Read or download as PDF").click()
    canvas = page.locator("#page-canvas")
    expect(canvas).to_have_attribute("data-rendered-page", "1")
    expect(page.locator("#status")).to_have_text("Page 1 of 3")
    assert ink(page) > 0.002, "the first page rendered blank"

    assert hit_page_url is not None and "/view?" in hit_page_url and "page=3" in hit_page_url
    page.goto(f"{live_server.url}/copies/{copies.open.bag_id}/read?page=3")
    expect(canvas).to_have_attribute("data-rendered-page", "3")
    expect(page.locator("#status")).to_have_text("Page 3 of 3")
    assert ink(page) > 0.002
    page.get_by_text("Text of this page (OCR)").click()
    expect(page.locator("pre.ocr")).to_contain_text(UNIQUE_WORD)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    r = page.request.get(f"{live_server.url}/copies/{copies.readers.bag_id}/file.pdf")
    assert r.status == 401
    assert not errors, errors
    context.close()
