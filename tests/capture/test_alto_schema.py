"""Validation of ALTO against the official ALTO 4.4 schema: offline, cached, safe across threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from flows.capture import CaptureOptions, load_pages, process_page
from flows.capture.ocr import (
    XLINK_SCHEMA_LOCATION,
    Line,
    PageText,
    Paragraph,
    Word,
    alto_errors,
    write_alto,
)
from flows.errors import AltoInvalid, ToolFailed, ToolMissing

from .conftest import small_page


def small_alto(folder: Path) -> Path:
    """ALTO written by Qor for a hand-made page of two words (no OCR run needed)."""
    words = (Word("Қор", (100, 100, 180, 140), 93.0), Word("№5", (200, 100, 260, 140), 88.0))
    line = Line((100, 100, 260, 140), (0.0, -4.0), 30.0, words)
    page = PageText(1000, 1400, (Paragraph((100, 100, 260, 140), "kaz", (line,)),))
    folder.mkdir(parents=True, exist_ok=True)
    return write_alto(
        page, folder / "p1.alto.xml", image_name="p1.png", page_number=1,
        software_version="5.3.0", settings="-l kaz+rus+eng",
    )


class _CountingHandler(BaseHTTPRequestHandler):
    """Serves the xlink schema to anyone who asks, and counts the asking."""

    body: ClassVar[bytes] = b""
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output quiet
        pass


@pytest.fixture
def xlink_server(official_alto_schema: Path) -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that would hand out a valid xlink schema; (url, requests seen)."""
    _CountingHandler.body = official_alto_schema.with_name("xlink.xsd").read_bytes()
    _CountingHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/xlink.xsd", _CountingHandler.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_qor_alto_is_valid_and_the_import_resolves_offline(
    tmp_path: Path, official_alto_schema: Path
) -> None:
    assert alto_errors(small_alto(tmp_path), schema=official_alto_schema) == []


def test_an_unmapped_import_fails_and_is_never_fetched(
    tmp_path: Path, official_alto_schema: Path, xlink_server: tuple[str, list[str]]
) -> None:
    url, requests = xlink_server
    text = official_alto_schema.read_text(encoding="utf-8")
    assert text.count(XLINK_SCHEMA_LOCATION) == 1
    schema = tmp_path / "alto-4-4.xsd"
    schema.write_text(text.replace(XLINK_SCHEMA_LOCATION, url), encoding="utf-8")
    (tmp_path / "xlink.xsd").write_bytes(official_alto_schema.with_name("xlink.xsd").read_bytes())
    with pytest.raises(ToolFailed, match="not mapped to a local file") as raised:
        alto_errors(small_alto(tmp_path / "alto"), schema=schema)
    assert url in str(raised.value)
    assert requests == [], "the schema's import must never be fetched"


def test_a_missing_schema_or_import_is_named(tmp_path: Path, official_alto_schema: Path) -> None:
    alto = small_alto(tmp_path)
    with pytest.raises(ToolMissing, match="infra/test-services alto"):
        alto_errors(alto, schema=tmp_path / "nowhere" / "alto-4-4.xsd")
    lonely = tmp_path / "lonely" / "alto-4-4.xsd"
    lonely.parent.mkdir()
    lonely.write_bytes(official_alto_schema.read_bytes())  # without xlink.xsd beside it
    with pytest.raises(ToolMissing, match=r"local copy of http://www\.loc\.gov/.*xlink\.xsd"):
        alto_errors(alto, schema=lonely)


def test_without_a_schema_argument_qor_alto_schema_is_used(
    tmp_path: Path, official_alto_schema: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = small_alto(tmp_path)
    broken.write_text(broken.read_text(encoding="utf-8").replace('WC="0.93"', 'WC="2.5"'),
                      encoding="utf-8")
    monkeypatch.setenv("QOR_ALTO_SCHEMA", str(official_alto_schema))
    assert any("WC" in e for e in alto_errors(broken))
    monkeypatch.setenv("QOR_ALTO_SCHEMA", str(tmp_path / "missing.xsd"))
    with pytest.raises(ToolMissing, match=r"missing\.xsd"):
        alto_errors(broken)


def test_unreadable_and_malformed_files_are_errors_not_crashes(
    tmp_path: Path, official_alto_schema: Path
) -> None:
    alto = small_alto(tmp_path)
    cut = tmp_path / "cut.alto.xml"
    cut.write_bytes(alto.read_bytes()[: alto.stat().st_size // 2])
    [error] = alto_errors(cut, schema=official_alto_schema)
    assert "not well-formed" in error
    [error] = alto_errors(tmp_path / "absent.alto.xml", schema=official_alto_schema)
    assert "cannot be read" in error


def full_page_alto(folder: Path) -> Path:
    """ALTO written by Qor for a hand-made full page: 40 lines of 12 words."""
    lines = tuple(
        Line(
            (100, 100 + 40 * r, 1300, 140 + 40 * r), (0.0, -4.0), 30.0,
            tuple(
                Word(f"сөз{c}", (100 + 100 * c, 100 + 40 * r, 180 + 100 * c, 140 + 40 * r), 90.0)
                for c in range(12)
            ),
        )
        for r in range(40)
    )
    page = PageText(1500, 2000, (Paragraph((100, 100, 1300, 1740), "kaz", lines),))
    folder.mkdir(parents=True, exist_ok=True)
    return write_alto(
        page, folder / "full.alto.xml", image_name="full.png", page_number=1,
        software_version="5.3.0", settings="-l kaz+rus+eng",
    )


def test_validation_from_many_threads_keeps_each_files_errors_apart(
    tmp_path: Path, official_alto_schema: Path
) -> None:
    # One compiled schema is shared by all threads, and lxml keeps one error log per schema:
    # unguarded, about 1 answer in 10 here is another file's (measured while writing this test).
    good = full_page_alto(tmp_path)
    bad = tmp_path / "bad.alto.xml"
    bad.write_text(good.read_text(encoding="utf-8").replace("<String ", "<Word ", 1),
                   encoding="utf-8")
    files = [good if i % 2 else bad for i in range(160)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda f: alto_errors(f, schema=official_alto_schema), files))
    wrong = [
        i for i, (f, e) in enumerate(zip(files, answers, strict=True)) if (f == good) != (not e)
    ]
    assert wrong == []


def test_a_page_whose_alto_fails_the_schema_fails_its_stage(
    tmp_path: Path, official_alto_schema: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fault is injected at the schema: one that allows only a Description, so Qor's Layout
    # is refused. The engine must raise, naming the file and the schema's complaint.
    strict = tmp_path / "schema" / "alto-4-4.xsd"
    strict.parent.mkdir()
    strict.write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        'targetNamespace="http://www.loc.gov/standards/alto/ns-v4#" '
        'elementFormDefault="qualified"><xs:element name="alto"><xs:complexType><xs:sequence>'
        '<xs:any processContents="skip" minOccurs="0" maxOccurs="1"/></xs:sequence>'
        '<xs:anyAttribute processContents="skip"/></xs:complexType></xs:element></xs:schema>',
        encoding="utf-8",
    )
    (strict.parent / "xlink.xsd").write_bytes(
        official_alto_schema.with_name("xlink.xsd").read_bytes()
    )
    source = tmp_path / "page.png"
    small_page().save(source, dpi=(300, 300))
    options = CaptureOptions(orientation=False)
    page = load_pages([source], options=options)[0]
    monkeypatch.setenv("QOR_ALTO_SCHEMA", str(strict))
    with pytest.raises(AltoInvalid) as err:
        process_page(page, work_dir=tmp_path / "work", options=options)
    assert err.value.alto.name == "page.alto.xml"
    assert err.value.errors and any("Layout" in e for e in err.value.errors)
    assert err.value.exit_code == 4 and not err.value.retryable
    # With the official schema the same page passes.
    monkeypatch.setenv("QOR_ALTO_SCHEMA", str(official_alto_schema))
    result = process_page(page, work_dir=tmp_path / "work2", options=options)
    assert alto_errors(result.alto_path, schema=official_alto_schema) == []
