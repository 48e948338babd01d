"""The staff console in Debian's headless Chromium: each role's main path (sign in, do the job,
see the audit-log entry), each role refused another role's pages and actions (403, nothing
changed; R10, R11), and the stocktake page taking 600 barcodes typed at 20 per second through a
network that drops requests and answers, recording every one exactly once (R14)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect
from sqlalchemy import func, select

from catalog_sync import audit
from catalog_sync.models import AuditEntry, Item, Loan, StocktakeScan
from elibrary.models import StaffAccount
from tests.elibrary.conftest import ConsoleServer
from tests.elibrary.console_data import (
    DAMAGED_BAG,
    STAFF,
    STOCK_SCOPE,
    barcode,
    desk_barcode,
)
from tests.elibrary.library import PASSWORD
from tests.elibrary.test_viewer_browser import AXE, _axe

ROLE_OF = {role: name for name, role in STAFF.items()}


def sign_in(browser: Browser, server: ConsoleServer, name: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{server.url}/staff/login?lang=en")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    return context, page


def recent(page: Page) -> list[str]:
    """The rows of the page's "your latest entries in the audit log" table."""
    return page.locator("#recent tbody tr").all_inner_texts()


def chain_intact(server: ConsoleServer) -> None:
    with server.register.sessions() as s:
        assert audit.verify_log(s) == []


def test_librarian_lends_renews_and_takes_back_by_scanner(
    browser: Browser, console_server: ConsoleServer
) -> None:
    context, page = sign_in(browser, console_server, ROLE_OF["librarian"])
    page.get_by_role("link", name="Circulation desk").click()
    page.get_by_label("Service point").select_option("DESK")
    # A keyboard-wedge scanner: the characters, then Enter, into the focused field.
    page.get_by_label("Reader ticket number").fill("")
    page.get_by_label("Reader ticket number").press_sequentially("R-2001")
    page.keyboard.press("Enter")
    expect(page.locator("#reader-h")).to_contain_text("R-2001")
    lend = page.get_by_label("Lend: scan the item's barcode")
    expect(lend).to_be_focused()
    page.keyboard.type(desk_barcode(1))
    page.keyboard.press("Enter")
    inv = console_server.register.desk_items[0]
    expect(page.locator("#message")).to_contain_text(f"Lent {inv} to R-2001")
    expect(page.locator("#loans tbody tr")).to_have_count(1)
    expect(page.locator("#loan-count")).to_have_text("1")
    assert "loan.check_out" in recent(page)[0]

    page.get_by_label("Renew: scan the item's barcode").press_sequentially(desk_barcode(1))
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_contain_text(f"Renewed {inv}")
    expect(page.locator("#loans tbody tr td").nth(4)).to_have_text("1")

    page.get_by_label("Return: scan the item's barcode").press_sequentially(desk_barcode(1))
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_contain_text(f"Returned {inv}")
    expect(page.locator("#loan-count")).to_have_text("0")
    actions = [r.split("\t")[2] for r in recent(page)[:3]]
    assert actions == ["loan.close.returned", "loan.renew", "loan.check_out"], actions

    # A refusal is shown, and nothing is lent: an unknown barcode.
    page.get_by_label("Reader ticket number").fill("R-2001")
    page.get_by_role("button", name="Find reader").click()
    page.get_by_label("Lend: scan the item's barcode").press_sequentially("9999999999999")
    page.keyboard.press("Enter")
    expect(page.locator("#error")).to_contain_text("9999999999999")

    with console_server.register.sessions() as s:
        loans = s.scalars(select(Loan).join(Item).where(Item.inventory_number == inv)).all()
        assert len(loans) == 1
        loan = loans[0]
        assert loan.returned_at is not None and loan.renewals == 1
        assert loan.loaned_by == "staff:aliya" and loan.returned_by == "staff:aliya"
        assert loan.service_point.code == "DESK" and loan.reader is not None
        assert loan.reader.ticket_number == "R-2001"
        logged = s.scalars(select(AuditEntry.action).where(
            AuditEntry.entity == "loan", AuditEntry.entity_key == str(loan.id))
            .order_by(AuditEntry.seq)).all()
        assert logged == ["loan.check_out", "loan.renew", "loan.close.returned"]
    chain_intact(console_server)
    context.close()


def test_stocktake_page_records_600_barcodes_typed_at_20_per_second(
    browser: Browser, console_server: ConsoleServer
) -> None:
    context, page = sign_in(browser, console_server, ROLE_OF["librarian"])
    page.get_by_role("link", name="Stocktake").click()
    page.get_by_label("Materially responsible person").fill("Сейітова Ә.")
    page.get_by_label("Scope (a location and everything below it)").fill(STOCK_SCOPE)
    page.get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(r"/staff/stocktake/\d+$"))
    stocktake_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#count-expected")).to_have_text("700")

    # A bad network between the scanner and the server: every 4th request never arrives
    # (dropped in the browser), every 5th that arrives is stored but its answer is lost
    # (the server's connection closes). The page must send again until acknowledged, and
    # the server must not store a re-sent batch twice.
    seen = {"n": 0, "dropped": 0}

    def flaky(route: Route) -> None:
        seen["n"] += 1
        if seen["n"] % 4 == 0:
            seen["dropped"] += 1
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(re.compile(r"/staff/stocktake/\d+/scans$"), flaky)
    codes = [barcode(n) for n in range(1, 601)]
    console_server.lost_answers.every = 5
    # The scanner, in the page: a barcode every 50 ms on the clock (20 per second), its
    # characters into the focused field, then Enter as a key event — what a keyboard-wedge
    # scanner delivers. (Playwright's keystrokes go one protocol round trip per key: on two
    # loaded cores they reach only about 10 barcodes per second.)
    typed_in = page.evaluate(
        """codes => new Promise(done => {
             const input = document.getElementById('scan');
             input.focus();
             const t0 = performance.now();
             let i = 0;
             const scan = () => {
               while (i < codes.length && performance.now() >= t0 + i * 50) {
                 for (const ch of codes[i]) {
                   input.dispatchEvent(new KeyboardEvent('keydown', {key: ch, bubbles: true}));
                   input.value += ch;
                   input.dispatchEvent(new Event('input', {bubbles: true}));
                 }
                 input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
                 i += 1;
               }
               if (i < codes.length) setTimeout(scan, Math.max(0, t0 + i * 50 - performance.now()));
               else done((performance.now() - t0) / 1000);
             };
             scan();
           })""", codes)
    expect(page.locator("#count-scans")).to_have_text("600", timeout=120_000)
    expect(page.locator("#count-queued")).to_have_text("0")
    lost = console_server.lost_answers.lost
    console_server.lost_answers.every = 0
    print(f"600 barcodes typed in {typed_in:.1f} s; {seen['n']} requests, "
          f"{seen['dropped']} dropped, {lost} answers lost")  # shown with pytest -s
    assert seen["dropped"] > 0 and lost > 0, (seen, lost)
    # 20 per second: the 600th barcode 29.95 s after the first (a late timer catches up at
    # once, faster than 20/s).
    assert 29.9 <= typed_in < 31, typed_in

    with console_server.register.sessions() as s:
        stored = s.scalars(select(StocktakeScan.code).where(
            StocktakeScan.stocktake_id == stocktake_id).order_by(StocktakeScan.id)).all()
        batches = s.scalar(select(func.count(AuditEntry.seq)).where(
            AuditEntry.entity == "stocktake_scans",
            AuditEntry.entity_key.like(f"{stocktake_id}:%")))
    assert list(stored) == codes  # all 600, each once, in the order typed
    assert batches is not None and batches >= 1
    expect(page.locator("#count-found")).to_have_text("600")
    expect(page.locator("#count-missing")).to_have_text("100")

    page.unroute(re.compile(r"/staff/stocktake/\d+/scans$"))
    page.get_by_role("button", name="Close and make the act").click()
    expect(page.get_by_role("heading", name="Missing (100)")).to_be_visible()
    assert any("stocktake.close" in r for r in recent(page))
    chain_intact(console_server)
    context.close()


def test_admin_opens_a_staff_account_that_signs_in_with_its_role(
    browser: Browser, console_server: ConsoleServer
) -> None:
    context, page = sign_in(browser, console_server, ROLE_OF["admin"])
    page.get_by_role("link", name="Staff accounts").click()
    page.get_by_label("User name").fill("gulnar")
    page.get_by_label("Role").select_option("statistician")
    page.get_by_label("Password").fill("a-long-enough-password")
    page.get_by_role("button", name="Open the account").click()
    expect(page.locator("#message")).to_contain_text("gulnar (statistician) created")
    expect(page.locator("#accounts")).to_contain_text("gulnar")
    assert "staff.create" in recent(page)[0] and "role=statistician" in recent(page)[0]
    context.close()
    with console_server.register.sessions() as s:
        account = s.scalar(select(StaffAccount).where(StaffAccount.username == "gulnar"))
        assert account is not None and account.role == "statistician"
    chain_intact(console_server)


#: Each role's own pages and one action it may take (path, form fields).
PAGES = {
    "librarian": ["/staff/desk", "/staff/stocktake", "/staff/catalogue", "/staff/readers"],
    "preservation": ["/staff/fixity", "/staff/fixity/report.html"],
    "operator": ["/staff/jobs"],
    "statistician": ["/staff/reports", "/staff/reports/compliance.json"],
    "admin": ["/staff/admin/accounts"],
}
ACTIONS = {
    "librarian": ("/staff/desk/out", {"ticket": "R-2002", "point": "DESK",
                                      "barcode": desk_barcode(2)}),
    "admin": ("/staff/admin/accounts", {"username": "intruder", "role": "admin",
                                        "password": "a-long-enough-password"}),
    "operator": ("/staff/jobs/digitise", {"inventory": "KZ-000001", "folder": "batch"}),
}
#: More of the librarian's actions each other role is refused.
LIBRARIAN_ACTIONS = [
    ("/staff/desk/in", {"point": "DESK", "barcode": desk_barcode(2)}),
    ("/staff/stocktake", {"reason": "loss", "responsible": "X", "scope": "Hall-S"}),
    ("/staff/readers", {"ticket": "R-9999", "name": "Intruder", "category": "adult"}),
    ("/staff/readers/R-2001/password", {"password": "a-long-enough-password"}),
]


def _state(server: ConsoleServer) -> tuple[int, int, int]:
    with server.register.sessions() as s:
        head = audit.log_head(s)
        return (head.seq, int(s.scalar(select(func.count(Loan.id))) or 0),
                int(s.scalar(select(func.count(StaffAccount.id))) or 0))


@pytest.mark.parametrize("role", list(ROLE_OF))
def test_a_role_cannot_reach_another_roles_pages_or_actions(
    browser: Browser, console_server: ConsoleServer, role: str
) -> None:
    context, page = sign_in(browser, console_server, ROLE_OF[role])
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    before = _state(console_server)
    for other, paths in PAGES.items():
        for path in paths:
            r = page.request.get(f"{console_server.url}{path}?lang=en", max_redirects=0)
            assert r.status == (200 if other == role else 403), (role, path, r.status)
            if other != role and "." not in path.rsplit("/", 1)[1]:
                page.goto(f"{console_server.url}{path}?lang=en")
                expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    refused = [(p, f) for other, (p, f) in ACTIONS.items() if other != role]
    if role != "librarian":
        refused += LIBRARIAN_ACTIONS
    for path, fields in refused:
        r = page.request.post(f"{console_server.url}{path}",
                              form={"csrf_token": token, **fields})
        assert r.status == 403, (role, path, r.status)
    assert _state(console_server) == before  # nothing changed: no entry, no loan, no account
    context.close()


def test_librarian_edits_and_processes_an_item_but_never_its_inventory_number(
    browser: Browser, console_server: ConsoleServer
) -> None:
    inv = console_server.register.desk_items[2]
    context, page = sign_in(browser, console_server, ROLE_OF["librarian"])
    page.get_by_role("link", name="Catalogue").click()
    page.get_by_label("Inventory number, barcode, RFID tag or words of the title").fill(
        desk_barcode(3))
    page.keyboard.press("Enter")
    page.locator("#items").get_by_role("link", name=inv).click()
    page.locator("#f-shelf_mark").fill("84(5Каз)")
    page.locator("#f-condition").fill("fair")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#history")).to_contain_text("shelf_mark: None → 84(5Каз)")
    assert any("item" in r and inv in r for r in recent(page)[:2])

    # Library processing (R8) of a received item: the desk refuses it until then.
    fresh = console_server.register.received_item
    page.goto(f"{console_server.url}/staff/catalogue/{fresh}")
    expect(page.locator("#item-status")).to_have_text("received")
    page.locator("#p-barcode").fill("5000000000001")
    page.locator("#p-location").fill("Hall-D/S9")
    page.locator("#p-rfid").fill("E280-0001")
    page.get_by_role("button", name="Process and put on the shelf").click()
    expect(page.locator("#history")).to_contain_text("Hall-D/S9")
    expect(page.locator("#item-status")).to_have_text("available")
    page.goto(f"{console_server.url}/staff/catalogue/{inv}")

    # R14: the inventory number is not in the form, and a forged field is refused.
    assert page.locator("input[name=inventory_number]").count() == 0
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    before = _state(console_server)
    r = page.request.post(f"{console_server.url}/staff/catalogue/{inv}/edit",
                          form={"csrf_token": token or "", "inventory_number": "KZ-FORGED"})
    assert r.status == 409
    assert _state(console_server) == before
    with console_server.register.sessions() as s:
        item = s.scalar(select(Item).where(Item.inventory_number == inv))
        assert item is not None and item.shelf_mark == "84(5Каз)" and item.condition == "fair"
        item = s.scalar(select(Item).where(Item.inventory_number == fresh))
        assert item is not None and item.status == "available"
        assert (item.barcode, item.rfid, item.location) == ("5000000000001", "E280-0001",
                                                            "Hall-D/S9")
        assert s.scalar(select(Item).where(Item.inventory_number == "KZ-FORGED")) is None
    chain_intact(console_server)
    context.close()


def test_librarian_registers_a_reader_opens_the_account_and_resets_its_password(
    browser: Browser, console_server: ConsoleServer
) -> None:
    context, page = sign_in(browser, console_server, ROLE_OF["librarian"])
    page.get_by_role("link", name="Readers").click()
    page.get_by_label("Reader ticket number", exact=True).fill("R-3001")
    page.get_by_label("Name", exact=True).fill("Жанар Сәрсенова")
    page.get_by_label("Category").select_option("student")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Жанар Сәрсенова (R-3001)")
    page.get_by_label("Password").fill("first-password-1")
    page.get_by_role("button", name="Open the account").click()
    expect(page.locator("#message")).to_contain_text("can now sign in")
    page.get_by_label("New password").fill("second-password-2")
    page.get_by_role("button", name="Reset the password").click()
    expect(page.locator("#message")).to_contain_text("New password set")
    actions = [r.split("\t")[2] for r in recent(page)[:3]]
    assert actions == ["reader.password_reset", "reader.account_create", "reader.add"], actions
    context.close()

    # The reader signs in to the e-library with the new password, not the old one.
    reader = browser.new_context(locale="en-GB")
    rp = reader.new_page()
    for password, ok in (("first-password-1", False), ("second-password-2", True)):
        rp.goto(f"{console_server.url}/login?lang=en")
        rp.get_by_label("Reader ticket number").fill("R-3001")
        rp.get_by_label("Password").fill(password)
        rp.get_by_role("button", name="Sign in").click()
        signed_in = rp.get_by_text("Signed in as reader R-3001")
        if ok:
            expect(signed_in).to_be_visible()
        else:
            expect(rp.get_by_text("Wrong ticket number")).to_be_visible()
    reader.close()
    chain_intact(console_server)


def test_preservation_officer_sees_the_damaged_bag_first(
    browser: Browser, console_server: ConsoleServer
) -> None:
    context, page = sign_in(browser, console_server, ROLE_OF["preservation"])
    page.get_by_role("link", name="Fixity reports").click()
    expect(page.locator("#fixity-unrepaired")).to_have_text("1")
    row = page.locator("#failures tbody tr").first
    expect(row).to_contain_text(DAMAGED_BAG)
    expect(row).to_contain_text("data/archival/0001.tif")
    expect(row).to_contain_text("NOT REPAIRED")
    r = page.request.get(f"{console_server.url}/staff/fixity/report.html")
    assert r.status == 200 and DAMAGED_BAG in r.text()
    context.close()


def test_statistician_reads_the_compliance_and_debt_reports(
    browser: Browser, console_server: ConsoleServer
) -> None:
    before = _state(console_server)
    context, page = sign_in(browser, console_server, ROLE_OF["statistician"])
    page.get_by_role("link", name="Reports").click()
    rows = page.locator("#compliance tbody tr")
    expect(rows).to_have_count(16)
    expect(rows.first).to_contain_text("R1")
    r = page.request.get(f"{console_server.url}/staff/reports/compliance.json")
    assert r.status == 200
    clauses = {c["clause"]: c["status"] for c in r.json()["clauses"]}
    assert len(clauses) == 16
    shown = {r.split("\t")[0]: r.split("\t")[2] for r in rows.all_inner_texts()}
    assert shown == clauses  # the page shows the same verdicts as the file
    expect(page.locator("#debt-total")).to_have_text("0")
    assert _state(console_server) == before  # read-only: nothing written
    context.close()


def test_operator_lists_the_digitisation_jobs(
    browser: Browser, console_server: ConsoleServer
) -> None:
    context, page = sign_in(browser, console_server, ROLE_OF["operator"])
    page.get_by_role("link", name="Digitisation jobs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Digitisation jobs")
    expect(page.locator("#jobs caption")).to_contain_text("Running and recent runs")
    context.close()


#: The console's pages per role, for axe-core.
AXE_PAGES = {
    "librarian": ["/staff", "/staff/desk?ticket=R-2001", "/staff/stocktake",
                  "/staff/catalogue?q=Абай", "/staff/catalogue/{desk}", "/staff/readers?q=R",
                  "/staff/readers/R-2001"],
    "preservation": ["/staff/fixity"],
    "operator": ["/staff/jobs"],
    "statistician": ["/staff/reports"],
    "admin": ["/staff/admin/accounts"],
}


def test_console_pages_pass_axe(browser: Browser, console_server: ConsoleServer) -> None:
    if not AXE.is_file():
        pytest.fail(f"axe-core is not installed at {AXE} (run infra/install-system)",
                    pytrace=False)
    problems: dict[str, object] = {}
    for role, paths in AXE_PAGES.items():
        context = browser.new_context(bypass_csp=True, locale="kk-KZ")
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{console_server.url}/staff/login")
        found = _axe(page)
        if found:
            problems["login"] = found
        page.locator("#name").fill(ROLE_OF[role])
        page.locator("#password").fill(PASSWORD)
        page.locator("form[action='/staff/login'] button[type=submit]").click()
        page.wait_for_url(re.compile(r"/staff$"))
        if role == "librarian":  # a stocktake to open the scanning page, and an error page
            page.goto(f"{console_server.url}/staff/stocktake")
            page.locator("#responsible").fill("Axe")
            page.locator("#scope").fill("Hall-D")
            page.locator("#start-form button").click()
            page.wait_for_url(re.compile(r"/staff/stocktake/\d+$"))
            paths = [*paths, page.url.split(console_server.url, 1)[1], "/staff/jobs"]
        for lang in ("kk", "ru", "en"):
            for path in paths:
                path = path.format(desk=console_server.register.desk_items[3])
                page.goto(f"{console_server.url}{path}{'&' if '?' in path else '?'}lang={lang}")
                if path.startswith("/staff/desk"):  # the console speaks kk, ru and en
                    expect(page.get_by_role("heading", level=1)).to_have_text(
                        {"kk": "Кітап беру үстелі", "ru": "Кафедра выдачи",
                         "en": "Circulation desk"}[lang])
                found = _axe(page)
                if found:
                    problems[f"{role}:{lang}:{path}"] = found
        context.close()
    assert not problems, problems


def test_console_forms_refuse_a_missing_or_foreign_anti_forgery_token(
    browser: Browser, console_server: ConsoleServer
) -> None:
    """Every console form carries the anti-forgery token: the librarian's own session without
    it, or with another browser's, changes nothing."""
    context, page = sign_in(browser, console_server, ROLE_OF["librarian"])
    other, other_page = sign_in(browser, console_server, ROLE_OF["librarian"])
    foreign = other_page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    before = _state(console_server)
    for token in ("", "0" * 64, foreign):
        for path, fields in [ACTIONS["librarian"], *LIBRARIAN_ACTIONS]:
            r = page.request.post(f"{console_server.url}{path}",
                                  form={"csrf_token": token, **fields})
            assert r.status == 403, (path, token[:8], r.status)
            assert "did not come from this site" in r.text()
    assert _state(console_server) == before
    context.close()
    other.close()
