"""Interface languages: Kazakh (default), Russian and English, from gettext catalogues.

The catalogues are ordinary ``.po`` files under ``elibrary/locale/<lang>/LC_MESSAGES/``; they
are compiled in memory with Babel when the application starts (no compiled ``.mo`` files to
keep in step). ``pybabel extract -F elibrary/babel.cfg -o elibrary/locale/elibrary.pot elibrary``
and ``pybabel update`` maintain them.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "elibrary"
LANGUAGES: tuple[tuple[str, str], ...] = (("kk", "Қазақша"), ("ru", "Русский"), ("en", "English"))
DEFAULT_LANGUAGE = "kk"
CODES = frozenset(code for code, _ in LANGUAGES)


@functools.cache
def translations(lang: str) -> gettext.GNUTranslations | gettext.NullTranslations:
    """The compiled catalogue of ``lang`` (English falls back to the message ids)."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if lang not in CODES or not po.is_file():
        return gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def negotiate(accept_language: str | None) -> str:
    """The best of kk/ru/en for an ``Accept-Language`` header (Kazakh when nothing fits)."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    best: tuple[float, str] | None = None
    for part in accept_language.split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        code = tag.strip().lower().split("-")[0]
        if code not in CODES:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if best is None or q > best[0]:
            best = (q, code)
    return best[1] if best else DEFAULT_LANGUAGE


#: ISO 639-2/3 codes of the register (MARC 008/35-37) to the BCP 47 tags of HTML ``lang``.
_BCP47 = {"kaz": "kk", "rus": "ru", "eng": "en", "kir": "ky", "uzb": "uz", "tat": "tt",
          "deu": "de", "ger": "de", "fre": "fr", "fra": "fr", "tur": "tr", "chi": "zh",
          "zho": "zh", "ara": "ar", "per": "fa", "fas": "fa"}


def html_lang(code: str | None) -> str:
    """The ``lang`` attribute for a copy's language (``kaz`` → ``kk``); empty when unknown, so a
    screen reader is never told a language tag it does not know."""
    if not code:
        return ""
    code = code.strip().lower()
    if len(code) == 2 and code.isalpha():
        return code
    return _BCP47.get(code, "")
