"""Issue 15 item 6: search shows a copy only to those who may read it (R6, R10).

A restricted copy is invisible to a visitor who may not read it: not listed, not counted, no
page number, no snippet; and prefix probing ("the word starts with…") answers exactly as a
word that occurs nowhere, so the text of a restricted copy cannot be guessed word by word.
"""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from elibrary.models import Rights
from tests.elibrary.conftest import INSIDE_IP, OUTSIDE_IP, _library, build_app
from tests.elibrary.library import Library, MadeCopy
from tests.elibrary.test_security import client, sign_in


@pytest.fixture(scope="module")
def rights_library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Library, dict[str, MadeCopy]]:
    lib = _library(tmp_path_factory.mktemp("search-rights"))
    lib.add_reader("T-2001")
    made = {
        "open": lib.add_copy(title="Ашық кітап", rights=Rights.OPEN,
                             pages=["Бірінші бет: ортақ сөз.", "Екінші бет."]),
        "readers": lib.add_copy(title="Оқырман кітабы", rights=Rights.READERS,
                                pages=["Ортақ сөз және құпиясөзбірінші мәтін.",
                                       "Екінші бет: оқырманға ғана."]),
        "room": lib.add_copy(title="Зал кітабы", rights=Rights.READING_ROOM,
                             pages=["Ортақ сөз, залсөзі мәтіні."]),
    }
    return lib, made


@pytest.fixture(scope="module")
def rights_app(rights_library: tuple[Library, dict[str, MadeCopy]]) -> FastAPI:
    return build_app(rights_library[0])


def _results(c: TestClient, q: str) -> str:
    r = c.get("/search", params={"q": q})
    assert r.status_code == 200
    # The query itself is echoed in the form; what remains is what the index revealed.
    return r.text.replace(q, "QUERY")


def _count(page: str) -> int:
    m = re.search(r'<h2 id="results-heading">(\d+)', page)
    assert m, page
    return int(m.group(1))


def test_anonymous_visitors_neither_see_nor_count_restricted_copies(
    rights_app: FastAPI, rights_library: tuple[Library, dict[str, MadeCopy]],
) -> None:
    made = rights_library[1]
    anonymous = client(rights_app, OUTSIDE_IP)
    page = _results(anonymous, "ортақ")
    assert _count(page) == 1  # the open copy's page 1 only
    assert made["open"].bag_id in page
    for hidden in ("readers", "room"):
        assert made[hidden].bag_id not in page
    assert "Оқырман кітабы" not in page and "Зал кітабы" not in page


def test_prefix_probes_of_restricted_text_answer_like_a_word_found_nowhere(
    rights_app: FastAPI,
) -> None:
    anonymous = client(rights_app, OUTSIDE_IP)
    nowhere = _results(anonymous, "жоқсөзжоқ")
    assert _count(nowhere) == 0
    for probe in ("құпиясөз", "құпиясөзб", "құпия", "оқырманға", "залсөзі"):
        assert _results(anonymous, probe) == nowhere, probe


def test_a_reader_sees_what_he_may_read_and_nothing_of_the_reading_room_from_outside(
    rights_app: FastAPI, rights_library: tuple[Library, dict[str, MadeCopy]],
) -> None:
    made = rights_library[1]
    outside = client(rights_app, OUTSIDE_IP)
    sign_in(outside, "T-2001")
    page = _results(outside, "ортақ")
    assert _count(page) == 2
    assert made["readers"].bag_id in page and "<mark>" in page
    assert made["room"].bag_id not in page
    assert _count(_results(outside, "залсөзі")) == 0
    inside = client(rights_app, INSIDE_IP)
    sign_in(inside, "T-2001")
    page = _results(inside, "ортақ")
    assert _count(page) == 3 and made["room"].bag_id in page
    assert _count(_results(inside, "залсөзі")) == 1


def test_library_search_takes_the_rights_the_caller_may_read(
    rights_library: tuple[Library, dict[str, MadeCopy]],
) -> None:
    from elibrary.textindex import search

    lib = rights_library[0]
    with lib.sessions() as s:
        assert search(s, "ортақ", readable={Rights.OPEN}).total == 1
        assert search(s, "ортақ", readable=set()).total == 0
        # Dark copies are never found, even if a caller asks for them.
        assert search(s, "ортақ", readable=set(Rights)).total == 3
