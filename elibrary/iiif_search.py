"""IIIF Content Search API 2.0 inside one copy, from the ALTO word boxes of its bag.

Кітап ішінен іздеу · поиск внутри книги: ``GET /iiif/search/{bag_id}?q=…`` answers an
``AnnotationPage`` of ``highlighting`` annotations, one per matching word, each targeting the
page's canvas with ``#xywh=`` in canvas pixels (the reading image's; ALTO boxes are scaled from
the ALTO page size). Matching is that of the e-library's search (:mod:`elibrary.textindex`):
case-folded, every query word as a prefix, Kazakh and Russian alike. The index finds the pages;
only their ALTO is decrypted (in memory) for the boxes.

R6/R10 (issue 15): the rights are checked before any text is looked at — a visitor who may not
read the copy gets the 401/403 error and no hits, counts or words.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from elibrary.errors import InvalidParameter
from elibrary.library import CopyView
from elibrary.models import PageText
from elibrary.textindex import fold, page_order, query_terms

SEARCH_CONTEXT = "http://iiif.io/api/search/2/context.json"
MAX_HITS = 1000
_WORD = re.compile(r"\w+")


def matching_pages(session: Session, copy_id: int, terms: list[str]) -> list[int]:
    """Pages of the copy whose folded text has a word starting with one of ``terms``."""
    rows = session.execute(select(PageText.page, PageText.folded).where(
        PageText.copy_id == copy_id, PageText.page > 0).order_by(PageText.page))
    return [page for page, folded in rows
            if any(w.startswith(t) for w in _WORD.findall(folded) for t in terms)]


def alto_paths(text_paths: list[str], master_paths: list[str]) -> dict[int, str]:
    """Page number → bag path of the page's ALTO (``data/text/<label>.alto.xml``)."""
    txt = [p for p in text_paths if p.endswith(".txt")]
    alto = set(text_paths)
    out: dict[int, str] = {}
    for page, path in page_order(txt, master_paths):
        candidate = path.removesuffix(".txt") + ".alto.xml"
        if candidate in alto:
            out[page] = candidate
    return out


def word_boxes(alto_xml: bytes) -> tuple[tuple[int, int], list[tuple[str, int, int, int, int]]]:
    """The ALTO page's (width, height) and its words with boxes (content, x, y, w, h)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    root = etree.fromstring(alto_xml, parser)
    page = next(iter(root.iter("{*}Page")), None)
    if page is None:
        return (0, 0), []
    size = (int(float(page.get("WIDTH", "0"))), int(float(page.get("HEIGHT", "0"))))
    words = []
    for s in page.iter("{*}String"):
        try:
            words.append((s.get("CONTENT", ""), int(float(s.get("HPOS", "0"))),
                          int(float(s.get("VPOS", "0"))), int(float(s.get("WIDTH", "0"))),
                          int(float(s.get("HEIGHT", "0")))))
        except ValueError:
            continue
    return size, words


def hits_on_page(*, words: list[tuple[str, int, int, int, int]], alto_size: tuple[int, int],
                 canvas_size: tuple[int, int], terms: list[str]) -> list[tuple[str, str]]:
    """(word, ``x,y,w,h`` on the canvas) of each ALTO word matching a term (prefix)."""
    aw, ah = alto_size
    cw, ch = canvas_size
    sx = cw / aw if aw else 1.0
    sy = ch / ah if ah else 1.0
    out = []
    for content, x, y, w, h in words:
        folded = _WORD.findall(fold(content))
        if any(f.startswith(t) for f in folded for t in terms):
            out.append((content, f"{round(x * sx)},{round(y * sy)},"
                                 f"{max(1, round(w * sx))},{max(1, round(h * sy))}"))
    return out


def terms_of(q: str | None) -> list[str]:
    terms = query_terms(q or "")
    if not terms:
        raise InvalidParameter("q", "no words to search for")
    return terms


def annotation_page(view: CopyView, *, base: str, query: str,
                    hits: list[tuple[int, str, str]]) -> dict[str, Any]:
    """The Content Search 2.0 answer: hits as (page, word, xywh)."""
    from urllib.parse import urlencode

    bag = view.bag_id
    search_id = f"{base}/iiif/search/{bag}?{urlencode({'q': query})}"
    items = []
    for n, (page, word, xywh) in enumerate(hits[:MAX_HITS], start=1):
        canvas = f"{base}/iiif/presentation/{bag}/canvas/{page}"
        items.append({
            "id": f"{base}/iiif/search/{bag}/annotation/{page}-{n}",
            "type": "Annotation",
            "motivation": "highlighting",
            "body": {"type": "TextualBody", "value": word, "format": "text/plain"},
            "target": f"{canvas}#xywh={xywh}",
        })
    return {"@context": SEARCH_CONTEXT, "id": search_id, "type": "AnnotationPage",
            "items": items}

