"""R13: selection for digitisation ranks not-yet-digitised items by demand (loans in the last N
months, the holds queue, reading-room use) and value flags, and down-weights items in poor
condition until they are repaired. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from catalog_sync import circulation, register, selection
from catalog_sync.errors import RegisterError
from catalog_sync.models import Item, ItemStatus, ServicePoint, ServicePointKind
from tests.circulation.helpers import make_item, make_point, make_reader
from tests.register.conftest import uid

TODAY = date(2025, 6, 2)
RECENT = datetime(2025, 3, 3, 10, tzinfo=UTC)  # within 12 months of TODAY
LONG_AGO = datetime(2023, 3, 1, 10, tzinfo=UTC)  # outside them
NO_LIMIT = circulation.CirculationPolicy(debt_limit=99)


def use(session: Session, item: Item, point: ServicePoint, *, times: int, at: datetime) -> None:
    """``times`` loans of ``item`` at ``point`` starting at ``at``, each returned the same day."""
    for n in range(times):
        when = at + timedelta(days=2 * n)
        circulation.check_out(
            session,
            item_code=item.inventory_number,
            ticket_number=make_reader(session).ticket_number,
            service_point=point.code,
            actor="desk",
            at=when,
            policy=NO_LIMIT,
        )
        circulation.check_in(
            session, item_code=item.inventory_number, actor="desk", at=when + timedelta(hours=3)
        )


def ranked(session: Session, top: int = 50) -> dict[str, selection.Candidate]:
    return {
        c.inventory_number: c
        for c in selection.rank_for_digitisation(session, today=TODAY, top=top)
    }


def test_demand_and_value_rank_items_and_old_loans_do_not_count(session: Session) -> None:
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    room = make_point(session, ServicePointKind.READING_ROOM)
    lent = make_item(session, title="Лент")
    use(session, lent, desk, times=3, at=RECENT)
    read_in_room = make_item(session, title="Зал")
    use(session, read_in_room, room, times=2, at=RECENT)
    wanted = make_item(session, title="Кезек")
    circulation.check_out(
        session,
        item_code=wanted.inventory_number,
        ticket_number=make_reader(session).ticket_number,
        service_point=desk.code,
        actor="desk",
        at=RECENT,
    )
    for _ in range(2):  # two readers wait for the title while the only copy is out
        circulation.place_hold(
            session,
            ticket_number=make_reader(session).ticket_number,
            item_code=wanted.inventory_number,
            actor="desk",
        )
    precious = make_item(session, title="Қолжазба", value_flags=("historical",))
    forgotten = make_item(session, title="Ескі")
    use(session, forgotten, desk, times=4, at=LONG_AGO)
    session.flush()

    found = ranked(session)
    # lending 3 × 1.0 = 3; reading room 2 × 1.5 = 3; holds 2 × 2.0 (+1 loan) = 5; one flag = 5
    assert found[lent.inventory_number].loans == 3
    assert found[lent.inventory_number].score == pytest.approx(3.0)
    assert found[read_in_room.inventory_number].reading_room_uses == 2
    assert found[read_in_room.inventory_number].loans == 0
    assert found[read_in_room.inventory_number].score == pytest.approx(3.0)
    assert found[wanted.inventory_number].holds == 2
    assert found[wanted.inventory_number].score == pytest.approx(5.0)
    assert found[precious.inventory_number].value_flags == ("historical",)
    assert found[precious.inventory_number].score == pytest.approx(5.0)
    # Loans two years ago are not demand now.
    assert forgotten.inventory_number not in found
    order = [c.inventory_number for c in selection.rank_for_digitisation(session, today=TODAY)]
    assert order.index(wanted.inventory_number) < order.index(lent.inventory_number)
    assert order.index(precious.inventory_number) < order.index(read_in_room.inventory_number)


def test_digitised_and_written_off_items_are_never_selected(session: Session) -> None:
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    scanned = make_item(session, value_flags=("scientific",))
    use(session, scanned, desk, times=2, at=RECENT)
    register.add_digital_copy(
        session,
        inventory_number=scanned.inventory_number,
        bag_id=uid("bag"),
        store_uri="file:///store",
        version=1,
        kek_id="k1",
        wrapped_key=b"\0" * 40,
        pdfa_verdict="pass",
        ocr_confidence=90.0,
        payload_bytes=1,
        file_count=1,
        actor="scan",
    )
    gone = make_item(session, status=ItemStatus.WRITTEN_OFF, value_flags=("artistic",))
    still = make_item(session, value_flags=("scientific",))
    session.flush()
    found = ranked(session, top=10_000)
    assert scanned.inventory_number not in found
    assert gone.inventory_number not in found
    assert still.inventory_number in found


def test_poor_condition_waits_for_repair_then_counts_in_full(session: Session) -> None:
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    worn = make_item(session, condition="poor", value_flags=("historical",))
    use(session, worn, desk, times=5, at=RECENT)
    fine = make_item(session, value_flags=("historical",))
    use(session, fine, desk, times=5, at=RECENT)
    session.flush()
    found = ranked(session, top=10_000)
    assert found[worn.inventory_number].awaiting_repair
    # (5 loans + 1 flag × 5) × 0.2 while it waits; the item in good condition counts in full.
    assert found[worn.inventory_number].score == pytest.approx(2.0)
    assert found[fine.inventory_number].score == pytest.approx(10.0)

    action = register.start_action(session, worn.inventory_number, kind="repair", actor="cons")
    assert ranked(session, top=10_000)[worn.inventory_number].awaiting_repair  # in repair now
    register.finish_action(session, action.id, actor="cons")
    session.flush()
    after = ranked(session, top=10_000)[worn.inventory_number]
    assert not after.awaiting_repair
    assert after.score == pytest.approx(10.0)
    # A loan after the repair does not undo it; a worse condition recorded later does.
    use(session, worn, desk, times=1, at=datetime(2025, 5, 5, 10, tzinfo=UTC))
    assert not ranked(session, top=10_000)[worn.inventory_number].awaiting_repair
    register.update_item(session, worn.inventory_number, condition="damaged", actor="cons")
    session.flush()
    assert ranked(session, top=10_000)[worn.inventory_number].awaiting_repair


def test_work_list_gives_the_digitise_command(session: Session, tmp_path: Path) -> None:
    item = make_item(session, title="Тарих, 1905", value_flags=("historical", "artistic"))
    session.flush()
    top = [c for c in selection.rank_for_digitisation(session, today=TODAY, top=10_000)]
    mine = next(c for c in top if c.inventory_number == item.inventory_number)
    assert mine.command == f"qor digitise PAGES_DIR --inventory {item.inventory_number}"

    selection.write_work_list(top, tmp_path / "list.csv")
    with (tmp_path / "list.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    row = next(r for r in rows if r["inventory_number"] == item.inventory_number)
    assert row["title"] == "Тарих, 1905"
    assert row["value_flags"] == "artistic historical"
    assert row["command"] == mine.command
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))

    selection.write_work_list(top, tmp_path / "list.json")
    data = json.loads((tmp_path / "list.json").read_text(encoding="utf-8"))
    assert data[0]["inventory_number"] == top[0].inventory_number


def test_a_work_list_of_nothing_is_refused(session: Session) -> None:
    with pytest.raises(RegisterError, match="at least one item"):
        selection.rank_for_digitisation(session, today=TODAY, top=0)
