"""Script consistency: Latin look-alikes inside Cyrillic words become Cyrillic, and the reverse.

On worn print Tesseract often mixes scripts inside one word — ``KOЛXO3``, ``Bep-``: Latin letters
that look exactly like Cyrillic ones (гомоглифы / гомоглифтер). A reader sees nothing wrong, but
search for ``колхоз`` misses the word. :func:`consistent_word` turns such letters into their
twins of the word's script; :func:`correct_hocr` does that over a page's hOCR in place, so the
text file, ALTO and the PDF's text layer (all made from the hOCR) agree, and returns each
correction for the page's metadata.

A word's script is decided by its *unambiguous* letters (those without a twin in the other
script: ``Л``, ``Ж``, ``ә`` are Cyrillic, ``r``, ``s``, ``J`` Latin). When both scripts have
unambiguous letters the word is genuinely mixed and left alone; so are URLs, e-mail addresses,
formulas and anything with digits (``H2O``, ``CO2``, ``КамАЗ-5320``). A word made only of
look-alike letters (``Bep``, ``COK``) takes the script of its line (or of the page when the line
has no unambiguous letters either).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lxml import etree

Script = Literal["cyrillic", "latin"]

# Latin letter → its Cyrillic twin (same shape in print). Kazakh adds һ, і, І.
LATIN_TO_CYRILLIC: dict[str, str] = {
    "A": "А", "B": "В", "C": "С", "E": "Е", "H": "Н", "K": "К", "M": "М", "O": "О", "P": "Р",
    "T": "Т", "X": "Х", "Y": "У", "I": "І",
    "a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "x": "х", "y": "у", "h": "һ", "i": "і",
}
CYRILLIC_TO_LATIN: dict[str, str] = {c: lat for lat, c in LATIN_TO_CYRILLIC.items()}

_SKIP = re.compile(r"(://|www\.|@|[=<>^_\\/]|\d)")
_LETTERS = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class Correction:
    """One word changed by script consistency: what OCR read, what was written, and to which
    script."""

    original: str
    corrected: str
    script: Script


def _script_of(ch: str) -> Script | None:
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    if name.startswith("CYRILLIC"):
        return "cyrillic"
    if name.startswith("LATIN"):
        return "latin"
    return None


def _unambiguous(ch: str) -> Script | None:
    script = _script_of(ch)
    if script == "cyrillic" and ch in CYRILLIC_TO_LATIN:
        return None
    if script == "latin" and ch in LATIN_TO_CYRILLIC:
        return None
    return script


def word_script(word: str) -> Script | Literal["mixed", "ambiguous", "none"]:
    """The script a word's unambiguous letters say: ``mixed`` if both, ``ambiguous`` if none
    (only look-alike letters), ``none`` if it has no letters."""
    found = {_unambiguous(ch) for ch in word if ch.isalpha()} - {None}
    if not any(ch.isalpha() for ch in word):
        return "none"
    if len(found) == 2:
        return "mixed"
    if not found:
        return "ambiguous"
    return "cyrillic" if "cyrillic" in found else "latin"


def context_script(words: list[str]) -> Script | None:
    """The script most unambiguous letters of ``words`` are in (``None`` if neither leads)."""
    counts = {"cyrillic": 0, "latin": 0}
    for word in words:
        if _SKIP.search(word):
            continue
        for ch in word:
            script = _unambiguous(ch)
            if script is not None:
                counts[script] += 1
    if counts["cyrillic"] > counts["latin"]:
        return "cyrillic"
    if counts["latin"] > counts["cyrillic"]:
        return "latin"
    return None


def consistent_word(word: str, *, context: Script | None) -> Correction | None:
    """The correction for ``word`` (``None`` when it stays as read).

    ``context`` is the script of the surrounding line or page, used only for a word whose
    letters are all look-alikes.
    """
    if _SKIP.search(word):
        return None  # URLs, e-mail, formulas, numbers with letters: never touched
    script = word_script(word)
    if script in ("mixed", "none"):
        return None
    target: Script | None = context if script == "ambiguous" else script  # type: ignore[assignment]
    if target is None:
        return None
    table = LATIN_TO_CYRILLIC if target == "cyrillic" else CYRILLIC_TO_LATIN
    other = "latin" if target == "cyrillic" else "cyrillic"
    corrected = "".join(
        table.get(ch, ch) if _script_of(ch) == other else ch for ch in word
    )
    if corrected == word:
        return None
    return Correction(word, corrected, target)


def latin_share(words: list[str]) -> float:
    """Share of unambiguous letters that are Latin (0 for a page with none): a page above
    ~0.2 has real Latin text, and is read with ``eng`` as well."""
    counts = {"cyrillic": 0, "latin": 0}
    for word in words:
        for ch in word:
            script = _unambiguous(ch)
            if script is not None:
                counts[script] += 1
    total = counts["cyrillic"] + counts["latin"]
    return counts["latin"] / total if total else 0.0


def _classes(el: etree._Element) -> set[str]:
    return set((el.get("class") or "").split())


def _word_texts(el: etree._Element) -> str:
    return "".join(el.itertext()).strip()


def _set_text(el: etree._Element, original: str, corrected: str) -> None:
    """Replace the word's text, keeping inner markup (Tesseract's ``<strong>``, ``<em>``)."""
    for node in el.iter():
        if node.text and node.text.strip() == original:
            node.text = node.text.replace(original, corrected)
            return
    # Text split over several nodes (unusual): keep the word's element, drop the inner markup.
    for child in list(el):
        el.remove(child)
    el.text = corrected


def correct_hocr(path: Path) -> tuple[Correction, ...]:
    """Make every word of the hOCR at ``path`` script-consistent, in place; the corrections.

    Records the corrections in the hOCR's head as ``<meta name="qor-script-corrections">``
    (``original→corrected`` pairs, ``; ``-separated). The file is rewritten only when a word
    changed.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    tree = etree.parse(str(path), parser)
    root = tree.getroot()
    all_words = [
        (el, _word_texts(el)) for el in root.iter() if "ocrx_word" in _classes(el)
    ]
    page_context = context_script([text for _, text in all_words])
    corrections: list[Correction] = []
    for line in root.iter():
        if not (_classes(line) & {"ocr_line", "ocr_header", "ocr_caption", "ocr_textfloat"}):
            continue
        words = [(el, _word_texts(el)) for el in line.iter() if "ocrx_word" in _classes(el)]
        context = context_script([t for _, t in words]) or page_context
        for el, text in words:
            if not text:
                continue
            fix = consistent_word(text, context=context)
            if fix is not None:
                _set_text(el, fix.original, fix.corrected)
                corrections.append(fix)
    if corrections:
        head = next((el for el in root if etree.QName(el).localname == "head"), None)
        if head is not None:
            ns = etree.QName(root).namespace
            meta = etree.SubElement(head, f"{{{ns}}}meta" if ns else "meta")
            meta.set("name", "qor-script-corrections")
            meta.set("content", describe(tuple(corrections)))
        tree.write(str(path), xml_declaration=True, encoding="UTF-8")
    return tuple(corrections)


def describe(corrections: tuple[Correction, ...]) -> str:
    """``original→corrected`` pairs joined by ``; `` (for ALTO and hOCR metadata)."""
    return "; ".join(f"{c.original}→{c.corrected}" for c in corrections)
