"""HTTP Range reads of encrypted copies return exactly the plaintext bytes (206/416/200)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elibrary.delivery import parse_range
from elibrary.errors import RangeNotSatisfiable
from elibrary.models import Rights
from tests.elibrary.conftest import Copies, build_app
from tests.elibrary.library import Library, MadeCopy


@pytest.fixture(scope="module")
def big_copy(library: Library, tmp_path_factory: pytest.TempPathFactory) -> MadeCopy:
    """An open copy whose "PDF" spans many 64 KiB segments (3 MiB + an odd tail)."""
    import random

    path = tmp_path_factory.mktemp("big") / "big.pdf"
    data = b"%PDF-1.7\n" + random.Random(8).randbytes(3 * 1024 * 1024 + 12345)
    path.write_bytes(data)
    return library.add_copy(title="Үлкен файл", pages=["бет"], rights=Rights.OPEN, pdf=path)


@pytest.fixture(scope="module")
def http(library: Library, copies: Copies) -> TestClient:
    return TestClient(build_app(library), base_url="https://testserver")


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_ranges_return_exactly_the_plaintext(http: TestClient, big_copy: MadeCopy,
                                                    data: st.DataObject) -> None:
    plain = big_copy.pdf_bytes
    size = len(plain)
    kind = data.draw(st.sampled_from(["closed", "open", "suffix"]))
    if kind == "closed":
        start = data.draw(st.integers(0, size - 1))
        end = data.draw(st.integers(start, size + 5000))
        header, want = f"bytes={start}-{end}", plain[start:end + 1]
        first = start
    elif kind == "open":
        start = data.draw(st.integers(0, size - 1))
        header, want, first = f"bytes={start}-", plain[start:], start
    else:
        n = data.draw(st.integers(1, size + 100))
        header, want, first = f"bytes=-{n}", plain[-n:], max(0, size - n)
    r = http.get(f"/copies/{big_copy.bag_id}/file.pdf", headers={"Range": header})
    assert r.status_code == 206
    assert r.content == want
    assert r.headers["content-range"] == f"bytes {first}-{first + len(want) - 1}/{size}"
    assert int(r.headers["content-length"]) == len(want)


def test_whole_file_and_head(http: TestClient, big_copy: MadeCopy) -> None:
    r = http.get(f"/copies/{big_copy.bag_id}/file.pdf")
    assert r.status_code == 200 and r.content == big_copy.pdf_bytes
    assert r.headers["accept-ranges"] == "bytes"
    h = http.head(f"/copies/{big_copy.bag_id}/file.pdf", headers={"Range": "bytes=10-19"})
    assert h.status_code == 206 and h.headers["content-length"] == "10" and h.content == b""


@pytest.mark.parametrize("header", ["bytes=99999999-", "bytes=-0", f"bytes={2**70}-"])
def test_unsatisfiable_ranges_get_416(http: TestClient, big_copy: MadeCopy, header: str) -> None:
    r = http.get(f"/copies/{big_copy.bag_id}/file.pdf", headers={"Range": header})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(big_copy.pdf_bytes)}"
    assert big_copy.pdf_bytes[:100] not in r.content


@pytest.mark.parametrize("header", ["bytes=5-1", "items=0-5", "bytes=a-b", "bytes=0-1,5-9"])
def test_malformed_or_multiple_ranges_get_the_whole_file(http: TestClient, big_copy: MadeCopy,
                                                         header: str) -> None:
    r = http.get(f"/copies/{big_copy.bag_id}/file.pdf", headers={"Range": header})
    assert r.status_code == 200 and r.content == big_copy.pdf_bytes


def test_if_range_with_another_etag_gets_the_whole_file(http: TestClient,
                                                        big_copy: MadeCopy) -> None:
    r = http.get(f"/copies/{big_copy.bag_id}/file.pdf",
                 headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert r.status_code == 200 and len(r.content) == len(big_copy.pdf_bytes)


@pytest.mark.parametrize("end", ["9" * 20, "1" + "0" * 19, "0" * 25 + "5" * 20, "7" * 5000])
def test_a_range_end_with_many_digits_is_clamped_to_the_file_end(
    http: TestClient, big_copy: MadeCopy, end: str,
) -> None:
    """Issue 15 item 8 (RFC 9110 §14.1.2): a last-pos past the end means the end, not 416."""
    size = len(big_copy.pdf_bytes)
    r = http.get(f"/copies/{big_copy.bag_id}/file.pdf", headers={"Range": f"bytes=100-{end}"})
    assert r.status_code == 206, r.text[:200]
    assert r.headers["content-range"] == f"bytes 100-{size - 1}/{size}"
    assert r.content == big_copy.pdf_bytes[100:]
    assert parse_range(f"bytes=-{end}", size) == (0, size)  # suffix longer than the file


def test_parse_range_rules() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-0", 100) == (0, 1)
    assert parse_range("bytes=90-200", 100) == (90, 100)
    assert parse_range("bytes=-10", 100) == (90, 100)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=100-", 100)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-5", 0)


def test_a_damaged_copy_is_not_served_as_if_it_were_whole(library: Library) -> None:
    """A flipped ciphertext byte: the segment fails authentication and no bytes of it go out."""
    import stat

    made = library.add_copy(title="Бүлінген", pages=["бет"], rights=Rights.OPEN)
    path = library.store.root / "bags" / made.bag_id / "data" / "access" / "copy.pdf"
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    raw = bytearray(path.read_bytes())
    raw[300] ^= 0x01
    path.write_bytes(bytes(raw))
    http = TestClient(build_app(library), base_url="https://testserver",
                      raise_server_exceptions=False)
    r = http.get(f"/copies/{made.bag_id}/file.pdf", headers={"Range": "bytes=0-99"})
    assert r.status_code == 500
    assert made.pdf_bytes[:100] not in r.content
