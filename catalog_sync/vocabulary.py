"""The words of the printed reports in Kazakh, Russian and English (есеп тілі · язык отчёта).

The accounting books (R9), the stocktake act (R14) and the write-off act are rendered here in
the register's layer, below the e-library and its gettext catalogues, so their fixed vocabulary
lives in this small catalogue. The terms are the librarians' own (``shared/glossary.md``) and
match the console's catalogue (``elibrary/locale``) word for word where both name one thing.

Policy for every report: the HTML a person reads is in the chosen language; the CSV and JSON a
program reads keep their English machine keys and codes (``section``, ``material:book``,
``purchase``…), so a spreadsheet formula or a script never breaks when the language changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from catalog_sync.errors import RegisterError

LANGUAGES: Final = ("kk", "ru", "en")
"""Report languages: Kazakh, Russian, English."""
DEFAULT_LANGUAGE: Final = "en"
"""The CLI's language when neither ``--lang`` nor ``QOR_REPORT_LANGUAGE`` says otherwise."""


def check_language(language: str) -> str:
    """``language`` if it is one of :data:`LANGUAGES`; otherwise an error listing them."""
    if language not in LANGUAGES:
        raise RegisterError(
            f"report language {language!r} is not one of {', '.join(LANGUAGES)}")
    return language


def _t(kk: str, ru: str, en: str) -> Mapping[str, str]:
    return {"kk": kk, "ru": ru, "en": en}


#: Material types of R2 (құжат түрлері · виды документов).
MATERIAL: Final[Mapping[str, Mapping[str, str]]] = {
    "periodical": _t("Мерзімді басылымдар", "Периодические издания", "Periodicals"),
    "book": _t("Кітаптар", "Книги", "Books"),
    "brochure": _t("Брошюралар", "Брошюры", "Brochures"),
    "album": _t("Альбомдар", "Альбомы", "Albums"),
    "poster": _t("Плакаттар", "Плакаты", "Posters"),
    "booklet": _t("Буклеттер", "Буклеты", "Booklets"),
    "printed_other": _t("Басқа баспа өнімдері", "Прочие печатные издания", "Other print"),
    "audiovisual": _t("Аудиовизуалды материалдар", "Аудиовизуальные материалы", "Audiovisual"),
    "electronic": _t("Электрондық басылымдар", "Электронные издания", "Electronic"),
}

#: Sources of acquisition of R5 (толықтыру көздері · источники комплектования).
SOURCE: Final[Mapping[str, Mapping[str, str]]] = {
    "purchase": _t("Сатып алу", "Покупка", "Purchase"),
    "exchange": _t("Кітап алмасу", "Книгообмен", "Exchange"),
    "donation": _t("Сыйға тарту", "Дарение", "Donation"),
    "state_order": _t("Мемлекеттік тапсырыс", "Госзаказ", "State order"),
    "legal_deposit": _t("Міндетті тегін дана", "Обязательный экземпляр", "Legal deposit"),
    "not_recorded": _t("Көрсетілмеген", "Не указан", "Not recorded"),
}

#: Reasons of a write-off act (есептен шығару себебі · причина списания).
WRITE_OFF_REASON: Final[Mapping[str, Mapping[str, str]]] = {
    "worn": _t("Тозуы", "Ветхость", "Worn out"),
    "lost": _t("Жоғалуы", "Утеря", "Lost"),
    "obsolete": _t("Мазмұнының ескіруі", "Устарелость", "Obsolete"),
    "duplicate": _t("Қосарлану", "Дублетность", "Duplicate"),
    "out_of_profile": _t("Қор бейініне сәйкес келмеуі", "Непрофильность",
                         "Outside the fund's profile"),
    "damaged": _t("Зақымдануы", "Повреждение", "Damaged"),
    "other": _t("Басқа", "Другое", "Other"),
}

#: Reasons of a stocktake of R14 (салыстырмалы тексеру · сверка фонда).
STOCKTAKE_REASON: Final[Mapping[str, Mapping[str, str]]] = {
    "change-of-responsible-person": _t(
        "Материалдық жауапты қызметкердің ауысуы", "Смена материально ответственного лица",
        "Change of the materially responsible person"),
    "loss": _t("Жоғалу фактісі", "Факт утраты", "Loss"),
    "reorganisation": _t("Қайта ұйымдастыру", "Реорганизация", "Reorganisation"),
    "liquidation": _t("Тарату", "Ликвидация", "Liquidation"),
}

#: Item statuses as a report prints them.
STATUS: Final[Mapping[str, Mapping[str, str]]] = {
    "received": _t("түсті, өңделмеген", "поступил, не обработан", "received, not processed"),
    "processed": _t("өңделген", "обработан", "processed"),
    "available": _t("қолжетімді", "доступен", "available"),
    "on_loan": _t("берілген", "выдан", "on loan"),
    "in_repair": _t("жөндеуде", "в ремонте", "in repair"),
    "missing": _t("жоқ", "отсутствует", "missing"),
    "written_off": _t("есептен шығарылған", "списан", "written off"),
}


def label(table: Mapping[str, Mapping[str, str]], code: str | None, language: str) -> str:
    """The word for ``code`` in ``language``; a code the table does not know is printed as it
    is (underscores as spaces), never dropped."""
    if code is None:
        return ""
    words = table.get(code)
    return words[language] if words else code.replace("_", " ")
