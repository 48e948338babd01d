"""Fixity audit schedules per storage location: each location's bags are deep-checked at its own
interval by the scheduled audit, the others at ``fixity_deep_every_days``; every change is in the
hash-chained audit log; ``qor fixity schedule`` lists and sets them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from catalog_sync import audit, db, register
from catalog_sync.models import AuditEntry
from integrity.schedules import ScheduleRefused, due_bags, location_schedules, set_schedule
from qor.cli import app
from tests.conftest import qor_environment

FAST = "file:///srv/qor/fast-disk"
COLD = "s3://cold-tier/qor"


def _sessions(path: Path) -> sessionmaker[Session]:
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    return db.session_factory(engine)


def _fill(sessions: sessionmaker[Session]) -> None:
    """Three bags on a fast disk, three on a cold tier, all stored today (never checked)."""
    with sessions() as s, s.begin():
        for n, uri in enumerate([FAST] * 3 + [COLD] * 3, start=1):
            inv = f"KZ-SCH-{n:03d}"
            register.add_item(s, inventory_number=inv, title=f"Item {n}", actor="test")
            register.add_digital_copy(
                s, inventory_number=inv, bag_id=f"bag-{n}", store_uri=uri, version=1,
                kek_id="k", wrapped_key=b"k" * 40, pdfa_verdict="not checked",
                ocr_confidence=None, payload_bytes=10, file_count=1, actor="test")


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    made = _sessions(tmp_path / "register.sqlite3")
    _fill(made)
    return made


def test_each_location_is_deep_checked_at_its_own_interval(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as s:
        # Everything at the setting (30 days): a thirtieth of each location a day, rounded up.
        assert len(due_bags(s, default_every_days=30)) == 2
        set_schedule(s, FAST, 1, actor="staff:saule")
        s.commit()  # the caller owns the transaction
        # The fast disk daily (all three), the cold tier still at the setting (one of three).
        due = due_bags(s, default_every_days=30)
        assert sorted(due) == ["bag-1", "bag-2", "bag-3", "bag-4"]
        shown = {r.store_uri: (r.every_days, r.own, r.bags) for r in
                 location_schedules(s, default_every_days=30)}
        assert shown == {FAST: (1, True, 3), COLD: (30, False, 3)}
        set_schedule(s, FAST, None, actor="staff:saule")  # back to the setting
        s.commit()
        assert len(due_bags(s, default_every_days=30)) == 2
        entries = s.execute(select(AuditEntry.action, AuditEntry.actor, AuditEntry.after)
                            .where(AuditEntry.entity == "audit_schedule")
                            .order_by(AuditEntry.seq)).all()
        assert [(a, who) for a, who, _ in entries] == [
            ("audit_schedule.set", "staff:saule"), ("audit_schedule.clear", "staff:saule")]
        assert json.loads(entries[0][2] or "{}") == {"store_uri": FAST, "deep_every_days": 1}
        assert audit.verify_log(s) == []


def test_a_schedule_is_refused_for_an_unknown_location_or_a_bad_interval(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as s:
        head = audit.log_head(s).seq
        for uri, days in ((FAST, 0), (FAST, 3651), ("s3://nobody/here", 7)):
            with pytest.raises(ScheduleRefused):
                set_schedule(s, uri, days, actor="staff:saule")
            s.rollback()
        assert audit.log_head(s).seq == head
        assert all(not r.own for r in location_schedules(s, default_every_days=30))


def test_qor_fixity_schedule_lists_and_sets(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _fill(_sessions(data / "register.sqlite3"))
    runner = CliRunner()
    with qor_environment(data, actor="saule"):
        set_out = runner.invoke(app, ["fixity", "schedule", COLD, "--every-days", "180",
                                      "--json"])
        assert set_out.exit_code == 0, set_out.output
        listed = runner.invoke(app, ["fixity", "schedule", "--json"])
        refused = runner.invoke(app, ["fixity", "schedule", "s3://nobody/here",
                                      "--every-days", "7"])
    rows = {r["store_uri"]: (r["every_days"], r["own"], r["set_by"])
            for r in json.loads(listed.stdout)}
    assert rows == {FAST: (30, False, None), COLD: (180, True, "saule")}
    assert refused.exit_code == 2 and "no bag is stored at" in refused.output


def test_the_scheduled_audit_checks_each_location_at_its_interval(tmp_path: Path) -> None:
    """``qor fixity audit --due``'s work (flows.fixity.audit_with_settings, scheduled): real
    bags in two file stores; the one scheduled daily has every bag checked, the other (at the
    30-day setting) a thirtieth of its bags, rounded up."""
    from flows.fixity import audit_with_settings
    from qor import wiring
    from qor.settings import load_settings
    from storage import FileStore
    from tests.integrity.fixity_bags import make_stored_bag, register_bag

    with qor_environment(tmp_path / "data", fixity_deep_every_days="30"):
        settings = load_settings()
        daily, monthly = (FileStore(tmp_path / name, fsync=False) for name in ("daily", "monthly"))
        with wiring.register_session(settings) as s:
            for n, store in enumerate([daily, daily, monthly, monthly], start=1):
                made = make_stored_bag([store], bag_id=f"KZ-D{n}-v1-b", inventory=f"KZ-D{n}",
                                       work=tmp_path / "w", keyring=wiring.keyring(settings),
                                       files={"access/doc.pdf": bytes([n]) * 2000})
                register_bag(s, made, store.uri)
            set_schedule(s, daily.uri, 1, actor="staff:saule")
        run = audit_with_settings(settings, mode="deep", scheduled=True)
    checked = sorted(b.bag_id for b in run.bags)
    assert checked[:2] == ["KZ-D1-v1-b", "KZ-D2-v1-b"]
    assert len(checked) == 3 and checked[2] in ("KZ-D3-v1-b", "KZ-D4-v1-b")
    assert all(b.outcome == "success" for b in run.bags)
