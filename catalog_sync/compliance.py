"""The compliance report (сәйкестік есебі · отчёт о соответствии): clause by clause, R1–R16 of the
Rules for forming, preserving and using the library fund, what Qor enforces, the tests that prove
it, and evidence from this register — counts, the last events, and open violations (an overdue
legal deposit copy, an unprocessed item lent, a loan row that no longer matches the audit log…).

:func:`compliance_report` runs every check on one session (read only: it never writes and never
commits). Checks that need tables above the register's layer (the e-library's, for R6 and R11)
are passed in by the caller as ``extra`` (see :mod:`elibrary.compliance`); without them those
clauses say *not checked*. :func:`report_html` and :func:`report_csv` write the report in
Kazakh, Russian or English.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from sqlalchemy import and_, func, not_, or_, select, text
from sqlalchemy.orm import Session

from catalog_sync import audit, legal_deposit, register, vocabulary
from catalog_sync.errors import RegisterError
from catalog_sync.models import (
    ActionKind,
    AuditEntry,
    BibRecord,
    CopyEvent,
    DebtStep,
    DigitalCopy,
    IssuedInventoryNumber,
    Item,
    ItemAction,
    ItemCirculation,
    ItemStatus,
    Loan,
    MaterialType,
    ReceiptBatch,
    ServicePoint,
    ServicePointKind,
    Stocktake,
    WriteOffAct,
)

LANGUAGES: Final = ("kk", "ru", "en")
MAX_LISTED: Final = 50
"""Violations listed per clause (the count is always complete)."""


def _t3(kk: str, ru: str, en: str) -> Mapping[str, str]:
    return {"kk": kk, "ru": ru, "en": en}


#: Every kind of open violation, worded in kk/ru/en (``{name}`` fields are filled from the
#: register: inventory numbers, bag ids, dates — printed as they are).
VIOLATIONS: Final[Mapping[str, Mapping[str, str]]] = {
    "schema": _t3(
        "тізілім схемасы {current} нұсқасында, {heads} емес: 'qor register upgrade' іске "
        "қосыңыз (қорғау триггерлері болмауы мүмкін)",
        "схема реестра в версии {current}, а не {heads}: выполните 'qor register upgrade' "
        "(защитные триггеры могут отсутствовать)",
        "the register's schema is at {current}, not {heads}: run 'qor register upgrade' "
        "(guards may be missing)"),
    "material": _t3(
        "{id} жазбасы ({title}): құжат түрі {material!r} R2 тізімінде жоқ",
        "запись {id} ({title}): вид документа {material!r} не из перечня R2",
        "record {id} ({title}) has material type {material!r}, not one of R2's"),
    "audit": _t3("аудит журналының {seq} жазбасы: {kind} — {detail}",
                 "запись журнала аудита {seq}: {kind} — {detail}",
                 "audit entry {seq}: {kind} — {detail}"),
    "vanished": _t3(
        "{n} данасына инвентарлық нөмір берілген, бірақ оның жазбасы жоқ (жойылған)",
        "экземпляру {n} был присвоен инвентарный номер, но его запись исчезла (удалена)",
        "item {n} was given an inventory number but its row is gone (deleted)"),
    "act_mismatch": _t3(
        "{n} данасы: «есептен шығарылған» күйі мен есептен шығару акті сәйкес емес",
        "экземпляр {n}: статус «списан» и акт списания не совпадают",
        "item {n}: written-off status and write-off act disagree"),
    "bad_source": _t3(
        "{n} данасы: түсу көзі {source!r} рұқсат етілгендердің ішінде жоқ ({allowed})",
        "экземпляр {n}: источник {source!r} не из допустимых ({allowed})",
        "item {n}: source {source!r} is not one of {allowed}"),
    "no_source": _t3("{n} данасы: түсу көзі көрсетілмеген",
                     "экземпляр {n}: источник комплектования не указан",
                     "item {n}: no source of acquisition recorded"),
    "not_in_elibrary": _t3(
        "{bag} цифрлық көшірмесі электрондық кітапханада жоқ: оқырман оған қашықтан қол "
        "жеткізе алмайды",
        "цифровой копии {bag} нет в электронной библиотеке: читатели не могут получить её "
        "удалённо",
        "digital copy {bag} is not in the e-library: no reader can reach it remotely"),
    "deposit_overdue": _t3("{title} ({publisher}) → {recipient}: мерзімі {due}, түспеді",
                           "{title} ({publisher}) → {recipient}: срок {due}, не поступил",
                           "{title} ({publisher}) → {recipient}: due {due}, not received"),
    "lent_unprocessed": _t3(
        "{n} данасы берілген, бірақ кітапханалық өңдеуден өтпеген (штрихкод/RFID жоқ)",
        "экземпляр {n} выдан, но не прошёл библиотечную обработку (нет штрихкода/RFID)",
        "item {n} is lent but was never processed (no barcode/RFID)"),
    "unmarked": _t3(
        "{n} данасы қорда штрихкодсыз/RFID-сіз немесе сақтау орнынсыз тұр",
        "экземпляр {n} числится в фонде без штрихкода/RFID или места хранения",
        "item {n} is in the fund without a barcode/RFID or a shelf location"),
    "write_off_before_receipt": _t3(
        "{n} данасы: {act} есептен шығару акті түсу күнінен бұрын жасалған (жиынтық есеп "
        "кітабы теңеспейді)",
        "экземпляр {n}: акт списания {act} датирован раньше поступления (книга суммарного "
        "учёта не сойдётся)",
        "item {n}: write-off act {act} is dated before its receipt (the summary book cannot "
        "balance)"),
    "tag_armed": _t3(
        "{n} данасы ({status}): қорғау белгісі қосулы — өшірілуі тиіс",
        "экземпляр {n} ({status}): защитная метка активна — должна быть снята",
        "item {n} ({status}): security tag armed — it should be disarmed"),
    "tag_disarmed": _t3(
        "{n} данасы ({status}): қорғау белгісі өшірулі — қосылуы тиіс",
        "экземпляр {n} ({status}): защитная метка снята — должна быть активна",
        "item {n} ({status}): security tag disarmed — it should be armed"),
    "staff_role": _t3(
        "{user} қызметкер тіркелгісінің рөлі {role!r}, рұқсат етілгендердің ішінде жоқ "
        "({roles})",
        "у учётной записи сотрудника {user} роль {role!r}, не из допустимых ({roles})",
        "staff account {user} has role {role!r}, not one of {roles}"),
    "repair_not_open": _t3(
        "{n} данасы жөндеуде, бірақ ашық жөндеу, қайта түптеу немесе жаңғырту жазбасы жоқ",
        "экземпляр {n} в ремонте, но нет открытой записи о ремонте, переплёте или реставрации",
        "item {n} is in repair but no repair, rebinding or restoration is open"),
    "fixity_failed": _t3("{bag} цифрлық көшірмесі: соңғы тұтастықты тексеру сәтсіз аяқталды",
                         "цифровая копия {bag}: последняя проверка целостности не пройдена",
                         "digital copy {bag}: its last fixity check failed"),
    "unkeyed": _t3("{bag} цифрлық көшірмесінің оралған кілті жоқ (шифрланбаған)",
                   "у цифровой копии {bag} нет обёрнутого ключа (не зашифрована)",
                   "digital copy {bag} has no wrapped key (not encrypted)"),
    "guard_missing": _t3(
        "инвентарлық нөмірді өзгертуге жол бермейтін {name} дерекқор қорғанысы жоқ",
        "отсутствует защита базы данных {name}, запрещающая менять инвентарный номер",
        "the database guard {name} that refuses a changed inventory number is missing"),
    "reading_room_day": _t3(
        "{id} беру: оқу залында пайдалану мерзімі {due}, сол күні ({day}) емес",
        "выдача {id}: в читальном зале со сроком {due}, а не в тот же день ({day})",
        "loan {id}: reading-room use due {due}, not the same day ({day})"),
    "ill_partner": _t3("{id} беру: серіктес кітапхана көрсетілмеген кітапханааралық абонемент",
                       "выдача {id}: МБА без указания библиотеки-партнёра",
                       "loan {id}: interlibrary loan without a partner library"),
    "debt_ignored": _t3(
        "{id} берудің мерзімі {due} бастап өткен, бірақ еске салу немесе бұғаттау жазылмаған "
        "('qor debts run' іске қосыңыз)",
        "выдача {id} просрочена с {due}, но напоминания или блокировки не было (выполните "
        "'qor debts run')",
        "loan {id} is overdue since {due} and no reminder or block was recorded "
        "(run 'qor debts run')"),
}


class Violation(str):
    """One open violation (бұзушылық · нарушение). Its value is the English text — what the
    JSON report and scripts read — and it keeps its kind and facts so that :meth:`text`
    words it in Kazakh or Russian for the HTML and CSV reports."""

    key: str
    params: Mapping[str, str]

    def __new__(cls, key: str, **params: object) -> Violation:
        """The violation ``key`` of :data:`VIOLATIONS` with its facts."""
        facts = {k: str(v) for k, v in params.items()}
        self = super().__new__(cls, VIOLATIONS[key]["en"].format(**facts))
        self.key, self.params = key, facts
        return self

    def text(self, language: str) -> str:
        """The violation worded in ``language`` (an item status in it, too)."""
        facts = dict(self.params)
        if "status" in facts:
            facts["status"] = vocabulary.label(vocabulary.STATUS, facts["status"], language)
        return VIOLATIONS[self.key][language].format(**facts)


def violation_text(violation: str, language: str) -> str:
    """``violation`` in ``language`` (a plain string from an older check stays as it is)."""
    return violation.text(language) if isinstance(violation, Violation) else violation


@dataclass(frozen=True)
class Evidence:
    """What a check found: counts and facts (``evidence``), and open ``violations``
    (at most :data:`MAX_LISTED` listed; ``violation_count`` is the full number)."""

    evidence: Mapping[str, Any]
    violations: tuple[str, ...] = ()
    violation_count: int = 0
    checked: bool = True


Check = Callable[[Session, date], Evidence]


@dataclass(frozen=True)
class Clause:
    """One clause: its title and what Qor checks, in kk/ru/en, and the tests that prove it."""

    code: str
    title: Mapping[str, str]
    checks: Mapping[str, str]
    enforced_by: tuple[str, ...]

    @property
    def tests(self) -> tuple[str, ...]:
        """The tests that prove what Qor enforces, and the one that breaks this clause in a
        fixture and sees this report fail it."""
        return (*self.enforced_by, "tests/register/test_compliance.py")


@dataclass(frozen=True)
class Row:
    """One line of the report."""

    clause: Clause
    result: Evidence

    @property
    def status(self) -> str:
        """``pass``, ``fail`` or ``not-checked``."""
        if not self.result.checked:
            return "not-checked"
        return "fail" if self.result.violation_count else "pass"


@dataclass(frozen=True)
class ComplianceReport:
    """The whole report, one row per clause R1–R16."""

    library: str
    today: date
    generated_at: datetime
    rows: tuple[Row, ...]

    @property
    def failing(self) -> tuple[str, ...]:
        """Codes of the clauses that fail."""
        return tuple(r.clause.code for r in self.rows if r.status == "fail")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {
            "library": self.library,
            "today": self.today.isoformat(),
            "generated_at": self.generated_at.isoformat(),
            "failing": list(self.failing),
            "clauses": [
                {"clause": r.clause.code, "title": dict(r.clause.title),
                 "checks": dict(r.clause.checks), "tests": list(r.clause.tests),
                 "status": r.status, "evidence": dict(r.result.evidence),
                 "violation_count": r.result.violation_count,
                 "violations": list(r.result.violations)}
                for r in self.rows
            ],
        }


def _found(evidence: Mapping[str, Any], violations: Sequence[str]) -> Evidence:
    return Evidence(evidence, tuple(violations[:MAX_LISTED]), len(violations))


def _count(session: Session, stmt: Any) -> int:
    return int(session.scalar(stmt) or 0)


# --- the checks -------------------------------------------------------------------------------


def _r1(session: Session, _today: date) -> Evidence:
    # R1: the rules are served by a register whose schema (with its guards) is complete.
    from alembic.script import ScriptDirectory

    from catalog_sync.db import alembic_config

    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    current = {str(v) for v in session.execute(text("SELECT version_num FROM alembic_version"))
               .scalars()}
    problems = [] if current == heads else [
        Violation("schema", current=", ".join(sorted(current)) or "—",
                  heads=", ".join(sorted(heads)))]
    return _found({"schema": ", ".join(sorted(current)),
                   "records": _count(session, select(func.count(BibRecord.id))),
                   "items": _count(session, select(func.count(Item.id)))}, problems)


def _r2(session: Session, _today: date) -> Evidence:
    known = [m.value for m in MaterialType]
    rows = session.execute(
        select(BibRecord.material_type, func.count(BibRecord.id)).group_by(BibRecord.material_type)
    ).all()
    bad = session.execute(
        select(BibRecord.id, BibRecord.title, BibRecord.material_type)
        .where(BibRecord.material_type.not_in(known))
    ).all()
    return _found(
        {"records_by_material": {str(k): int(n) for k, n in rows},
         "legal_deposit_records": _count(session, select(func.count(BibRecord.id))
                                         .where(BibRecord.legal_deposit.is_(True)))},
        [Violation("material", id=i, title=t, material=m) for i, t, m in bad])


def _r3(session: Session, _today: date) -> Evidence:
    problems = [Violation("audit", seq=p.seq, kind=p.kind, detail=p.detail)
                for p in [*audit.verify_log(session), *audit.verify_loans(session)]]
    head = audit.log_head(session)
    last = session.scalar(select(AuditEntry.at).where(AuditEntry.seq == head.seq))
    return _found({"audit_entries": head.entries, "last_entry_at": last or "—"}, problems)


def _r4(session: Session, _today: date) -> Evidence:
    vanished = session.scalars(
        select(IssuedInventoryNumber.inventory_number)
        .where(not_(IssuedInventoryNumber.inventory_number.in_(select(Item.inventory_number))))
    ).all()
    no_act = session.scalars(
        select(Item.inventory_number).where(
            or_(and_(Item.status == ItemStatus.WRITTEN_OFF, Item.write_off_act_id.is_(None)),
                and_(Item.status != ItemStatus.WRITTEN_OFF, Item.write_off_act_id.is_not(None))))
    ).all()
    return _found(
        {"items": _count(session, select(func.count(Item.id))),
         "written_off": _count(session, select(func.count(Item.id))
                               .where(Item.status == ItemStatus.WRITTEN_OFF)),
         "write_off_acts": _count(session, select(func.count(WriteOffAct.id)))},
        [Violation("vanished", n=n) for n in vanished]
        + [Violation("act_mismatch", n=n) for n in no_act])


def _r5(session: Session, _today: date) -> Evidence:
    from catalog_sync.models import AcquisitionSource

    allowed = [s.value for s in AcquisitionSource]
    if not register.is_national_library(session):
        allowed.remove(AcquisitionSource.LEGAL_DEPOSIT.value)
    rows = session.execute(select(Item.source, func.count(Item.id)).group_by(Item.source)).all()
    bad = session.execute(
        select(Item.inventory_number, Item.source)
        .where(or_(Item.source.is_(None), Item.source.not_in(allowed)))
        .order_by(Item.sort_key)
    ).all()
    return _found(
        {"items_by_source": {str(k): int(n) for k, n in rows},
         "national_library": register.is_national_library(session)},
        [Violation("bad_source", n=n, source=s, allowed=", ".join(allowed)) if s else
         Violation("no_source", n=n) for n, s in bad])


def _r7(session: Session, today: date) -> Evidence:
    late = legal_deposit.overdue_obligations(session, today=today)
    from catalog_sync.models import DepositObligation

    return _found(
        {"obligations": _count(session, select(func.count(DepositObligation.id))),
         "received": _count(session, select(func.count(DepositObligation.id))
                            .where(DepositObligation.received_on.is_not(None))),
         "overdue": len(late)},
        [Violation("deposit_overdue", title=ob.publication.title,
                   publisher=ob.publication.publisher, recipient=ob.recipient_code,
                   due=ob.due_on) for ob in late])


_IN_FUND: Final = (ItemStatus.PROCESSED, ItemStatus.AVAILABLE, ItemStatus.ON_LOAN,
                   ItemStatus.IN_REPAIR, ItemStatus.MISSING)


def _r8(session: Session, _today: date) -> Evidence:
    lent_unprocessed = session.scalars(
        select(Item.inventory_number).join(Loan, Loan.item_id == Item.id)
        .where(Loan.returned_at.is_(None),
               or_(Item.status == ItemStatus.RECEIVED,
                   and_(Item.barcode.is_(None), Item.rfid.is_(None))))
    ).all()
    unmarked = session.scalars(
        select(Item.inventory_number).where(
            Item.status.in_([s.value for s in _IN_FUND]),
            or_(and_(Item.barcode.is_(None), Item.rfid.is_(None)), Item.location.is_(None)))
        .order_by(Item.sort_key)
    ).all()
    return _found(
        {"received_not_processed": _count(session, select(func.count(Item.id))
                                          .where(Item.status == ItemStatus.RECEIVED)),
         "in_fund": _count(session, select(func.count(Item.id))
                           .where(Item.status.in_([s.value for s in _IN_FUND])))},
        [Violation("lent_unprocessed", n=n) for n in lent_unprocessed]
        + [Violation("unmarked", n=n) for n in unmarked])


def _r9(session: Session, _today: date) -> Evidence:
    bad = session.execute(
        select(Item.inventory_number, WriteOffAct.act_number)
        .join(WriteOffAct, Item.write_off_act_id == WriteOffAct.id)
        .join(ReceiptBatch, Item.receipt_batch_id == ReceiptBatch.id)
        .where(WriteOffAct.act_date < ReceiptBatch.received_on)
    ).all()
    return _found(
        {"receipt_acts": _count(session, select(func.count(ReceiptBatch.id))),
         "write_off_acts": _count(session, select(func.count(WriteOffAct.id))),
         "inventory_book_lines": _count(session, select(func.count(Item.id)))},
        [Violation("write_off_before_receipt", n=n, act=a) for n, a in bad])


def _r10(session: Session, today: date) -> Evidence:
    from catalog_sync.models import GateEvent

    wrong = session.execute(
        select(Item.inventory_number, Item.status, ItemCirculation.armed)
        .join(ItemCirculation, ItemCirculation.item_id == Item.id)
        .where(or_(and_(Item.status == ItemStatus.ON_LOAN, ItemCirculation.armed.is_(True)),
                   and_(Item.status != ItemStatus.ON_LOAN, ItemCirculation.armed.is_(False))))
    ).all()
    since = datetime.combine(today - timedelta(days=30), time.min, tzinfo=UTC)
    return _found(
        {"gate_reads_30_days": _count(session, select(func.count(GateEvent.id))
                                      .where(GateEvent.at >= since)),
         "gate_alarms_30_days": _count(session, select(func.count(GateEvent.id))
                                       .where(GateEvent.at >= since,
                                              GateEvent.cleared.is_(False)))},
        [Violation("tag_armed" if a else "tag_disarmed", n=n, status=s) for n, s, a in wrong])


_REPAIRS: Final = [ActionKind.REPAIR.value, ActionKind.REBINDING.value,
                   ActionKind.RESTORATION.value]


def _r12(session: Session, _today: date) -> Evidence:
    open_repair = select(ItemAction.item_id).where(ItemAction.finished_at.is_(None),
                                                   ItemAction.kind.in_(_REPAIRS))
    stray = session.scalars(
        select(Item.inventory_number).where(Item.status == ItemStatus.IN_REPAIR,
                                            Item.id.not_in(open_repair))
    ).all()
    return _found(
        {"open_repairs": _count(session, select(func.count(ItemAction.id))
                                .where(ItemAction.finished_at.is_(None),
                                       ItemAction.kind.in_(_REPAIRS))),
         "finished_actions": _count(session, select(func.count(ItemAction.id))
                                    .where(ItemAction.finished_at.is_not(None)))},
        [Violation("repair_not_open", n=n) for n in stray])


def _r13(session: Session, _today: date) -> Evidence:
    last = (select(CopyEvent.copy_id, func.max(CopyEvent.id).label("last_id"))
            .where(CopyEvent.event_type == "fixity check").group_by(CopyEvent.copy_id)
            .subquery())
    failed = session.scalars(
        select(DigitalCopy.bag_id).join(last, last.c.copy_id == DigitalCopy.id)
        .join(CopyEvent, CopyEvent.id == last.c.last_id).where(CopyEvent.outcome != "success")
    ).all()
    unkeyed = session.scalars(
        select(DigitalCopy.bag_id).where(func.length(DigitalCopy.wrapped_key) == 0)).all()
    valuable = or_(Item.value_scientific.is_(True), Item.value_historical.is_(True),
                   Item.value_artistic.is_(True))
    return _found(
        {"digital_copies": _count(session, select(func.count(DigitalCopy.id))),
         "valuable_items": _count(session, select(func.count(Item.id)).where(valuable)),
         "valuable_items_digitised": _count(
             session, select(func.count(func.distinct(Item.id)))
             .join(DigitalCopy, DigitalCopy.item_id == Item.id).where(valuable)),
         "copies_never_audited": _count(
             session, select(func.count(DigitalCopy.id))
             .where(DigitalCopy.id.not_in(select(last.c.copy_id))))},
        [Violation("fixity_failed", bag=b) for b in failed]
        + [Violation("unkeyed", bag=b) for b in unkeyed])


_GUARDS: Final = {"sqlite": "items_inventory_number_immutable", "postgresql": "items_guard"}


def _r14(session: Session, _today: date) -> Evidence:
    dialect = session.get_bind().dialect.name
    name = _GUARDS.get(dialect, "")
    if dialect == "postgresql":
        present = _count(session, text("SELECT count(*) FROM pg_trigger WHERE tgname = :n")
                         .bindparams(n=name))
    else:
        present = _count(session, text("SELECT count(*) FROM sqlite_master WHERE type = "
                                       "'trigger' AND name = :n").bindparams(n=name))
    last = session.execute(
        select(Stocktake.started_at, Stocktake.reason).order_by(Stocktake.started_at.desc())
        .limit(1)).first()
    return _found(
        {"inventory_numbers_issued": _count(session,
                                            select(func.count(IssuedInventoryNumber.inventory_number))),
         "stocktakes": _count(session, select(func.count(Stocktake.id))),
         "last_stocktake": f"{last[0]:%Y-%m-%d} ({last[1]})" if last else "—"},
        [] if present else [Violation("guard_missing", name=name)])


def _r15(session: Session, _today: date) -> Evidence:
    rows = session.execute(
        select(ServicePoint.kind, func.count(Loan.id))
        .join(Loan, Loan.service_point_id == ServicePoint.id).group_by(ServicePoint.kind)
    ).all()
    room = session.execute(
        select(Loan.id, Loan.loaned_at, Loan.due_on)
        .join(ServicePoint, Loan.service_point_id == ServicePoint.id)
        .where(ServicePoint.kind == ServicePointKind.READING_ROOM)
    ).all()
    ill = session.scalars(
        select(Loan.id).join(ServicePoint, Loan.service_point_id == ServicePoint.id)
        .where(ServicePoint.kind == ServicePointKind.INTERLIBRARY,
               Loan.partner_library.is_(None))
    ).all()
    return _found(
        {"loans_by_service_point": {str(k): int(n) for k, n in rows}},
        [Violation("reading_room_day", id=i, due=d, day=f"{a:%Y-%m-%d}")
         for i, a, d in room if d != a.date()]
        + [Violation("ill_partner", id=i) for i in ill])


def _r16(session: Session, today: date) -> Evidence:
    stepped = select(DebtStep.loan_id)
    ignored = session.execute(
        select(Loan.id, Loan.due_on).where(Loan.returned_at.is_(None), Loan.due_on < today,
                                           Loan.id.not_in(stepped)).order_by(Loan.due_on)
    ).all()
    return _found(
        {"overdue_loans": _count(session, select(func.count(Loan.id))
                                 .where(Loan.returned_at.is_(None), Loan.due_on < today)),
         "debt_steps": _count(session, select(func.count(DebtStep.id)))},
        [Violation("debt_ignored", id=i, due=d) for i, d in ignored])


def _not_checked(what: str) -> Check:
    def check(_session: Session, _today: date) -> Evidence:
        return Evidence({"note": what}, checked=False)
    return check


def _t(kk: str, ru: str, en: str) -> Mapping[str, str]:
    return {"kk": kk, "ru": ru, "en": en}


CLAUSES: Final[tuple[Clause, ...]] = (
    Clause("R1", _t("Жалпы ережелер", "Общие положения", "Scope of the rules"),
           _t("Тізілім схемасы соңғы нұсқада (барлық қорғау триггерлері бар)",
              "Схема реестра актуальна (все защитные триггеры установлены)",
              "The register's schema is at the current revision (every guard installed)"),
           ("tests/register/test_schema.py",)),
    Clause("R2", _t("Терминдер: құжат түрлері", "Термины: виды документов",
                    "Terms: kinds of document"),
           _t("Әр жазбаның құжат түрі R2 тізімінен", "Вид каждого документа из перечня R2",
              "Every record has an R2 material type"),
           ("tests/register/test_items.py",)),
    Clause("R3", _t("Қор мемлекет меншігі, қорғалады", "Фонд — государственная собственность",
                    "The fund is state property, protected"),
           _t("Аудит журналы тізбегі бүтін, беру жазбалары журналмен сәйкес",
              "Цепочка журнала аудита цела, записи выдачи совпадают с журналом",
              "The hash-chained audit log is intact and every loan row matches it"),
           ("tests/register/test_audit_log.py", "tests/circulation/test_loan_audit.py")),
    Clause("R4", _t("Қорды иеліктен шығаруға болмайды", "Фонд не отчуждается",
                    "The fund cannot be alienated"),
           _t("Ештеңе жойылмайды; есептен шығару тек акт бойынша",
              "Ничего не удаляется; списание только по акту",
              "Nothing is deleted; items leave only by a write-off act"),
           ("tests/register/test_immutability.py", "tests/test_items_cli.py")),
    Clause("R5", _t("Қорды толықтыру көздері", "Источники комплектования",
                    "Sources of acquisition"),
           _t("Әр данада түсу көзі бар; міндетті дана тек ұлттық кітапханада",
              "У каждого экземпляра указан источник; обязательный экземпляр — только в "
              "национальной библиотеке",
              "Every item records its source; legal deposit only in a national library"),
           ("tests/register/test_items.py",)),
    Clause("R6", _t("Электрондық кітапхана", "Электронная библиотека", "The e-library"),
           _t("Цифрлық көшірмелер электрондық кітапханада қашықтан қолжетімді",
              "Цифровые копии доступны удалённо в электронной библиотеке",
              "Digital copies are served remotely by the e-library"),
           ("tests/elibrary/test_browser.py",)),
    Clause("R7", _t("Міндетті тегін даналар мерзімі", "Сроки обязательного экземпляра",
                    "Legal deposit terms"),
           _t("Мерзімі өткен міндетті даналар жоқ (30 күнтізбелік / 3 жұмыс күні)",
              "Нет просроченных обязательных экземпляров (30 календарных / 3 рабочих дня)",
              "No legal deposit copy overdue (30 calendar / 3 working days)"),
           ("tests/circulation/test_legal_deposit.py",)),
    Clause("R8", _t("Кітапханалық өңдеу", "Библиотечная обработка", "Library processing"),
           _t("Өңделмеген дана берілмейді; қордағы әр данада штрихкод/RFID және орны бар",
              "Необработанные не выдаются; у каждого экземпляра фонда штрихкод/RFID и место",
              "Unprocessed items are not lent; every item in the fund has a barcode/RFID and "
              "a location"),
           ("tests/circulation/test_loans.py", "tests/test_items_cli.py")),
    Clause("R9", _t("Жиынтық және жеке есеп", "Суммарный и индивидуальный учёт",
                    "Summary and individual accounting"),
           _t("Кітаптар теңеседі: есептен шығару түсуден бұрын емес",
              "Книги учёта сходятся: списание не раньше поступления",
              "The books balance: no write-off dated before its receipt"),
           ("tests/register/test_books_property.py",)),
    Clause("R10", _t("Өткізу тәртібі", "Пропускной режим", "Check-pass regime"),
           _t("Берілгенде белгі өшіріледі, қайтарылғанда қосылады",
              "Метка снимается при выдаче и ставится при возврате",
              "Security tags disarmed on loan, armed otherwise"),
           ("tests/circulation/test_loans.py",)),
    Clause("R11", _t("Қор бөлмелерінде көпшілік шаралар жоқ",
                     "Нет массовых мероприятий в фондохранилищах",
                     "No public events in fund rooms"),
           _t("Қызметкерлер тек өз рөлімен кіреді", "Сотрудники входят только со своей ролью",
              "Staff accounts carry one known role each"),
           ("tests/elibrary/test_security.py",)),
    Clause("R12", _t("Қайта қалпына келтіру және жөндеу", "Реставрация и ремонт",
                     "Restoration and repair"),
           _t("Жөндеудегі әр данада ашық жөндеу жазбасы бар",
              "У каждого экземпляра в ремонте есть открытая запись о ремонте",
              "Every item in repair has an open repair action"),
           ("tests/register/test_items.py",)),
    Clause("R13", _t("Цифрлық қор және депозитарлық қойма",
                     "Цифровой фонд и депозитарное хранилище",
                     "Digital fund and depository store"),
           _t("Көшірмелер шифрланған, соңғы тұтастық тексеруі сәтті",
              "Копии зашифрованы, последняя проверка целостности успешна",
              "Copies are encrypted and their last fixity check passed"),
           ("tests/test_fixity_flow.py",)),
    Clause("R14", _t("Инвентарлық нөмір өзгермейді; салыстыру",
                     "Инвентарный номер неизменен; сверка фонда",
                     "Inventory numbers immutable; stocktake"),
           _t("Дерекқор нөмірді өзгертуге жол бермейді; салыстырулар жүргізіледі",
              "База данных запрещает менять номер; сверки проводятся",
              "The database refuses a changed inventory number; stocktakes are recorded"),
           ("tests/register/test_immutability.py", "tests/test_items_cli.py",
            "tests/register/test_stocktake.py")),
    Clause("R15", _t("Қызмет көрсету орындары", "Пункты обслуживания", "Service points"),
           _t("Оқу залы сол күні қайтарылады; КАА серіктесі көрсетілген",
              "Читальный зал — в тот же день; у МБА указан партнёр",
              "Reading-room use ends the same day; interlibrary loans name the partner"),
           ("tests/circulation/test_loans.py",)),
    Clause("R16", _t("Оқырман берешегі", "Читательская задолженность", "Reader debts"),
           _t("Әр берешек бойынша еске салу немесе бұғаттау жасалды",
              "По каждой задолженности было напоминание или блокировка",
              "Every overdue loan has had a reminder or block"),
           ("tests/circulation/test_debts.py",)),
)

CHECKS: Final[Mapping[str, Check]] = {
    "R1": _r1, "R2": _r2, "R3": _r3, "R4": _r4, "R5": _r5,
    "R6": _not_checked("checked by the e-library (elibrary.compliance)"),
    "R7": _r7, "R8": _r8, "R9": _r9, "R10": _r10,
    "R11": _not_checked("checked by the e-library's staff accounts (elibrary.compliance)"),
    "R12": _r12, "R13": _r13, "R14": _r14, "R15": _r15, "R16": _r16,
}


def compliance_report(
    session: Session, *, today: date, extra: Mapping[str, Check] | None = None
) -> ComplianceReport:
    """Run every clause's check (``extra`` replaces or adds checks by clause code)."""
    from catalog_sync.models import utcnow

    checks = {**CHECKS, **(extra or {})}
    rows = tuple(Row(c, checks[c.code](session, today)) for c in CLAUSES)
    return ComplianceReport(register.library_name(session), today, utcnow(), rows)


# --- output -----------------------------------------------------------------------------------

_LABELS: Final[Mapping[str, Mapping[str, str]]] = {
    "kk": {"title": "Сәйкестік есебі (R1–R16)", "clause": "Тармақ", "checks": "Qor тексереді",
           "evidence": "Дәлел", "status": "Нәтиже", "tests": "Тесттер",
           "violations": "Бұзушылықтар", "pass": "сәйкес", "fail": "сәйкес емес",
           "not-checked": "тексерілмеді", "date": "Күні", "more": "тағы"},
    "ru": {"title": "Отчёт о соответствии (R1–R16)", "clause": "Пункт",
           "checks": "Что проверяет Qor", "evidence": "Свидетельства", "status": "Итог",
           "tests": "Тесты", "violations": "Нарушения", "pass": "соответствует",
           "fail": "не соответствует", "not-checked": "не проверено", "date": "Дата",
           "more": "ещё"},
    "en": {"title": "Compliance report (R1–R16)", "clause": "Clause",
           "checks": "What Qor checks", "evidence": "Evidence", "status": "Result",
           "tests": "Tests", "violations": "Violations", "pass": "pass", "fail": "fail",
           "not-checked": "not checked", "date": "Date", "more": "more"},
}


def _language(language: str) -> Mapping[str, str]:
    if language not in _LABELS:
        raise RegisterError(
            f"report language {language!r} is not one of {', '.join(LANGUAGES)}")
    return _LABELS[language]


#: The evidence's names as people read them (the JSON keeps the English keys).
EVIDENCE: Final[Mapping[str, Mapping[str, str]]] = {
    "schema": _t3("схема нұсқасы", "версия схемы", "schema"),
    "records": _t3("жазбалар", "записей", "records"),
    "items": _t3("даналар", "экземпляров", "items"),
    "records_by_material": _t3("құжат түрлері бойынша жазбалар", "записи по видам документов",
                               "records by material"),
    "legal_deposit_records": _t3("міндетті дана жазбалары", "записи обязательного экземпляра",
                                 "legal deposit records"),
    "audit_entries": _t3("аудит журналының жазбалары", "записей журнала аудита",
                         "audit entries"),
    "last_entry_at": _t3("соңғы жазба", "последняя запись", "last entry at"),
    "written_off": _t3("есептен шығарылған", "списано", "written off"),
    "write_off_acts": _t3("есептен шығару актілері", "актов списания", "write-off acts"),
    "items_by_source": _t3("түсу көздері бойынша даналар", "экземпляры по источникам",
                           "items by source"),
    "national_library": _t3("ұлттық кітапхана", "национальная библиотека", "national library"),
    "copies_by_rights": _t3("құқықтар бойынша көшірмелер", "копии по правам доступа",
                            "copies by rights"),
    "served_copies_not_indexed": _t3("индекстелмеген қолжетімді көшірмелер",
                                     "доступные копии без индекса",
                                     "served copies not indexed"),
    "obligations": _t3("міндеттемелер", "обязательств", "obligations"),
    "received": _t3("түсті", "поступило", "received"),
    "overdue": _t3("мерзімі өткен", "просрочено", "overdue"),
    "received_not_processed": _t3("түсті, өңделмеген", "поступило, не обработано",
                                  "received, not processed"),
    "in_fund": _t3("қорда", "в фонде", "in fund"),
    "receipt_acts": _t3("түгендеу актілері", "актов поступления", "receipt acts"),
    "inventory_book_lines": _t3("инвентарлық кітап жолдары", "строк инвентарной книги",
                                "inventory book lines"),
    "gate_reads_30_days": _t3("30 күндегі қақпа оқулары", "считываний на воротах за 30 дней",
                              "gate reads, 30 days"),
    "gate_alarms_30_days": _t3("30 күндегі қақпа дабылдары", "тревог на воротах за 30 дней",
                               "gate alarms, 30 days"),
    "staff_by_role": _t3("рөлдер бойынша қызметкерлер", "сотрудники по ролям",
                         "staff by role"),
    "open_repairs": _t3("ашық жөндеулер", "открытых ремонтов", "open repairs"),
    "finished_actions": _t3("аяқталған жұмыстар", "завершённых работ", "finished actions"),
    "digital_copies": _t3("цифрлық көшірмелер", "цифровых копий", "digital copies"),
    "valuable_items": _t3("құнды даналар", "ценных экземпляров", "valuable items"),
    "valuable_items_digitised": _t3("цифрландырылған құнды даналар",
                                    "оцифровано ценных экземпляров",
                                    "valuable items digitised"),
    "copies_never_audited": _t3("бірде-бір рет тексерілмеген көшірмелер",
                                "копий без единой проверки", "copies never audited"),
    "inventory_numbers_issued": _t3("берілген инвентарлық нөмірлер",
                                    "выдано инвентарных номеров", "inventory numbers issued"),
    "stocktakes": _t3("салыстырмалы тексерулер", "сверок фонда", "stocktakes"),
    "last_stocktake": _t3("соңғы салыстырмалы тексеру", "последняя сверка", "last stocktake"),
    "loans_by_service_point": _t3("қызмет көрсету орындары бойынша берулер",
                                  "выдачи по пунктам обслуживания",
                                  "loans by service point"),
    "overdue_loans": _t3("мерзімі өткен берулер", "просроченных выдач", "overdue loans"),
    "debt_steps": _t3("берешек бойынша шаралар", "мер по задолженности", "debt steps"),
    "note": _t3("ескерту", "примечание", "note"),
}


def status_label(status: str, language: str) -> str:
    """A row's ``pass``/``fail``/``not-checked`` as the report words it in ``language``."""
    return _language(language)[status]


def _evidence_text(evidence: Mapping[str, Any], language: str = "en") -> str:
    return "; ".join(
        f"{vocabulary.label(EVIDENCE, k, language) if language != 'en' else k}: "
        f"{json.dumps(v, ensure_ascii=False, default=str) if isinstance(v, dict) else v}"
        for k, v in evidence.items())


def report_html(report: ComplianceReport, *, language: str = "kk") -> str:
    """The report as one printable HTML page."""
    t = _language(language)
    e = html.escape
    rows = []
    for r in report.rows:
        listed = "".join(f"<li>{e(violation_text(v, language))}</li>"
                         for v in r.result.violations)
        more = r.result.violation_count - len(r.result.violations)
        if more > 0:
            listed += f"<li>… {t['more']} {more}</li>"
        rows.append(
            f'<tr class="{r.status}"><th scope="row">{r.clause.code}</th>'
            f"<td>{e(r.clause.title[language])}</td><td>{e(r.clause.checks[language])}</td>"
            f"<td>{e(_evidence_text(r.result.evidence, language))}"
            f"{f'<ul>{listed}</ul>' if listed else ''}</td>"
            f"<td>{e(t[r.status])}</td><td>{e(', '.join(r.clause.tests))}</td></tr>")
    return (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        f"<title>{e(t['title'])}</title><style>"
        "body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:4px;vertical-align:top}"
        ".fail{background:#fdd}.pass{background:#efe}</style></head><body>"
        f"<h1>{e(t['title'])}</h1><p>{e(report.library)} · {t['date']}: "
        f"{report.today.isoformat()}</p><table><thead><tr><th>{t['clause']}</th><th></th>"
        f"<th>{t['checks']}</th><th>{t['evidence']} / {t['violations']}</th>"
        f"<th>{t['status']}</th><th>{t['tests']}</th></tr></thead><tbody>{''.join(rows)}"
        "</tbody></table></body></html>")


def report_csv(report: ComplianceReport, *, language: str = "kk") -> str:
    """One line per clause: code, title, what Qor checks, status, evidence, violations. The
    header keys are English and the same in every language (programs read them); the cells a
    person reads (title, checks, status, evidence, violations) are in ``language``."""
    t = _language(language)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["clause", "title", "checks", "status", "evidence", "violation_count",
                "violations", "tests"])
    for r in report.rows:
        w.writerow([r.clause.code, r.clause.title[language], r.clause.checks[language],
                    t[r.status], _evidence_text(r.result.evidence, language),
                    r.result.violation_count,
                    " | ".join(violation_text(v, language) for v in r.result.violations),
                    " ".join(r.clause.tests)])
    return out.getvalue()

