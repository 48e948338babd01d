"""The staff console's test register: service points, readers, processed items, staff of
every role — all made through the domain API, as the console and the CLI make them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import circulation, db, legal_deposit, readers, register
from catalog_sync.calendar_kz import load_calendar
from catalog_sync.models import utcnow
from elibrary.accounts import create_staff_account
from integrity.audit import BagAudit, FixityFailure
from integrity.records import record_bag_audit
from tests.elibrary.library import PASSWORD

#: One staff member per role (user name → role).
STAFF = {"erlan": "operator", "saule": "preservation", "aliya": "librarian",
         "dana": "statistician", "bolat": "admin"}
STOCK_SCOPE = "Hall-S"
DAMAGED_BAG = "console-damaged-bag"
STOCK_ITEMS = 700
DESK_ITEMS = 5


def barcode(n: int) -> str:
    """The barcode of the n-th stocktake item (EAN-13 shaped)."""
    return f"2{n:012d}"


def desk_barcode(n: int) -> str:
    return f"3{n:012d}"


def circ_barcode(n: int) -> str:
    """The barcode of the n-th item of the holds, interlibrary and write-off tests."""
    return f"4{n:012d}"


#: The reader the holds test keeps a copy for; the desk e-mails them.
HOLD_READER = ("R-2004", "Жанар Әбенова", "zhanar@example.kz")
#: The interlibrary loan service point (R15).
ILL_POINT = "ILL"


@dataclass(frozen=True)
class ConsoleRegister:
    """The register the console tests run on."""

    sessions: sessionmaker[Session]
    root: Path
    desk_items: tuple[str, ...]
    """Inventory numbers of the desk's items (barcodes :func:`desk_barcode` 1..n)."""
    received_item: str
    """An item received but not processed yet (no barcode, no location: R8)."""
    hold_item: str
    """The only copy of its title (barcode :func:`circ_barcode` 1): for the holds test."""
    ill_item: str
    """An item of its own title (barcode :func:`circ_barcode` 2) lent to a partner library."""
    write_off_items: tuple[str, str]
    """Two copies of a worn title (barcodes :func:`circ_barcode` 3 and 4) to write off."""
    lost_item: str
    """A copy (barcode :func:`circ_barcode` 5) the debts test lends long ago, never back."""
    selection: tuple[str, ...]
    """Inventory numbers of the items made to be selected for digitisation (R13), in the order
    the selection must rank them: three value flags (15); two holds and a flag (9); one flag
    (5); two flags but damaged and not repaired (10 × 0.2 = 2)."""
    written_off: str
    """An item of the second receipt act written off by act ``WO-CONSOLE-1`` (R9)."""
    overdue_obligations: tuple[int, ...]
    """Legal-deposit obligations of :data:`LATE_PUBLISHER`'s book, past due with no copy (R7)."""


#: The second receipt act: priced items of several materials and sources, for the summary book.
SECOND_ACT = "ACT-CONSOLE-2"
LATE_PUBLISHER = "«Фолиант» баспасы"


def make_console_register(root: Path) -> ConsoleRegister:
    engine = db.make_engine(f"sqlite:///{root / 'register.sqlite3'}")
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    with sessions() as s, s.begin():
        circulation.add_service_point(s, code="DESK", name="Abonement", kind="lending_desk",
                                      actor="test")
        circulation.add_service_point(s, code="ROOM", name="Reading room 1",
                                      kind="reading_room", actor="test")
        circulation.add_service_point(s, code=ILL_POINT, name="Interlibrary loans",
                                      kind="interlibrary", actor="test")
        for n in (1, 2, 3):
            readers.add_reader(s, ticket_number=f"R-200{n}", name=f"Оқырман {n}",
                               category="adult", actor="test")
        ticket, name, email = HOLD_READER
        readers.add_reader(s, ticket_number=ticket, name=name, category="adult", email=email,
                           actor="test")
        for name, role in STAFF.items():
            create_staff_account(s, username=name, role=role, password=PASSWORD, actor="test")
        batch = register.open_receipt_batch(s, act_number="ACT-CONSOLE-1",
                                            received_on=date(2026, 1, 15), actor="test")
        rec = register.add_record(s, title="Абай жолы", authors=["Әуезов М."], actor="test",
                                  year=1942, language="kaz")
        stock = [register.BulkItem(record_id=rec.id, source="purchase", barcode=barcode(n),
                                   location=f"{STOCK_SCOPE}/S{n % 7}", status="available")
                 for n in range(1, STOCK_ITEMS + 1)]
        register.bulk_receive(s, batch=batch, items=stock, actor="test")
        desk = [register.BulkItem(record_id=rec.id, source="purchase", barcode=desk_barcode(n),
                                  location="Hall-D/S1", status="available")
                for n in range(1, DESK_ITEMS + 1)]
        numbers = register.bulk_receive(s, batch=batch, items=desk, actor="test")
        # Titles of their own: a hold on "Абай жолы" would get one of its 700 copies at once.
        titles = [register.add_record(s, title=t, authors=["Нұрпейісов Ә."], actor="test",
                                      year=1970, language="kaz")
                  for t in ("Қан мен тер", "Ұлпан", "Көне кітап", "Ақбілек")]
        circ = register.bulk_receive(s, batch=batch, items=[
            register.BulkItem(record_id=titles[t].id, source="purchase",
                              barcode=circ_barcode(n), location="Hall-E/S1", status="available")
            for n, t in ((1, 0), (2, 1), (3, 2), (4, 2), (5, 3))], actor="test")
        received = register.bulk_receive(
            s, batch=batch, items=[register.BulkItem(record_id=rec.id, source="donation")],
            actor="test")[0]
        # A stored copy of the last desk item whose last deep audit found a damaged file that
        # could not be repaired (what integrity.audit records for such a bag).
        register.add_digital_copy(
            s, inventory_number=numbers[-1], bag_id=DAMAGED_BAG, store_uri="file:///nowhere",
            version=1, kek_id="test-kek", wrapped_key=b"k" * 40, pdfa_verdict="not checked",
            ocr_confidence=None, payload_bytes=1000, file_count=2, actor="test")
        failure = FixityFailure(bag_id=DAMAGED_BAG, path="data/archival/0001.tif",
                                problem="ChecksumMismatch", message="checksum differs",
                                algorithm="sha256", expected="a" * 64, found="b" * 64)
        now = utcnow()
        record_bag_audit(s, BagAudit(
            bag_id=DAMAGED_BAG, store_uri="file:///nowhere", mode="deep", started_at=now,
            finished_at=now, files_checked=2, bytes_checked=1000, failures=(failure,),
            remaining=(failure,), inventory_number=numbers[-1]), run_id="test-run", actor="test")
    with sessions() as s, s.begin():
        selected, written_off = _books_and_selection(s)
        overdue = _legal_deposit(s)
    return ConsoleRegister(sessions=sessions, root=root, desk_items=tuple(numbers),
                           received_item=received, hold_item=circ[0], ill_item=circ[1],
                           write_off_items=(circ[2], circ[3]), lost_item=circ[4],
                           selection=selected, written_off=written_off,
                           overdue_obligations=overdue)


def _books_and_selection(s: Session) -> tuple[tuple[str, ...], str]:
    """A second receipt act (priced, several materials and sources), one write-off, and the
    items the digitisation selection ranks (R9, R13)."""
    batch = register.open_receipt_batch(s, act_number=SECOND_ACT, received_on=date(2026, 3, 2),
                                        supplier="Фолиант", actor="test")

    def receive(title: str, material: str, source: str, price: str, **kw: object) -> str:
        rec = register.add_record(s, title=title, material_type=material, actor="test")
        item = register.receive_item(s, record=rec, source=source, receipt_batch=batch,
                                     price=price, actor="test", **kw)  # type: ignore[arg-type]
        return item.inventory_number

    three_flags = receive("Қазақ шежіресі", "book", "state_order", "12500.50",
                          value_flags=["scientific", "historical", "artistic"])
    held = receive("Түркістан уалаяты", "book", "exchange", "3000",
                   value_flags=["historical"])
    one_flag = receive("Ою-өрнек", "album", "donation", "800", value_flags=["artistic"])
    damaged = receive("Ескі карталар", "brochure", "state_order", "4500.25",
                      value_flags=["scientific", "historical"], condition="damaged")
    worn = receive("Ескірген анықтамалық", "brochure", "purchase", "150")
    held_record = register.get_item(s, held).record_id
    for ticket in ("R-2002", "R-2003"):
        circulation.place_hold(s, ticket_number=ticket, record_id=held_record, actor="test")
    register.write_off(s, act_number="WO-CONSOLE-1", act_date=date(2026, 6, 10), reason="worn",
                       inventory_numbers=[worn], actor="test")
    return (three_flags, held, one_flag, damaged), worn


def _legal_deposit(s: Session) -> tuple[int, ...]:
    """A paper book past its 30 days with no copy received, and one not yet due (R7)."""
    today = utcnow().date()
    calendar = load_calendar(s)
    late = legal_deposit.register_publication(
        s, title="Дала әуендері", publisher=LATE_PUBLISHER, form="paper",
        first_printed=today - timedelta(days=120), actor="test", calendar=calendar,
        publisher_address="Астана, Абай даңғылы 1")
    legal_deposit.register_publication(
        s, title="Жаңа кітап", publisher="Атамұра", form="paper",
        first_printed=today - timedelta(days=1), actor="test", calendar=calendar)
    return tuple(ob.id for ob in late.obligations)
