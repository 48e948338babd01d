"""Which Tesseract models read an item: chosen from the item's language in the register.

A Kazakh item (``kk``) is read with ``kaz+rus`` — Kazakh print carries Russian words, names and
abbreviations — a Russian one (``ru``) with ``rus``. English (``eng``) is added only when the
item says so (its language list names English) or when a page's script detection finds Latin
(:func:`flows.capture.script.latin_share`): on worn Cyrillic glyphs the ``eng`` model otherwise
wins and writes Latin look-alikes (``KOJXO3`` for ``КОЛХОЗ``).
"""

from __future__ import annotations

import re

from flows.capture.ocr_engine import ocr_engine
from flows.errors import LanguagesUnavailable

# The register keeps BCP 47 / ISO 639-1 codes (``kk``) but MARC records bring ISO 639-2 (``kaz``).
_MODELS: dict[str, tuple[str, ...]] = {
    "kk": ("kaz", "rus"),
    "kaz": ("kaz", "rus"),
    "ru": ("rus",),
    "rus": ("rus",),
    "en": ("eng",),
    "eng": ("eng",),
}

DEFAULT_MODELS = "kaz+rus"
"""Models for an item whose language the register does not know (the fund is mostly Kazakh and
Russian print)."""


def models_for(language: str | None, *, default: str = DEFAULT_MODELS) -> str:
    """Tesseract ``-l`` value for an item language such as ``"kk"``, ``"ru"`` or ``"kk,ru,en"``.

    Several languages (separated by ``,``, ``;``, ``+`` or spaces) are joined in order without
    repeats; an unknown or missing language gives ``default``.
    """
    models: list[str] = []
    for code in re.split(r"[,;+\s]+", (language or "").strip().lower()):
        base = code.split("-")[0]
        for model in _MODELS.get(base, ()):
            if model not in models:
                models.append(model)
    return "+".join(models) if models else default


def with_english(models: str) -> str:
    """``models`` plus ``eng`` (for a page where Latin script was detected)."""
    parts = models.split("+")
    return models if "eng" in parts else "+".join([*parts, "eng"])


_LANGUAGE_LIST = re.compile(r"[a-z_]{3,}(\+[a-z_]{3,})*")


def batch_languages(
    requested: str | None, *, item_language: str | None, from_item: bool, configured: str
) -> str:
    """The models one batch is read with: ``requested`` (a batch's own choice) if given, else
    the item's (:func:`models_for`) when ``from_item`` and the register knows its language,
    else ``configured`` (the ``ocr_languages`` setting).

    Raises :class:`flows.errors.LanguagesUnavailable` when ``requested`` is not a Tesseract
    language list or names a model Tesseract does not have.
    """
    if requested is not None:
        if not _LANGUAGE_LIST.fullmatch(requested):
            raise LanguagesUnavailable(
                f"OCR languages {requested!r}: not a Tesseract language list like 'kaz+rus'"
            )
        installed = ocr_engine().languages()
        missing = [m for m in requested.split("+") if m not in installed]
        if missing:
            raise LanguagesUnavailable(
                f"OCR languages {requested!r}: Tesseract has no model {', '.join(missing)} "
                f"(installed: {', '.join(sorted(installed - {'osd'}))})"
            )
        return requested
    if from_item and item_language:
        return models_for(item_language, default=configured)
    return configured
