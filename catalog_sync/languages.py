"""Language codes: the register holds ISO 639-1 (``kk``, ``ru``, ``en``; several joined by
commas, ``kk,ru``); MARC records carry the MARC Code List for Languages (``kaz``, ``rus``,
``eng``) in 041 $a and 008/35–37."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

#: ISO 639-1 → MARC language code.
MARC_LANGUAGES: Final[Mapping[str, str]] = {
    "kk": "kaz", "ru": "rus", "en": "eng", "de": "ger", "fr": "fre", "tr": "tur", "uz": "uzb",
    "ky": "kir", "tt": "tat", "ug": "uig", "uk": "ukr", "be": "bel", "az": "aze", "tg": "tgk",
    "tk": "tuk", "mn": "mon", "zh": "chi", "ja": "jpn", "ko": "kor", "ar": "ara", "fa": "per",
    "la": "lat", "es": "spa", "it": "ita", "pl": "pol", "cs": "cze", "hy": "arm", "ka": "geo",
    "he": "heb", "hi": "hin", "el": "gre",
}
_FROM_MARC: Final[Mapping[str, str]] = {v: k for k, v in MARC_LANGUAGES.items()}
_SPLIT: Final = re.compile(r"[,;+\s]+")


def split(language: str | None) -> list[str]:
    """The codes of a language value (``"kk,ru"`` → ``["kk", "ru"]``)."""
    return [c for c in _SPLIT.split((language or "").strip()) if c]


def to_marc(code: str) -> str:
    """``kk`` → ``kaz``; a code not in the table is returned as it is."""
    return MARC_LANGUAGES.get(code.lower(), code)


def from_marc(code: str) -> str:
    """``kaz`` → ``kk``; a code not in the table is returned as it is."""
    return _FROM_MARC.get(code.lower(), code)


def normalise(language: str | None) -> str | None:
    """What the register stores: ISO 639-1 codes joined by commas (``"kaz rus"`` →
    ``"kk,ru"``), or None for nothing."""
    codes = [from_marc(c) for c in split(language)]
    return ",".join(codes) if codes else None
