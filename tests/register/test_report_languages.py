"""Every printed report in Kazakh, Russian and English: the summary and inventory books (R9),
the stocktake act (R14), the write-off act (R3–R4), the compliance report (R1–R16) and the
fixity report (R13). In each language the headings, column labels and fixed phrases are that
language's, and every figure is the English report's, cell by cell; the CSV a program reads
keeps its English keys whatever the language."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from catalog_sync import books, compliance, items, legal_deposit, register, stocktake
from catalog_sync.calendar_kz import KazakhCalendar
from catalog_sync.errors import RegisterError
from catalog_sync.models import AcquisitionSource, ItemStatus
from integrity.records import FIXITY_EVENT, FixityEvent
from integrity.report import build_report
from tests.report_cells import assert_same_figures, cells

from .conftest import uid


def _fund(session: Session) -> tuple[str, list[str]]:
    """Three items of two material types bought in 2031 by one act, one written off (lost)."""
    prefix = uid("L")
    rec = register.add_record(session, title="Абай жолы", authors=["Әуезов М."],
                              material_type="book", actor="acq")
    poster = register.add_record(session, title="Наурыз", material_type="poster", actor="acq")
    batch = register.open_receipt_batch(session, act_number=prefix + "-R1",
                                        received_on=date(2031, 2, 3), supplier="Фолиант",
                                        actor="acq")
    numbers = [f"{prefix}-{n}" for n in (1, 2, 3)]
    for inv, r, price in zip(numbers, (rec, rec, poster), ("100.50", "200.00", "5.25"),
                             strict=True):
        register.receive_item(session, record=r, inventory_number=inv, price=price,
                              source=AcquisitionSource.PURCHASE, receipt_batch=batch,
                              actor="acq")
    register.write_off(session, act_number=prefix + "-W1", act_date=date(2031, 6, 1),
                       reason="lost", inventory_numbers=[numbers[1]], actor="head")
    session.flush()
    return prefix, numbers


WORDS = {
    # R9: the summary book's title, parts, footer, material type, source and write-off reason.
    "summary": {
        "kk": ["2031 жылғы жиынтық есеп кітабы", "1-бөлім. Қорға түсу", "2-бөлім. Қордан шығу",
               "3-бөлім. Қордың жылдар бойынша қозғалысы", "2031 жылы түсті", "Жеткізуші",
               "Кітаптар", "Плакаттар", "Сатып алу", "Жоғалуы", "жыл соңындағы қалдық"],
        "ru": ["Книга суммарного учёта за 2031 год", "Часть 1. Поступление в фонд",
               "Часть 2. Выбытие из фонда", "Часть 3. Движение фонда по годам",
               "Поступило за 2031 год", "Поставщик", "Книги", "Плакаты", "Покупка", "Утеря",
               "состоит на конец года"],
        "en": ["Summary accounting book 2031", "Part 1. Receipts", "Received in 2031",
               "Supplier", "Books", "Posters", "Purchase", "Lost", "closing balance"],
    },
    "inventory": {
        "kk": ["Инвентарлық кітап", "Инв. №", "Авторы, атауы", "Түсу көзі", "Бағасы, ₸",
               "Кітаптар", "Сатып алу", "Барлығы 3 дана"],
        "ru": ["Инвентарная книга", "Инв. №", "Автор, заглавие", "Источник", "Цена, ₸",
               "Книги", "Покупка", "Всего 3 экз."],
        "en": ["Inventory book", "Author, title", "Source", "Price, ₸", "Books", "Purchase",
               "3 items"],
    },
}


@pytest.mark.parametrize("language", ["kk", "ru"])
def test_summary_and_inventory_books_are_printed_in_the_chosen_language(
    session: Session, tmp_path: Path, language: str
) -> None:
    """R9: the books in Kazakh and Russian carry the librarians' terms and the English book's
    figures cell by cell; the CSV is byte for byte the same in every language."""
    prefix, numbers = _fund(session)
    book = books.summary_book(session, year=2031)
    english = books.render_summary_html(book, library_name="Кітапхана")
    page = books.render_summary_html(book, library_name="Кітапхана", language=language)
    for word in WORDS["summary"][language]:
        assert word in page, word
    for word in WORDS["summary"]["en"]:
        assert word in english, word
    assert f'<html lang="{language}">' in page
    assert "Part 1" not in page and "Received in" not in page and "Supplier" not in page
    assert_same_figures(english, page)
    # the figures themselves are the register's (3 received for 305.75 ₸, 1 written off)
    assert f"<td>{prefix}-R1</td>" in page and "<td class=n>305.75</td>" in page

    en_dir, other_dir = tmp_path / "en", tmp_path / language
    en_html, en_csv = books.write_summary_book(book, en_dir, library_name="Кітапхана")
    html_path, csv_path = books.write_summary_book(book, other_dir, library_name="Кітапхана",
                                                   language=language)
    assert html_path.read_text(encoding="utf-8") == page
    assert en_html.read_text(encoding="utf-8") == english  # English stays the default
    assert csv_path.read_bytes() == en_csv.read_bytes()  # machine keys: section, breakdown…

    lines = books.inventory_book(session, from_number=numbers[0], to_number=numbers[-1])
    title = books.inventory_title(numbers[0], numbers[-1], language=language)
    assert numbers[0] in title and numbers[-1] in title
    inv_en = books.render_inventory_html(lines, library_name="Кітапхана",
                                         title=books.inventory_title(numbers[0], numbers[-1]))
    inv = books.render_inventory_html(lines, library_name="Кітапхана", title=title,
                                      language=language)
    for word in WORDS["inventory"][language]:
        assert word in inv, word
    for word in WORDS["inventory"]["en"]:
        assert word in inv_en, word
    assert "Author, title" not in inv
    mark = {"kk": f"{prefix}-W1 акті, 2031-06-01", "ru": f"акт {prefix}-W1, 2031-06-01"}
    assert mark[language] in inv  # the written-off line keeps its act, in the language
    assert_same_figures(inv_en, inv)
    _, inv_csv_en = books.write_inventory_book(session, en_dir, library_name="К",
                                               from_number=numbers[0], to_number=numbers[-1])
    _, inv_csv = books.write_inventory_book(session, other_dir, library_name="К",
                                            from_number=numbers[0], to_number=numbers[-1],
                                            language=language)
    assert inv_csv.read_bytes() == inv_csv_en.read_bytes()
    assert inv_csv.read_text(encoding="utf-8-sig").startswith("inventory_number,")


def test_an_unknown_report_language_is_refused_with_the_valid_ones(session: Session) -> None:
    book = books.summary_book(session, year=2031)
    with pytest.raises(RegisterError, match="kk, ru, en"):
        books.render_summary_html(book, library_name="L", language="de")
    with pytest.raises(RegisterError, match="kk, ru, en"):
        build_report([]).html("fr")


@pytest.mark.parametrize("language", ["kk", "ru"])
def test_stocktake_act_is_printed_in_the_chosen_language(
    session: Session, tmp_path: Path, language: str
) -> None:
    """R14: the act's title, reason, counts, sections and the lines' explanations in Kazakh or
    Russian; its figures and its CSV are the English act's."""
    hall = uid("Hall")
    rec = register.add_record(session, title="Көшпенділер", actor="acq")
    batch = register.open_receipt_batch(session, act_number=uid("ACT"),
                                        received_on=date(2024, 1, 9), actor="acq")
    shelved = [register.BulkItem(record_id=rec.id, source=AcquisitionSource.PURCHASE,
                                 inventory_number=uid("S"), barcode=uid("BC"),
                                 location=f"{hall}/S{n % 2 + 1}", status=ItemStatus.AVAILABLE)
               for n in range(4)]
    register.bulk_receive(session, batch=batch, items=shelved, actor="acq")
    take = stocktake.start_stocktake(session, reason="change-of-responsible-person",
                                     responsible="Айгүл Сәрсенова", scope=hall, actor="head")
    codes = [(shelved[0].barcode or "", f"{hall}/S1"),   # right shelf
             (shelved[1].barcode or "", f"{hall}/S1"),   # its shelf is S2: misplaced
             ("BC-NOT-IN-REGISTER", f"{hall}/S1")]       # unexpected: unknown code
    stocktake.record_scans(session, take.id, codes)
    act = stocktake.close_stocktake(session, take.id, actor="head")
    assert (len(act.missing), len(act.misplaced), len(act.unexpected)) == (2, 1, 1)

    en_html, en_csv = stocktake.write_stocktake_act(act, tmp_path / "en", library_name="К")
    html_path, csv_path = stocktake.write_stocktake_act(act, tmp_path / language,
                                                        library_name="К", language=language)
    page, english = html_path.read_text(encoding="utf-8"), en_html.read_text(encoding="utf-8")
    words = {
        "kk": [f"Қорды салыстырмалы тексеру акті № {take.id}",
               "Материалдық жауапты қызметкердің ауысуы", "Материалдық жауапты қызметкер",
               "Тексерілетін даналар: 4; табылды: 2", "Жоқ (тексеру аймағында, табылмады): 2",
               "Орнында емес", "Күтілмеген", "белгісіз код", "тексеру аймағында, сканерленбеді",
               f"тізілім бойынша орны {hall}/S2, {hall}/S1 жерінен табылды", "Қолдар"],
        "ru": [f"Акт сверки фонда № {take.id}", "Смена материально ответственного лица",
               "Материально ответственное лицо", "Экземпляров в проверке: 4; найдено: 2",
               "Отсутствуют (в зоне проверки, не найдены): 2", "Не на своём месте",
               "Неожиданные", "неизвестный код", "в зоне проверки, не отсканирован",
               f"место по реестру {hall}/S2, найден: {hall}/S1", "Подписи"],
    }
    for word in words[language]:
        assert word in page, word
    assert "Stocktake act" in english and "Stocktake act" not in page
    assert "unknown code" in english and "unknown code" not in page
    assert "Айгүл Сәрсенова" in page
    assert_same_figures(english, page)
    assert csv_path.read_bytes() == en_csv.read_bytes()
    assert csv_path.read_text(encoding="utf-8-sig").startswith("section,inventory_number,")


@pytest.mark.parametrize("language", ["kk", "ru"])
def test_write_off_act_prints_its_reason_in_the_chosen_language(
    session: Session, language: str
) -> None:
    """R3–R4: the write-off act names its reason in the act's language, not as a code."""
    rec = register.add_record(session, title="Жыл кітабы", actor="acq")
    batch = register.open_receipt_batch(session, act_number=uid("ACT"),
                                        received_on=date(2024, 1, 9), actor="acq")
    inv = uid("WO")
    register.receive_item(session, record=rec, inventory_number=inv, price="12.00",
                          source=AcquisitionSource.DONATION, receipt_batch=batch, actor="acq")
    doc = items.write_off_items(session, act_number=uid("A"), act_date=date(2024, 5, 2),
                                reason="worn", inventory_numbers=[inv], actor="head")
    page = items.write_off_html(doc, language=language)
    english = items.write_off_html(doc, language="en")
    expected = {"kk": ("Есептен шығару акті", "Себебі: Тозуы"),
                "ru": ("Акт списания", "Причина: Ветхость")}[language]
    assert all(word in page for word in expected)
    assert "Reason: Worn out" in english
    assert_same_figures(english, page)


@pytest.mark.parametrize("language", ["kk", "ru"])
def test_compliance_report_words_its_violations_in_the_chosen_language(
    session: Session, language: str
) -> None:
    """R7 broken (a legal deposit copy overdue): the report says so in Kazakh or Russian; the
    JSON keeps the English text; the verdicts and counts are the English report's."""
    title = uid("Жыл кітабы ")
    legal_deposit.register_publication(session, title=title, publisher="Фолиант",
                                       form="paper", first_printed=date(2025, 1, 15),
                                       actor="deposit", calendar=KazakhCalendar())
    report = compliance.compliance_report(session, today=date(2031, 12, 31))
    r7 = next(r for r in report.rows if r.clause.code == "R7")
    assert r7.status == "fail"
    english = next(v for v in r7.result.violations if title in v)
    assert english.startswith(f"{title} (Фолиант) → ") and english.endswith(", not received")
    assert english in report.as_dict()["clauses"][6]["violations"]  # JSON: English, stable
    due = english.split("due ")[1].split(",")[0]

    page = compliance.report_html(report, language=language)
    en_page = compliance.report_html(report, language="en")
    recipient = english.split("→ ")[1].split(":")[0]
    words = {"kk": [f"{title} (Фолиант) → {recipient}: мерзімі {due}, түспеді",
                    "Сәйкестік есебі", "сәйкес емес", "мерзімі өткен: ", "міндеттемелер: "],
             "ru": [f"{title} (Фолиант) → {recipient}: срок {due}, не поступил",
                    "Отчёт о соответствии", "не соответствует", "просрочено: ",
                    "обязательств: "]}[language]
    for word in words:
        assert word in page, word
    assert english not in page and english in en_page
    # Same clauses, same verdict classes, and the same numbers in each clause's evidence.
    en_cells, tr_cells = cells(en_page)[0], cells(page)[0]
    assert [r[0] for r in tr_cells[1:]] == [r[0] for r in en_cells[1:]] == [
        f"R{n}" for n in range(1, 17)]
    for en_row, tr_row in zip(en_cells[1:], tr_cells[1:], strict=True):
        assert re.findall(r"\d+", tr_row[3]) == re.findall(r"\d+", en_row[3]), en_row[0]
    assert re.findall(r'<tr class="(\w[\w-]*)">', page) == re.findall(
        r'<tr class="(\w[\w-]*)">', en_page)

    rows = list(csv.reader(io.StringIO(compliance.report_csv(report, language=language))))
    en_rows = list(csv.reader(io.StringIO(compliance.report_csv(report, language="en"))))
    assert rows[0] == en_rows[0] == ["clause", "title", "checks", "status", "evidence",
                                     "violation_count", "violations", "tests"]
    for row, en_row in zip(rows[1:], en_rows[1:], strict=True):
        assert (row[0], row[5], row[7]) == (en_row[0], en_row[5], en_row[7])
    r7_row = next(row for row in rows if row[0] == "R7")
    assert words[0] in r7_row[6] and words[3] in r7_row[4]


def _fixity_events() -> list[FixityEvent]:
    t0 = datetime(2031, 3, 1, 2, 0, tzinfo=UTC)
    bad = {"path": "data/page-0001.tif", "problem": "ChecksumMismatch", "algorithm": "sha512",
           "expected": "aa", "found": "bb", "message": "checksum differs"}
    return [
        FixityEvent("qor-KZ-1-v1", "KZ-1", FIXITY_EVENT, "success", t0, "qor-fixity",
                    {"mode": "deep", "files_checked": 4, "bytes_checked": 4_000_000,
                     "failures": []}),
        FixityEvent("qor-KZ-2-v1", "KZ-2", FIXITY_EVENT, "failure", t0, "qor-fixity",
                    {"mode": "quick", "files_checked": 2, "bytes_checked": 2_500_000,
                     "failures": [bad], "remaining": [bad]}),
    ]


@pytest.mark.parametrize("language", ["kk", "ru"])
def test_fixity_report_is_printed_in_the_chosen_language(language: str) -> None:
    """R13: the fixity report's title, verdict, sections, columns, statuses and modes in
    Kazakh or Russian; bag ids, paths and checksums as they are; the figures the English's."""
    report = build_report(_fixity_events(), now=datetime(2031, 3, 2, tzinfo=UTC))
    page, english = report.html(language), report.html()
    words = {"kk": ["Тұтастықты тексеру есебі", "1 ақау қалпына КЕЛТІРІЛМЕДІ", "Ақаулар",
                    "Пакеттер", "инвентарлық нөмір", "ҚАЛПЫНА КЕЛТІРІЛМЕДІ", "толық",
                    "жылдам", "сәтті", "Күн сайын тексерілген байттар мен ақаулар"],
             "ru": ["Отчёт о проверке целостности", "Сбоев НЕ восстановлено: 1", "Сбои",
                    "Пакеты", "инвентарный номер", "НЕ ВОССТАНОВЛЕН", "полная", "быстрая",
                    "успешно", "Проверено байт и сбоев по дням"]}[language]
    for word in words:
        assert word in page, word
    assert f"<html lang='{language}'>" in page
    assert "Fixity report" in english and "Fixity report" not in page
    assert "data/page-0001.tif" in page and "ChecksumMismatch" in page and "qor-KZ-2-v1" in page
    assert_same_figures(english, page)
