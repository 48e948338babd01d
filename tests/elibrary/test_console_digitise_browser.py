"""The operator's digitisation queue in Debian's headless Chromium: launch ``qor digitise`` on a
scans folder of the server, watch its progress live on the orchestration server (the test
services' Prefect), read each page's result as ``qor digitise --json`` reports it; folders
outside the scans root refused (R10); other roles refused (403, nothing launched)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import Error as PlaywrightError
from sqlalchemy import select

from catalog_sync import audit, register
from catalog_sync.models import AuditEntry, DigitalCopy, Item
from flows.capture.samples import write_sample_batch
from tests.elibrary.conftest import ConsoleServer
from tests.elibrary.library import PASSWORD
from tests.elibrary.test_console_browser import ROLE_OF, chain_intact, recent, sign_in
from tests.elibrary.test_viewer_browser import AXE, _axe

INVENTORY = "KZ-SCAN-000001"
FOLDER = "KZ-SCAN-000001-batch"


def _scans(server: ConsoleServer) -> Path:
    return server.register.root / "scans"


def _runs_dir(server: ConsoleServer) -> Path:
    return server.register.root / "console-runs"


def _launches(server: ConsoleServer) -> set[str]:
    runs = _runs_dir(server)
    return {p.name for p in runs.iterdir()} if runs.is_dir() else set()


def _audit_head(server: ConsoleServer) -> int:
    with server.register.sessions() as s:
        return audit.log_head(s).seq


@pytest.fixture(scope="module")
def scan_folder(console_server: ConsoleServer) -> Path:
    """A batch of three scans on the server: page 1 turned a quarter (the flow turns it back),
    pages 1–2 skewed (straightened), page 3 a blank sheet with a smudge (no words: flagged
    below the confidence gate). Its item is in the register."""
    folder = _scans(console_server) / FOLDER
    write_sample_batch(folder, pages=2, rotations=[90, 0], angles=[1.2, -0.9])
    blank = Image.new("L", (1748, 2480), 250)
    ImageDraw.Draw(blank).ellipse((800, 1100, 860, 1160), fill=120)
    blank.save(folder / "page-0003.png", dpi=(300, 300))
    with console_server.register.sessions() as s, s.begin():
        register.add_item(s, inventory_number=INVENTORY, title="Абай жолы (scans)",
                          actor="test", language="kaz", year=1942)
    return folder


def _watch(page: Page, *, timeout_s: float) -> list[tuple[str, str, str]]:
    """The run page's (state, orchestration state, percent) every half second until the run
    has ended (the page reloads itself then)."""
    seen: list[tuple[str, str, str]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            row = (page.locator("#run-state").inner_text(timeout=5_000),
                   page.locator("#run-flow-state").inner_text(timeout=5_000),
                   page.locator("#run-percent").inner_text(timeout=5_000))
        except PlaywrightError:  # the page is reloading: ask again
            time.sleep(0.2)
            continue
        if not seen or seen[-1] != row:
            seen.append(row)
        if row[0] != "running":
            return seen
        time.sleep(0.5)
    pytest.fail(f"the run did not end within {timeout_s} s: {seen}", pytrace=False)


def test_operator_digitises_a_scans_folder_watches_it_and_reads_each_page(
    browser: Browser, console_server: ConsoleServer, scan_folder: Path
) -> None:
    context, page = sign_in(browser, console_server, ROLE_OF["operator"])
    page.get_by_role("link", name="Digitisation jobs").click()
    page.get_by_label("Inventory number").fill(INVENTORY)
    page.get_by_label("Folder (under the scans root)").fill(FOLDER)
    page.get_by_role("button", name="Digitise").click()
    expect(page).to_have_url(re.compile(r"/staff/jobs/runs/[0-9a-f]{16}$"))
    run_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Digitisation of {INVENTORY}")

    seen = _watch(page, timeout_s=300)
    states = [s for s, _flow, _pct in seen]
    assert states[-1] == "completed", (seen, page.locator("#run-log").all_inner_texts())
    # Live: while the command ran, the page showed its flow run on the orchestration server
    # (found by the command's pid in the run's name), without a reload by the operator.
    assert any(s == "running" and flow == "Running" for s, flow, _pct in seen), seen
    expect(page.locator("#run-percent")).to_have_text("100%")
    expect(page.locator("#run-progress")).to_have_attribute("value", "100.0")

    # The page shows what `qor digitise --json` printed, page by page.
    printed = json.loads((_runs_dir(console_server) / f"{run_id}.out.json").read_text("utf-8"))
    reports = printed["page_reports"]
    assert [p["label"] for p in reports] == ["page-0001", "page-0002", "page-0003"]
    rows = page.locator("#pages tbody tr")
    expect(rows).to_have_count(3)
    cells = [r.split("\t") for r in rows.all_inner_texts()]
    for cell, rep in zip(cells, reports, strict=True):
        assert cell[0] == rep["label"]
        assert cell[2] == (f"{rep['rotation']}°" if rep["rotation"] else "—")
        assert cell[3] == (f"{rep['deskew_deg']:+.2f}°" if rep["deskew_deg"] else "—")
        assert cell[4] == f"{rep['mean_confidence']:.1f}"
        assert cell[6] == ("below the gate" if rep["below_gate"] else "—")
    assert reports[0]["rotation"] == 90  # the quarter-turned scan was turned back
    assert reports[1]["deskew_deg"] != 0  # the skewed scan was straightened
    assert reports[2]["below_gate"] and not reports[0]["below_gate"]
    expect(page.locator("#flagged")).to_contain_text("page-0003")
    expect(page.locator("#summary-pages")).to_have_text("3")

    # The launch is in the hash-chained audit log, under the operator's name.
    assert "digitise.launch" in recent(page)[0] and INVENTORY in recent(page)[0]
    with console_server.register.sessions() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "digitise.launch")
                          .order_by(AuditEntry.seq.desc())).first()
        assert entry is not None and entry.actor == "staff:erlan"
        assert json.loads(entry.after or "{}")["run"] == run_id
        copy = s.scalar(select(DigitalCopy).join(Item).where(
            Item.inventory_number == INVENTORY))
        assert copy is not None and copy.bag_id == printed["bag_id"]
    chain_intact(console_server)

    # The jobs page lists the launch, completed, with the live figures' script.
    page.get_by_role("link", name="All digitisation jobs").click()
    row = page.locator(f'#launches tr[data-run="{run_id}"]')
    expect(row.locator(".run-state")).to_have_text("completed")
    expect(row.locator(".run-progress")).to_have_text("100%")
    expect(page.locator("#live-status")).to_have_text("Updated live")

    context.close()

    # axe-core on the queue and the run page in the three languages (axe is injected as a
    # script, so this context lets it past the pages' CSP).
    if not AXE.is_file():
        pytest.fail(f"axe-core is not installed at {AXE} (run infra/install-system)",
                    pytrace=False)
    context = browser.new_context(bypass_csp=True, locale="kk-KZ")
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{console_server.url}/staff/login")
    page.locator("#name").fill(ROLE_OF["operator"])
    page.locator("#password").fill(PASSWORD)
    page.locator("form[action='/staff/login'] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/staff$"))
    problems = {}
    for lang in ("kk", "ru", "en"):
        for path in ("/staff/jobs", f"/staff/jobs/runs/{run_id}"):
            page.goto(f"{console_server.url}{path}?lang={lang}")
            found = _axe(page)
            if found:
                problems[f"{lang}:{path}"] = found
    assert not problems, problems
    page.goto(f"{console_server.url}/staff/jobs/runs/{run_id}?lang=kk")
    expect(page.locator("#run-state")).to_have_text("аяқталды")
    context.close()


def test_a_folder_outside_the_scans_root_is_refused(
    browser: Browser, console_server: ConsoleServer, scan_folder: Path, tmp_path: Path
) -> None:
    # R10: the console makes the server read nothing outside the scans root.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    Image.new("L", (100, 100), 255).save(outside / "secret.png")
    scans = _scans(console_server)
    (scans / "link-out").symlink_to(outside, target_is_directory=True)
    mixed = scans / "mixed-batch"
    mixed.mkdir()
    (mixed / "page-0001.png").symlink_to(outside / "secret.png")

    context, page = sign_in(browser, console_server, ROLE_OF["operator"])
    before = (_launches(console_server), _audit_head(console_server))
    cases = {
        "../": "is outside the scans root",
        f"{FOLDER}/../../": "is outside the scans root",
        str(outside): "is outside the scans root",
        "link-out": "is a symbolic link out of the scans root",
        "mixed-batch": "page-0001.png in the folder mixed-batch is a symbolic link out",
        "no-such-batch": "There is no folder no-such-batch under the scans root",
    }
    for asked, words in cases.items():
        page.goto(f"{console_server.url}/staff/jobs?lang=en")
        page.get_by_label("Inventory number").fill(INVENTORY)
        page.get_by_label("Folder (under the scans root)").fill(asked)
        with page.expect_response(re.compile(r"/staff/jobs/digitise$")) as answer:
            page.get_by_role("button", name="Digitise").click()
        assert answer.value.status == 400, asked
        expect(page.locator("#error")).to_contain_text(words)
        expect(page.get_by_label("Folder (under the scans root)")).to_have_value(asked)
    # An unknown item is refused too, before anything starts.
    page.get_by_label("Inventory number").fill("KZ-NOT-THERE")
    page.get_by_label("Folder (under the scans root)").fill(FOLDER)
    page.get_by_role("button", name="Digitise").click()
    expect(page.locator("#error")).to_contain_text("There is no item KZ-NOT-THERE")
    # In Russian, the page says it in Russian.
    page.goto(f"{console_server.url}/staff/jobs?lang=ru")
    page.locator("#inventory").fill(INVENTORY)
    page.locator("#folder").fill("../")
    page.locator("#launch-form button").click()
    expect(page.locator("#error")).to_contain_text("вне корневой папки сканов")
    assert (_launches(console_server), _audit_head(console_server)) == before
    context.close()


@pytest.mark.parametrize("role", ["librarian", "preservation", "statistician", "admin"])
def test_other_roles_cannot_launch_or_watch_digitisation(
    browser: Browser, console_server: ConsoleServer, scan_folder: Path, role: str
) -> None:
    context, page = sign_in(browser, console_server, ROLE_OF[role])
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    before = (_launches(console_server), _audit_head(console_server))
    r = page.request.post(f"{console_server.url}/staff/jobs/digitise",
                          form={"csrf_token": token, "inventory": INVENTORY, "folder": FOLDER})
    assert r.status == 403
    for path in ("/staff/jobs", "/staff/jobs/live.json", "/staff/jobs/runs/0123456789abcdef",
                 "/staff/jobs/runs/0123456789abcdef.json"):
        r = page.request.get(f"{console_server.url}{path}", max_redirects=0)
        assert r.status == 403, (role, path, r.status)
    assert (_launches(console_server), _audit_head(console_server)) == before
    context.close()
