"""The preservation dashboard in Debian's headless Chromium: repair a damaged bag from the
replica (``qor fixity audit --bag``, through the integrity domain's repair), and set each
storage location's deep-check schedule; both in the audit log; other roles refused (403)."""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from catalog_sync import audit
from catalog_sync.models import AuditEntry, AuditSchedule
from integrity.audit import audit_bag, bag_prefix
from integrity.records import record_bag_audit
from storage import FileStore, LocalKeyring
from tests.elibrary.conftest import ConsoleServer
from tests.elibrary.library import PASSWORD
from tests.elibrary.test_console_browser import ROLE_OF, chain_intact, recent, sign_in
from tests.elibrary.test_viewer_browser import AXE, _axe
from tests.integrity.fixity_bags import make_stored_bag, register_bag

BAG = "KZ-FIX-000001-v1-console"
LOST = "data/access/doc.pdf"


def _primary(server: ConsoleServer) -> FileStore:
    # The commands' default store: <data dir>/store (QOR_DATA_DIR is the register's root).
    return FileStore(server.register.root / "store", fsync=False)


@pytest.fixture(scope="module")
def damaged_bag(console_server: ConsoleServer) -> str:
    """A bag stored in the primary store and the replica, registered; one payload object then
    lost from the primary, and a deep audit without repair recording the damage."""
    root = console_server.register.root
    primary, replica = _primary(console_server), FileStore(root / "replica", fsync=False)
    made = make_stored_bag([primary, replica], bag_id=BAG, inventory="KZ-FIX-000001",
                           work=root / "fixity-work", keyring=LocalKeyring(root / "keys"),
                           files={"access/doc.pdf": b"%PDF " * 6000,
                                  "masters/p1.tif": b"II*\x00" * 5000})
    with console_server.register.sessions() as s, s.begin():
        register_bag(s, made, primary.uri)
    (primary.root / bag_prefix(BAG) / LOST).unlink()
    found = audit_bag(primary, BAG, mode="deep", repair=False, inventory_number="KZ-FIX-000001")
    assert LOST in [f.path for f in found.remaining]  # (and the Payload-Oxum no longer adds up)
    with console_server.register.sessions() as s, s.begin():
        record_bag_audit(s, found, run_id="test-damage", actor="test")
    return BAG


def _repair_row(page: Page, server: ConsoleServer, *, timeout_s: float) -> list[str]:
    """The repairs table's first row once its run has ended (the page reloaded meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        page.goto(f"{server.url}/staff/fixity?lang=en")
        cells = page.locator("#repairs tbody tr").first.locator("td").all_inner_texts()
        if cells and cells[2] != "running":
            return cells
        time.sleep(2)
    pytest.fail(f"the repair did not end within {timeout_s} s", pytrace=False)


def test_preservation_officer_repairs_a_damaged_bag_from_the_replica(
    browser: Browser, console_server: ConsoleServer, damaged_bag: str
) -> None:
    context, page = sign_in(browser, console_server, ROLE_OF["preservation"])
    page.get_by_role("link", name="Fixity reports").click()
    row = page.locator(f'#bags tr[data-bag="{damaged_bag}"]')
    expect(row.locator(".outcome")).to_have_text("failure")
    row.get_by_role("button", name=f"Repair bag {damaged_bag} from the replica").click()
    expect(page.locator("#repairs tbody tr").first).to_contain_text(damaged_bag)
    assert "fixity.repair" in recent(page)[0] and damaged_bag in recent(page)[0]

    cells = _repair_row(page, console_server, timeout_s=180)
    assert cells[1] == damaged_bag
    assert cells[2:4] == ["completed", "repaired"], cells
    # The report now has the repair audit last: outcome repaired, and no repair button left.
    row = page.locator(f'#bags tr[data-bag="{damaged_bag}"]')
    expect(row.locator(".outcome")).to_have_text("repaired")
    expect(row.get_by_role("button")).to_have_count(0)
    # And the primary store really holds the good object again.
    assert audit_bag(_primary(console_server), damaged_bag, mode="deep",
                     repair=False).failures == ()
    with console_server.register.sessions() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "fixity.repair")
                          .order_by(AuditEntry.seq.desc())).first()
        assert entry is not None and entry.actor == "staff:saule"
        assert entry.entity_key == damaged_bag
    chain_intact(console_server)

    # A bag that is not damaged is not "repaired": refused, nothing launched or logged.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    with console_server.register.sessions() as s:
        head = audit.log_head(s).seq
    r = page.request.post(f"{console_server.url}/staff/fixity/repair",
                          form={"csrf_token": token, "bag": damaged_bag})
    assert r.status == 409 and "nothing to repair" in r.text()
    with console_server.register.sessions() as s:
        assert audit.log_head(s).seq == head
    context.close()


def test_preservation_officer_sets_a_locations_audit_schedule(
    browser: Browser, console_server: ConsoleServer, damaged_bag: str
) -> None:
    location = _primary(console_server).uri
    context, page = sign_in(browser, console_server, ROLE_OF["preservation"])
    page.get_by_role("link", name="Fixity reports").click()
    row = page.locator(f'#schedules tr[data-location="{location}"]')
    expect(row.locator(".every")).to_have_text("30 (setting)")
    row.get_by_label("Every (days)").fill("7")
    row.get_by_role("button", name="Save").click()
    expect(page.locator("#message")).to_contain_text(f"Deep checks of {location}: every 7 days")
    row = page.locator(f'#schedules tr[data-location="{location}"]')
    expect(row.locator(".every")).to_have_text("7")
    expect(row).to_contain_text("staff:saule")
    assert "audit_schedule.set" in recent(page)[0]
    # Another location keeps the setting: one frequency is not forced on all.
    other = page.locator('#schedules tr[data-location="file:///nowhere"] .every')
    expect(other).to_have_text("30 (setting)")

    # Out of range: refused with the reason, nothing written.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    with console_server.register.sessions() as s:
        head = audit.log_head(s).seq
    r = page.request.post(f"{console_server.url}/staff/fixity/schedule",
                          form={"csrf_token": token, "location": location, "every_days": "0"})
    assert r.status == 400 and "1 to 3650 days" in r.text()
    with console_server.register.sessions() as s:
        assert audit.log_head(s).seq == head
        sched = s.get(AuditSchedule, location)
        assert sched is not None and sched.deep_every_days == 7

    # In Kazakh, then back to the setting.
    page.goto(f"{console_server.url}/staff/fixity?lang=kk")
    expect(page.locator("#schedules-h")).to_have_text("Әр сақтау орнының тексеру кестесі")
    page.goto(f"{console_server.url}/staff/fixity?lang=en")
    row = page.locator(f'#schedules tr[data-location="{location}"]')
    row.get_by_role("button", name="Follow the setting").click()
    expect(page.locator("#message")).to_contain_text("follows the setting")
    expect(page.locator(f'#schedules tr[data-location="{location}"] .every')).to_have_text(
        "30 (setting)")
    with console_server.register.sessions() as s:
        actions = s.scalars(select(AuditEntry.action).where(
            AuditEntry.entity == "audit_schedule").order_by(AuditEntry.seq)).all()
        assert actions[-2:] == ["audit_schedule.set", "audit_schedule.clear"]
        after = s.scalars(select(AuditEntry.after).where(
            AuditEntry.action == "audit_schedule.set")).all()
        assert json.loads(after[-1] or "{}") == {"store_uri": location, "deep_every_days": 7}
    chain_intact(console_server)

    if not AXE.is_file():
        pytest.fail(f"axe-core is not installed at {AXE} (run infra/install-system)",
                    pytrace=False)
    context.close()
    context = browser.new_context(bypass_csp=True, locale="kk-KZ")
    page = context.new_page()
    page.goto(f"{console_server.url}/staff/login")
    page.locator("#name").fill(ROLE_OF["preservation"])
    page.locator("#password").fill(PASSWORD)
    page.locator("form[action='/staff/login'] button[type=submit]").click()
    page.wait_for_url(f"{console_server.url}/staff")
    problems = {}
    for lang in ("kk", "ru", "en"):
        page.goto(f"{console_server.url}/staff/fixity?lang={lang}")
        found = _axe(page)
        if found:
            problems[lang] = found
    assert not problems, problems
    context.close()


@pytest.mark.parametrize("role", ["operator", "librarian", "statistician", "admin"])
def test_other_roles_cannot_repair_or_schedule(
    browser: Browser, console_server: ConsoleServer, damaged_bag: str, role: str
) -> None:
    context, page = sign_in(browser, console_server, ROLE_OF[role])
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    with console_server.register.sessions() as s:
        head = audit.log_head(s).seq
    runs = console_server.register.root / "console-runs"
    before = set(runs.iterdir()) if runs.is_dir() else set()
    for path, fields in (("/staff/fixity/repair", {"bag": damaged_bag}),
                         ("/staff/fixity/schedule", {"location": _primary(console_server).uri,
                                                     "every_days": "1"})):
        r = page.request.post(f"{console_server.url}{path}", form={"csrf_token": token, **fields})
        assert r.status == 403, (role, path, r.status)
    with console_server.register.sessions() as s:
        assert audit.log_head(s).seq == head
    assert (set(runs.iterdir()) if runs.is_dir() else set()) == before
    context.close()
