"""Legal deposit (басылымның міндетті тегін данасы · обязательный бесплатный экземпляр, R7).

A publication (publisher, first-printing date, form) creates one obligation per active
recipient that receives its form — by default the national libraries and the National State
Book Chamber for paper, the Book Chamber for electronic (``deposit_recipients``, editable). Each
obligation's due date comes from :func:`catalog_sync.calendar_kz.term_end` and is stored with
the reason in words, which the claim letter repeats. A receipt closes the obligation; when this
library is the recipient and is national, the copy enters the fund with source
``legal_deposit`` (R5). :func:`write_claims` writes claim letters (талап хат · претензия) for
overdue obligations in Kazakh and Russian, as HTML and PDF (:func:`issue_claim` for one
obligation, as the staff console does); each claim is recorded in the audit log.
"""

from __future__ import annotations

import html
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from fpdf import FPDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_sync import audit, register
from catalog_sync.calendar_kz import KazakhCalendar, term_end
from catalog_sync.errors import ClaimLetterNotFound, DepositError
from catalog_sync.models import (
    AcquisitionSource,
    DepositClaim,
    DepositForm,
    DepositObligation,
    DepositRecipient,
    Item,
    Publication,
    ReceiptBatch,
)

logger = logging.getLogger(__name__)

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
)


def recipients(
    session: Session, *, form: DepositForm | str | None = None
) -> list[DepositRecipient]:
    """Active recipients, of one form if given."""
    rows = session.scalars(
        select(DepositRecipient)
        .where(DepositRecipient.active.is_(True))
        .order_by(DepositRecipient.code)
    ).all()
    if form is None:
        return list(rows)
    wanted = DepositForm(form)
    return [r for r in rows if wanted in r.form_set]


def due_dates(
    session: Session,
    *,
    form: DepositForm | str,
    first_printed: date,
    calendar: KazakhCalendar,
    move_off_days: bool = True,
) -> list[tuple[DepositRecipient, date, str]]:
    """Each recipient's due date and its reason for a publication of ``form``
    (``qor deposit due``)."""
    end = term_end(form, first_printed, calendar, move_off_days=move_off_days)
    return [(r, end.due_on, end.reason) for r in recipients(session, form=form)]


def register_publication(
    session: Session,
    *,
    title: str,
    publisher: str,
    form: DepositForm | str,
    first_printed: date,
    actor: str,
    calendar: KazakhCalendar,
    publisher_email: str | None = None,
    publisher_address: str | None = None,
    isbn: str | None = None,
    move_off_days: bool = True,
) -> Publication:
    """Register a publication and create its obligations with due dates (R7)."""
    if not title.strip() or not publisher.strip():
        raise DepositError("a publication needs a title and a publisher")
    what = DepositForm(form)
    owed = due_dates(
        session,
        form=what,
        first_printed=first_printed,
        calendar=calendar,
        move_off_days=move_off_days,
    )
    if not owed:
        raise DepositError(f"no active recipient receives {what.value} copies: configure one")
    pub = Publication(
        title=title.strip(),
        publisher=publisher.strip(),
        publisher_email=publisher_email,
        publisher_address=publisher_address,
        form=what.value,
        first_printed_on=first_printed,
        isbn=isbn,
    )
    session.add(pub)
    session.flush()
    for rec, due, reason in owed:
        session.add(
            DepositObligation(
                publication_id=pub.id, recipient_code=rec.code, due_on=due, due_reason=reason
            )
        )
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="deposit.publication",
        entity="publication",
        key=str(pub.id),
        before=None,
        after={
            "title": pub.title,
            "publisher": pub.publisher,
            "form": pub.form,
            "first_printed_on": first_printed,
            "recipients": [r.code for r, _, _ in owed],
        },
    )
    return pub


def set_this_library(session: Session, code: str, *, actor: str) -> DepositRecipient:
    """Mark which recipient this library is (its receipts enter its own fund)."""
    rec = session.get(DepositRecipient, code)
    if rec is None:
        raise DepositError(f"no deposit recipient {code!r}")
    for other in session.scalars(select(DepositRecipient)):
        other.is_this_library = other.code == code
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="deposit.this_library",
        entity="deposit_recipient",
        key=code,
        before=None,
        after={"is_this_library": True},
    )
    return rec


def register_receipt(
    session: Session,
    obligation_id: int,
    *,
    received_on: date,
    actor: str,
    receipt_batch: ReceiptBatch | str | None = None,
) -> DepositObligation:
    """Record that a recipient received its copy. If the recipient is this library, the copy is
    received into the fund with source ``legal_deposit`` — refused unless the library is
    configured as national (R5) — and needs a ``receipt_batch``."""
    ob = session.get(DepositObligation, obligation_id, with_for_update=True)
    if ob is None:
        raise DepositError(f"no deposit obligation {obligation_id}")
    if ob.received_on is not None:
        raise DepositError(f"obligation {obligation_id} was already received on {ob.received_on}")
    if received_on < ob.publication.first_printed_on:
        raise DepositError(
            f"received {received_on} before the first printing {ob.publication.first_printed_on}"
        )
    item: Item | None = None
    if ob.recipient.is_this_library:
        if receipt_batch is None:
            raise DepositError(
                "a copy received by this library needs a receipt act (receipt_batch)"
            )
        pub = ob.publication
        record = register.add_record(
            session,
            title=pub.title,
            publisher=pub.publisher,
            isbn=pub.isbn,
            material_type="electronic" if pub.form == DepositForm.ELECTRONIC else "book",
            legal_deposit=True,
            actor=actor,
        )
        # R5: receive_item refuses legal_deposit for a library that is not national.
        item = register.receive_item(
            session,
            record=record,
            source=AcquisitionSource.LEGAL_DEPOSIT,
            receipt_batch=receipt_batch,
            actor=actor,
        )
        pub.record_id = record.id
    ob.received_on = received_on
    ob.item_id = None if item is None else item.id
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="deposit.receipt",
        entity="deposit_obligation",
        key=str(ob.id),
        before={"received_on": None},
        after={
            "received_on": received_on,
            "inventory_number": None if item is None else item.inventory_number,
        },
    )
    return ob


def overdue_obligations(session: Session, *, today: date) -> list[DepositObligation]:
    """Obligations past their due date with no receipt, by publisher."""
    return list(
        session.scalars(
            select(DepositObligation)
            .join(Publication)
            .where(DepositObligation.received_on.is_(None), DepositObligation.due_on < today)
            .order_by(Publication.publisher, DepositObligation.due_on, DepositObligation.id)
        )
    )


@dataclass(frozen=True)
class Compliance:
    """One publisher's record: obligations, received on time, received late, overdue, pending."""

    publisher: str
    obligations: int
    on_time: int
    late: int
    overdue: int
    pending: int

    @property
    def rate(self) -> float:
        """Share of obligations due so far that were met on time."""
        due = self.on_time + self.late + self.overdue
        return 1.0 if due == 0 else self.on_time / due


def compliance_report(session: Session, *, today: date) -> list[Compliance]:
    """``qor deposit report``: compliance per publisher."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for ob, publisher in session.execute(
        select(DepositObligation, Publication.publisher).join(Publication)
    ):
        c = counts[publisher]
        c[0] += 1
        if ob.received_on is not None:
            c[1 if ob.received_on <= ob.due_on else 2] += 1
        elif ob.due_on < today:
            c[3] += 1
        else:
            c[4] += 1
    return [Compliance(p, *v) for p, v in sorted(counts.items())]


# --- claim letters ------------------------------------------------------------------------------

_TEXT = {
    "kk": {
        "title": "Талап хат",
        "to": "Кімге",
        "body": (
            "«{title}» басылымының ({form}) міндетті тегін данасы {first} алғаш басылып "
            "шыққаннан кейін {recipient} мекенжайына уақытында келіп түскен жоқ."
        ),
        "due": "Тапсыру мерзімі: {due}. Негіздеме: {reason}.",
        "ask": (
            "Қазақстан Республикасының заңнамасына сәйкес даналарды дереу жіберуіңізді сұраймыз."
        ),
        "forms": {"paper": "қағаз түрінде", "electronic": "электрондық түрде"},
        "recipient": "name_kk",
    },
    "ru": {
        "title": "Претензия",
        "to": "Кому",
        "body": (
            "Обязательный бесплатный экземпляр издания «{title}» ({form}), впервые "
            "отпечатанного {first}, не поступил в {recipient} в установленный срок."
        ),
        "due": "Срок доставки: {due}. Основание расчёта: {reason}.",
        "ask": (
            "Просим незамедлительно направить экземпляры в соответствии с "
            "законодательством Республики Казахстан."
        ),
        "forms": {"paper": "в печатной форме", "electronic": "в электронной форме"},
        "recipient": "name_ru",
    },
}


def _letter_lines(ob: DepositObligation, language: str, *, library: str, today: date) -> list[str]:
    t = _TEXT[language]
    pub = ob.publication
    forms = t["forms"]
    assert isinstance(forms, dict)
    recipient = getattr(ob.recipient, str(t["recipient"]))
    return [
        library,
        f"{t['title']} · {today.strftime('%d.%m.%Y')}",
        f"{t['to']}: {pub.publisher}"
        + (f", {pub.publisher_address}" if pub.publisher_address else ""),
        str(t["body"]).format(
            title=pub.title,
            form=forms[pub.form],
            first=pub.first_printed_on.strftime("%d.%m.%Y"),
            recipient=recipient,
        ),
        str(t["due"]).format(due=ob.due_on.strftime("%d.%m.%Y"), reason=ob.due_reason),
        str(t["ask"]),
    ]


def _font() -> str:
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    raise DepositError(
        "no Unicode TrueType font for claim PDFs: install fonts-dejavu-core "
        f"(looked at {', '.join(FONT_CANDIDATES)})"
    )


def write_claim(
    ob: DepositObligation,
    language: str,
    out_dir: Path,
    *,
    library: str,
    today: date,
) -> tuple[Path, Path]:
    """Write one claim letter as HTML and PDF; returns their paths."""
    if language not in _TEXT:
        raise DepositError(f"claim language {language!r}: only 'kk' and 'ru'")
    lines = _letter_lines(ob, language, library=library, today=today)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"claim-{ob.id}-{today.isoformat()}-{language}"
    html_path, pdf_path = out_dir / f"{stem}.html", out_dir / f"{stem}.pdf"
    paras = "".join(f"<p>{html.escape(line)}</p>" for line in lines[2:])
    html_path.write_text(
        f'<!DOCTYPE html><html lang="{language}"><head><meta charset="utf-8"><title>'
        f"{html.escape(lines[1])}</title><style>@page {{ size: A4; margin: 20mm }} body "
        f"{{ font-family: serif }}</style></head><body><h3>{html.escape(lines[0])}</h3>"
        f"<h2>{html.escape(lines[1])}</h2>{paras}</body></html>\n",
        encoding="utf-8",
    )
    pdf = FPDF(format="A4")
    pdf.set_title(lines[1])
    pdf.add_font("qor", fname=_font())
    pdf.add_page()
    pdf.set_font("qor", size=11)
    for line in lines:
        pdf.multi_cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    pdf.output(str(pdf_path))
    return html_path, pdf_path


def _claim_obligation(
    session: Session,
    ob: DepositObligation,
    *,
    today: date,
    out_dir: Path,
    library: str,
    languages: tuple[str, ...],
    actor: str,
) -> list[DepositClaim]:
    """Write ``ob``'s letters in each of ``languages`` not yet written today, record them, and
    log the claim (one audit entry per obligation claimed)."""
    claimed = set(
        session.scalars(
            select(DepositClaim.language).where(
                DepositClaim.obligation_id == ob.id, DepositClaim.written_on == today
            )
        )
    )
    written: list[DepositClaim] = []
    for lang in languages:
        if lang in claimed:
            continue
        h, p = write_claim(ob, lang, out_dir, library=library, today=today)
        claim = DepositClaim(
            obligation_id=ob.id,
            written_on=today,
            language=lang,
            html_path=str(h),
            pdf_path=str(p),
        )
        session.add(claim)
        written.append(claim)
    if not written:
        return written
    session.flush()
    # R7: a claim to a publisher is an act of the library; the audit log keeps who sent it.
    audit.append(
        session,
        actor=actor,
        action="deposit.claim",
        entity="deposit_obligation",
        key=str(ob.id),
        before=None,
        after={
            "title": ob.publication.title,
            "publisher": ob.publication.publisher,
            "recipient": ob.recipient_code,
            "due_on": ob.due_on,
            "written_on": today,
            "languages": [c.language for c in written],
            "claims": [c.id for c in written],
        },
    )
    return written


def issue_claim(
    session: Session,
    obligation_id: int,
    *,
    today: date,
    out_dir: Path,
    library: str,
    actor: str,
    languages: tuple[str, ...] = ("kk", "ru"),
) -> list[DepositClaim]:
    """Claim one overdue obligation from its publisher now (the console's "issue a claim"):
    its letters in each language (HTML and PDF), recorded and logged. Refused for an obligation
    that is received, not yet due, or already claimed today in every language."""
    ob = session.get(DepositObligation, obligation_id, with_for_update=True)
    if ob is None:
        raise DepositError(f"no deposit obligation {obligation_id}")
    if ob.received_on is not None:
        raise DepositError(f"obligation {obligation_id} was received on {ob.received_on}")
    if ob.due_on >= today:
        raise DepositError(
            f"obligation {obligation_id} is not overdue: the copy is due on {ob.due_on}"
        )
    written = _claim_obligation(
        session, ob, today=today, out_dir=out_dir, library=library, languages=languages,
        actor=actor,
    )
    if not written:
        raise DepositError(f"obligation {obligation_id} was already claimed on {today}")
    return written


def claims_of(session: Session, obligation_ids: list[int]) -> dict[int, list[DepositClaim]]:
    """The claim letters written for each of ``obligation_ids``, newest first."""
    out: dict[int, list[DepositClaim]] = defaultdict(list)
    if not obligation_ids:
        return out
    for claim in session.scalars(
        select(DepositClaim)
        .where(DepositClaim.obligation_id.in_(obligation_ids))
        .order_by(DepositClaim.written_on.desc(), DepositClaim.id.desc())
    ):
        out[claim.obligation_id].append(claim)
    return out


def claim_letter(session: Session, claim_id: int, fmt: str) -> Path:
    """The file of claim letter ``claim_id`` as it was written: ``html`` or ``pdf``."""
    claim = session.get(DepositClaim, claim_id)
    if claim is None or fmt not in ("html", "pdf"):
        raise ClaimLetterNotFound(f"no claim letter {claim_id} as {fmt}")
    path = Path(claim.html_path if fmt == "html" else claim.pdf_path)
    if not path.is_file():
        raise ClaimLetterNotFound(f"claim letter {claim_id}: {path.name} is no longer on file")
    return path


def write_claims(
    session: Session,
    *,
    today: date,
    out_dir: Path,
    library: str,
    actor: str,
    languages: tuple[str, ...] = ("kk", "ru"),
) -> list[DepositClaim]:
    """The daily claim run: for each overdue obligation not yet claimed today, write its letter
    in each language (HTML and PDF), record it and log the claim."""
    written: list[DepositClaim] = []
    for ob in overdue_obligations(session, today=today):
        written += _claim_obligation(
            session, ob, today=today, out_dir=out_dir, library=library, languages=languages,
            actor=actor,
        )
    session.flush()
    return written
