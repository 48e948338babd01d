"""Which Tesseract models read an item: chosen from the item's language in the register.

A Kazakh item (``kk``) is read with ``kaz+rus`` — Kazakh print carries Russian words, names and
abbreviations — a Russian one (``ru``) with ``rus``. English (``eng``) is added only when the
item says so (its language list names English) or when a page's script detection finds Latin
(:func:`flows.capture.script.latin_share`): on worn Cyrillic glyphs the ``eng`` model otherwise
wins and writes Latin look-alikes (``KOJXO3`` for ``КОЛХОЗ``).
"""

from __future__ import annotations

import re

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
