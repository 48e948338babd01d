"""The compliance report (R1–R16): a register kept by the rules passes every clause; each clause,
broken in a fixture the way a careless hand or a tamperer would, is reported as failing, with the
evidence that says why."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from catalog_sync import circulation, compliance, legal_deposit, readers, register
from catalog_sync.calendar_kz import KazakhCalendar
from catalog_sync.db import session_factory
from catalog_sync.models import ItemStatus, ServicePointKind
from elibrary.accounts import create_staff_account
from elibrary.compliance import CHECKS as ELIBRARY_CHECKS
from elibrary.library import enter_library
from elibrary.models import Rights

from .conftest import fresh_engine

TODAY = date(2026, 3, 3)
AT = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def _keep(s: Session) -> None:
    """A small register kept by the rules: items processed, lent at a desk and in the reading
    room, one written off by an act, one digitised (encrypted, audited, in the e-library)."""
    rec = register.add_record(s, title="Абай жолы", authors=["Әуезов М."], language="kk",
                              actor="cat")
    batch = register.open_receipt_batch(s, act_number="ACT-1", received_on=date(2025, 1, 9),
                                        actor="acq")
    register.bulk_receive(s, batch=batch, actor="acq", items=[
        register.BulkItem(record_id=rec.id, source="purchase", inventory_number=f"KZ-{n}",
                          barcode=f"BC-{n}", location="Hall-A/S1", status=ItemStatus.AVAILABLE)
        for n in range(1, 6)])
    register.write_off(s, act_number="WO-1", act_date=date(2025, 6, 1), reason="worn",
                       inventory_numbers=["KZ-5"], actor="head")
    readers.add_reader(s, ticket_number="R-1", name="Айгерім", category="adult", actor="desk")
    for code, kind in (("DESK", ServicePointKind.LENDING_DESK),
                       ("ROOM", ServicePointKind.READING_ROOM)):
        circulation.add_service_point(s, code=code, name=code, kind=kind, actor="admin")
    circulation.check_out(s, item_code="BC-1", ticket_number="R-1", service_point="DESK",
                          actor="desk", at=AT)
    circulation.check_out(s, item_code="BC-2", ticket_number="R-1", service_point="ROOM",
                          actor="desk", at=AT)
    circulation.check_out(s, item_code="BC-3", ticket_number="R-1", service_point="DESK",
                          actor="desk", at=AT)
    circulation.check_in(s, item_code="BC-3", actor="desk", at=AT)
    copy = register.add_digital_copy(
        s, inventory_number="KZ-4", bag_id="qor-KZ-4-v1", store_uri="file:///bags/qor-KZ-4-v1",
        version=1, kek_id="kek-1", wrapped_key=b"\x01" * 40, pdfa_verdict="PDF/A-2u",
        ocr_confidence=0.95, payload_bytes=2048, file_count=4, actor="op", at=AT)
    register.record_copy_event(s, copy=copy, event_type="fixity check", outcome="success",
                               detail="deep", agent="qor-fixity", at=AT)
    enter_library(s, copy, default_rights=Rights.READERS, actor="op")
    create_staff_account(s, username="aigul", role="librarian", password="s3cret-pass-word",
                         actor="test")


@pytest.fixture(scope="module")
def kept(register_engine: Engine) -> Engine:
    with session_factory(register_engine)() as s:
        _keep(s)
        s.commit()
    return register_engine


@pytest.fixture
def s(kept: Engine) -> Iterator[Session]:
    with session_factory(kept)() as session:
        yield session
        session.rollback()


@pytest.fixture(scope="module")
def kept_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The same register on SQLite, where the breaking SQL below is written for."""
    engine, _ = fresh_engine("sqlite", tmp_path_factory.mktemp("compliance"), "unused")
    with session_factory(engine)() as session:
        _keep(session)
        session.commit()
    yield engine
    engine.dispose()


def _report(s: Session) -> dict[str, compliance.Row]:
    report = compliance.compliance_report(s, today=TODAY, extra=ELIBRARY_CHECKS)
    return {r.clause.code: r for r in report.rows}


def test_a_register_kept_by_the_rules_passes_every_clause(s: Session) -> None:
    rows = _report(s)
    assert list(rows) == [f"R{n}" for n in range(1, 17)]
    assert {c: (r.status, r.result.violations) for c, r in rows.items()} == {
        c: ("pass", ()) for c in rows}
    assert rows["R15"].result.evidence["loans_by_service_point"] == {"lending_desk": 2,
                                                                    "reading_room": 1}


def _sql(*statements: str) -> Callable[[Session], None]:
    def run(s: Session) -> None:
        for statement in statements:
            s.execute(text(statement))
    return run


def _uncopied(s: Session) -> None:
    register.add_digital_copy(
        s, inventory_number="KZ-3", bag_id="qor-KZ-3-v1", store_uri="file:///bags/qor-KZ-3-v1",
        version=1, kek_id="kek-1", wrapped_key=b"\x01" * 40, pdfa_verdict="PDF/A-2u",
        ocr_confidence=0.9, payload_bytes=1, file_count=1, actor="op")


def _late_deposit(s: Session) -> None:
    legal_deposit.register_publication(s, title="Жыл кітабы", publisher="Фолиант",
                                       form="paper", first_printed=date(2025, 1, 15),
                                       actor="deposit", calendar=KazakhCalendar())


def _failed_fixity(s: Session) -> None:
    register.record_copy_event(s, copy="qor-KZ-4-v1", event_type="fixity check",
                               outcome="failure", detail="1 file changed", agent="qor-fixity")


BREAKS: dict[str, Callable[[Session], None]] = {
    "R1": _sql("UPDATE alembic_version SET version_num = '0003_elibrary'"),
    "R2": _sql("UPDATE bib_records SET material_type = 'painting'"),
    "R3": _sql("DROP TRIGGER audit_log_append_only",
               "UPDATE audit_log SET actor = 'nobody' WHERE seq = 2"),
    "R4": _sql("INSERT INTO issued_inventory_numbers (inventory_number) VALUES ('KZ-GONE')"),
    "R5": _sql("UPDATE items SET source = NULL WHERE inventory_number = 'KZ-4'"),
    "R6": _uncopied,
    "R7": _late_deposit,
    "R8": _sql("UPDATE items SET barcode = NULL WHERE inventory_number = 'KZ-1'"),
    "R9": _sql("UPDATE write_off_acts SET act_date = '2024-01-01'"),
    "R10": _sql("UPDATE item_circulation SET armed = 0 WHERE item_id = "
                "(SELECT id FROM items WHERE inventory_number = 'KZ-3')"),
    "R11": _sql("UPDATE elibrary_staff_accounts SET role = 'visitor'"),
    "R12": _sql("UPDATE items SET status = 'in_repair' WHERE inventory_number = 'KZ-4'"),
    "R13": _failed_fixity,
    "R14": _sql("DROP TRIGGER items_inventory_number_immutable"),
    "R15": _sql("UPDATE loans SET due_on = '2026-03-20' WHERE service_point_id = "
                "(SELECT id FROM service_points WHERE code = 'ROOM')"),
    "R16": _sql("UPDATE loans SET due_on = '2026-01-10' WHERE returned_at IS NULL AND "
                "service_point_id = (SELECT id FROM service_points WHERE code = 'DESK')"),
}


@pytest.mark.parametrize("clause", list(BREAKS))
def test_each_broken_clause_is_reported_failing(kept_sqlite: Engine, clause: str) -> None:
    with session_factory(kept_sqlite)() as s:
        assert _report(s)[clause].status == "pass"
        BREAKS[clause](s)
        row = _report(s)[clause]
        s.rollback()
    assert row.status == "fail", row.result
    assert row.result.violation_count >= 1 and row.result.violations


def test_report_in_three_languages(s: Session) -> None:
    _late_deposit(s)
    report = compliance.compliance_report(s, today=TODAY, extra=ELIBRARY_CHECKS)
    assert report.failing == ("R7",)
    assert "сәйкес емес" in compliance.report_html(report, language="kk")
    assert "не соответствует" in compliance.report_csv(report, language="ru")
    page = compliance.report_html(report, language="en")
    assert 'class="fail"><th scope="row">R7</th>' in page and "Фолиант" in page
    with pytest.raises(compliance.RegisterError):
        compliance.report_html(report, language="de")


def test_every_test_the_report_names_exists() -> None:
    root = Path(__file__).resolve().parents[2]
    named = {t for c in compliance.CLAUSES for t in c.tests}
    assert named and all((root / t).is_file() for t in named), sorted(
        t for t in named if not (root / t).is_file())
