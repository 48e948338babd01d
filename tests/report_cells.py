"""Compare a report printed in two languages: the same tables and the same figures."""

from __future__ import annotations

import re
from html.parser import HTMLParser

NUMBER = re.compile(r"[\d][\d .,:\-]*")


class _Cells(HTMLParser):
    """The text of every table cell, table by table and row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.tables:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def cells(page: str) -> list[list[list[str]]]:
    parser = _Cells()
    parser.feed(page)
    return parser.tables


def assert_same_figures(english: str, other: str) -> None:
    """Both pages have the same tables, rows and cells, every figure (a cell of digits:
    counts, sums, dates, numbers) is the same at the same place, and the numbers of the
    sentences around the tables (counts, dates, periods) are the same, in the same order."""
    en, tr = cells(english), cells(other)
    assert [[len(r) for r in t] for t in en] == [[len(r) for r in t] for t in tr]
    figures = 0
    for t_en, t_tr in zip(en, tr, strict=True):
        for r_en, r_tr in zip(t_en, t_tr, strict=True):
            for c_en, c_tr in zip(r_en, r_tr, strict=True):
                if NUMBER.fullmatch(c_en):
                    assert c_tr == c_en
                    figures += 1
    in_text = [re.findall(r"\d+(?:[.,:\-]\d+)*", re.sub(r"<[^>]+>", " ", page))
               for page in (english, other)]
    assert in_text[0] == in_text[1]
    assert figures + len(in_text[0]) > 0
