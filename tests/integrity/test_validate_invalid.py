"""Each rule of RFC 8493 broken once: the bag is refused with the right problem and fields.

Every bag here is first built valid (by hand, see conftest), then broken in exactly one way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from integrity.errors import BagInvalid, BagUnreadableError
from integrity.problems import (
    BadDeclaration,
    BadEncoding,
    BagProblem,
    ChecksumMismatch,
    DuplicateEntry,
    FetchPending,
    ForbiddenEntry,
    MalformedLine,
    MissingElement,
    MissingFile,
    OxumMismatch,
    UnexpectedFile,
    UnsafePath,
    UnsupportedAlgorithm,
)
from integrity.validate import is_valid, problems, validate
from tests.integrity.conftest import BagWriter, digest

Simple = dict[str, object]


def only(found: list[BagProblem], kind: type[BagProblem]) -> list[BagProblem]:
    return [p for p in found if isinstance(p, kind)]


def simple_bag(make_bag: BagWriter, **kw: object) -> Path:
    """One payload file, one sha256 manifest, no tag manifests: breaks stay isolated."""
    options: Simple = {"algorithms": ("sha256",), "tag_manifests": False}
    options.update(kw)
    return make_bag({"a.txt": b"alpha\n"}, **options)


def set_manifest(bag: Path, text: str, name: str = "manifest-sha256.txt") -> None:
    (bag / name).write_bytes(text.encode())


A = digest(b"alpha\n", "sha256")


# -- bagit.txt ---------------------------------------------------------------------------------

def test_missing_declaration(make_bag: BagWriter) -> None:
    bag = make_bag()
    (bag / "bagit.txt").unlink()
    found = problems(bag)
    assert [(type(p), p.path) for p in found] == [(MissingElement, "bagit.txt")]  # type: ignore[attr-defined]
    assert not is_valid(bag)


def test_declaration_with_bom(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag)
    p = bag / "bagit.txt"
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    found = problems(bag)
    assert [type(x) for x in found] == [BadEncoding]
    assert found[0].file == "bagit.txt"  # type: ignore[attr-defined]


def test_declaration_not_utf8(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag)
    (bag / "bagit.txt").write_bytes(b"BagIt-Version: 1.0\nTag-File-Character-Encoding: \xff\n")
    assert [type(x) for x in problems(bag)] == [BadEncoding]


def test_declaration_with_three_lines(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag)
    with (bag / "bagit.txt").open("a") as f:
        f.write("Extra: line\n")
    assert [type(x) for x in problems(bag)] == [BadDeclaration]


def test_declaration_first_line_malformed(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag)
    (bag / "bagit.txt").write_text("BagIt-Version:1.0\nTag-File-Character-Encoding: UTF-8\n")
    found = problems(bag)
    assert [(type(p), p.file, p.line_no) for p in found] == [  # type: ignore[attr-defined]
        (MalformedLine, "bagit.txt", 1)]


def test_declaration_lines_swapped(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag)
    (bag / "bagit.txt").write_text("Tag-File-Character-Encoding: UTF-8\nBagIt-Version: 1.0\n")
    found = problems(bag)
    assert {(p.file, p.line_no) for p in only(found, MalformedLine)} == {  # type: ignore[attr-defined]
        ("bagit.txt", 1), ("bagit.txt", 2)}


def test_unknown_version(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag, version="2.0")
    assert [type(x) for x in problems(bag)] == [BadDeclaration]


def test_unknown_encoding(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag)
    (bag / "bagit.txt").write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: NOPE-8\n")
    assert [type(x) for x in problems(bag)] == [BadDeclaration]


def test_tag_file_not_in_declared_encoding(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag, oxum=False)
    with (bag / "bag-info.txt").open("ab") as f:
        f.write(b"Title: \xd0\n")  # truncated UTF-8 sequence
    found = problems(bag)
    assert found == [BadEncoding("bag-info.txt", found[0].reason)]  # type: ignore[attr-defined]


# -- required elements -------------------------------------------------------------------------

def test_missing_payload_directory(make_bag: BagWriter) -> None:
    bag = make_bag({}, tag_manifests=False)
    (bag / "data").rmdir()
    assert [p.path for p in only(problems(bag), MissingElement)] == ["data/"]  # type: ignore[attr-defined]


def test_no_payload_manifest(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag, oxum=False)
    (bag / "manifest-sha256.txt").unlink()
    found = problems(bag)
    assert [p.path for p in only(found, MissingElement)] == ["manifest-<algorithm>.txt"]  # type: ignore[attr-defined]


def test_unsupported_algorithm(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag)
    set_manifest(bag, f"{A}  data/a.txt\n", "manifest-whirlpool.txt")
    assert problems(bag) == [UnsupportedAlgorithm("manifest-whirlpool.txt", "whirlpool")]


# -- checksums ---------------------------------------------------------------------------------

def test_one_flipped_byte_is_found_by_every_algorithm(make_bag: BagWriter) -> None:
    bag = make_bag()
    target = bag / "data" / "sub" / "b.bin"
    original = target.read_bytes()
    flipped = bytearray(original)
    flipped[517] ^= 0x01
    target.write_bytes(bytes(flipped))
    found = problems(bag)
    assert sorted(found, key=lambda p: p.algorithm) == [  # type: ignore[attr-defined]
        ChecksumMismatch("data/sub/b.bin", alg, digest(original, alg), digest(bytes(flipped), alg))
        for alg in ("sha256", "sha512")
    ]
    with pytest.raises(BagInvalid) as info:
        validate(bag)
    assert info.value.problems == tuple(found)
    assert info.value.exit_code == 1


def test_tampered_tag_file_is_found_by_tag_manifests(make_bag: BagWriter) -> None:
    bag = make_bag()
    info = bag / "bag-info.txt"
    before = info.read_bytes()
    info.write_bytes(before.replace(b"KZ-TEST-1", b"KZ-TEST-2"))
    found = problems(bag)
    assert {(p.path, p.algorithm, p.expected) for p in found} == {  # type: ignore[attr-defined]
        ("bag-info.txt", alg, digest(before, alg)) for alg in ("sha256", "sha512")}
    assert all(isinstance(p, ChecksumMismatch) for p in found)


def test_tampered_manifest_is_found(make_bag: BagWriter) -> None:
    bag = make_bag()
    m = bag / "manifest-sha256.txt"
    m.write_text(m.read_text().replace(digest(b"alpha\n", "sha256"), "0" * 64))
    found = problems(bag)
    payload = [p for p in found if p.path == "data/a.txt"]  # type: ignore[attr-defined]
    assert payload == [ChecksumMismatch("data/a.txt", "sha256", "0" * 64, A)]
    assert {p.path for p in found} == {"data/a.txt", "manifest-sha256.txt"}  # type: ignore[attr-defined]


# -- completeness ------------------------------------------------------------------------------

def test_missing_payload_file(make_bag: BagWriter) -> None:
    bag = make_bag(tag_manifests=False, oxum=False)
    (bag / "data" / "a.txt").unlink()
    assert sorted(problems(bag), key=str) == sorted(
        [MissingFile("data/a.txt", f"manifest-{alg}.txt") for alg in ("sha256", "sha512")], key=str)


def test_extra_payload_file(make_bag: BagWriter) -> None:
    bag = make_bag(tag_manifests=False, oxum=False)
    (bag / "data" / "smuggled.txt").write_text("not in any manifest")
    assert sorted(problems(bag), key=str) == sorted(
        [UnexpectedFile("data/smuggled.txt", f"manifest-{a}.txt") for a in ("sha256", "sha512")],
        key=str)


def test_file_missing_from_one_of_two_manifests(make_bag: BagWriter) -> None:
    # BagIt 1.0: every payload file MUST be listed in every payload manifest.
    bag = make_bag({"a.txt": b"a", "b.txt": b"b"}, tag_manifests=False)
    m = bag / "manifest-sha512.txt"
    m.write_text("".join(line for line in m.read_text().splitlines(True) if "b.txt" not in line))
    assert problems(bag) == [UnexpectedFile("data/b.txt", "manifest-sha512.txt")]


def test_oxum_mismatch(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag, oxum=False, bag_info_extra="Payload-Oxum: 7.2\n")
    assert problems(bag) == [OxumMismatch(7, 2, 6, 1)]


def test_oxum_malformed(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag, oxum=False, bag_info_extra="Payload-Oxum: six.one\n")
    found = problems(bag)
    assert [(type(p), p.file, p.line_no) for p in found] == [  # type: ignore[attr-defined]
        (MalformedLine, "bag-info.txt", 3)]


def test_oxum_given_twice(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag, bag_info_extra="Payload-Oxum: 6.1\n")
    assert problems(bag) == [DuplicateEntry("bag-info.txt", "Payload-Oxum", (3, 4))]


def test_fetch_txt_is_reported_never_fetched(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag, oxum=False)
    remote = digest(b"remote", "sha256")
    set_manifest(bag, f"{A}  data/a.txt\n{remote}  data/remote.bin\n")
    url = "http://127.0.0.1:9/never-contacted.bin"
    (bag / "fetch.txt").write_text(f"{url} 6 data/remote.bin\n")
    assert problems(bag) == [FetchPending("data/remote.bin", url, 6)]
    assert not (bag / "data" / "remote.bin").exists()


def test_fetch_txt_listing_a_tag_file(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag)
    (bag / "fetch.txt").write_text("http://127.0.0.1:9/x - bag-info.txt\n")
    found = problems(bag)
    assert [(type(p), p.path) for p in found] == [(ForbiddenEntry, "bag-info.txt")]  # type: ignore[attr-defined]


def test_fetch_txt_file_not_in_manifest(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag)
    (bag / "fetch.txt").write_text(
        "http://127.0.0.1:9/x - data/a.txt\nhttp://127.0.0.1:9/y 3 data/z\n"
    )
    found = problems(bag)
    assert [(type(p), p.path) for p in found] == [  # type: ignore[attr-defined]
        (ForbiddenEntry, "data/z"), (FetchPending, "data/z")]


def test_fetch_txt_malformed_length(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag)
    (bag / "fetch.txt").write_text("http://127.0.0.1:9/x many data/a.txt\n")
    assert [(type(p), p.line_no) for p in problems(bag)] == [(MalformedLine, 1)]  # type: ignore[attr-defined]


# -- path safety -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "listed",
    ["data/../../etc/passwd", "/etc/passwd", "data/./a.txt", "data//a.txt", "C:/x/data/a.txt"],
)
def test_unsafe_paths_in_manifest(make_bag: BagWriter, listed: str) -> None:
    bag = simple_bag(make_bag)
    set_manifest(bag, f"{A}  data/a.txt\n{A}  {listed}\n")
    found = problems(bag)
    assert [(type(p), p.file, p.path) for p in found] == [  # type: ignore[attr-defined]
        (UnsafePath, "manifest-sha256.txt", listed)]


def test_payload_manifest_listing_a_tag_file(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag)
    info_sum = digest((bag / "bag-info.txt").read_bytes(), "sha256")
    set_manifest(bag, f"{A}  data/a.txt\n{info_sum}  bag-info.txt\n")
    found = problems(bag)
    assert [(type(p), p.path) for p in found] == [(UnsafePath, "bag-info.txt")]  # type: ignore[attr-defined]


def test_link_escaping_the_bag_is_refused_and_not_read(make_bag: BagWriter, tmp_path: Path) -> None:
    secret = tmp_path / "outside-secret.txt"
    secret.write_text("must never be hashed")
    bag = simple_bag(make_bag, oxum=False)
    (bag / "data" / "escape.txt").symlink_to(secret)
    escape_sum = digest(secret.read_bytes(), "sha256")
    set_manifest(bag, f"{A}  data/a.txt\n{escape_sum}  data/escape.txt\n")
    found = problems(bag)
    assert UnsafePath("data/escape.txt", "data/escape.txt",
                      only(found, UnsafePath)[0].reason) in found  # type: ignore[attr-defined]
    # The target is not a file of the bag: the manifest entry is missing, not verified.
    assert MissingFile("data/escape.txt", "manifest-sha256.txt") in found


def test_link_to_a_folder_is_refused(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag)
    (bag / "data" / "loop").symlink_to(bag / "data")
    assert [(type(p), p.path) for p in problems(bag)] == [(UnsafePath, "data/loop")]  # type: ignore[attr-defined]


def test_dangling_link(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag)
    (bag / "data" / "dangling").symlink_to("nowhere")
    assert [type(p) for p in problems(bag)] == [UnsafePath]


# -- line format -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("line", "why"),
    [
        (f"{A}data/a.txt", "no separator"),
        (f" {A}  data/a.txt", "leading whitespace"),
        (f"{A[:-1]}  data/a.txt", "short checksum"),
        (f"{'g' * 64}  data/a.txt", "not hex"),
        ("", "empty line"),
    ],
)
def test_malformed_manifest_line(make_bag: BagWriter, line: str, why: str) -> None:
    bag = simple_bag(make_bag)
    set_manifest(bag, f"{A}  data/a.txt\n{line}\n")
    found = problems(bag)
    assert [(type(p), p.file, p.line_no) for p in found] == [  # type: ignore[attr-defined]
        (MalformedLine, "manifest-sha256.txt", 2)], why


def test_bare_percent_in_manifest_path(make_bag: BagWriter) -> None:
    bag = make_bag({"100%.txt": b"x"}, algorithms=("sha256",), tag_manifests=False)
    set_manifest(bag, f"{digest(b'x', 'sha256')}  data/100%.txt\n")
    found = problems(bag)
    assert [(type(p), p.line_no) for p in found if isinstance(p, MalformedLine)] == [
        (MalformedLine, 1)]


def test_duplicate_manifest_entry(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag)
    set_manifest(bag, f"{A}  data/a.txt\n{A}  data/a.txt\n")
    assert problems(bag) == [DuplicateEntry("manifest-sha256.txt", "data/a.txt", (1, 2))]


def test_duplicate_entry_spelled_with_dot_slash(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag)
    set_manifest(bag, f"{A}  data/a.txt\n{A}  ./data/a.txt\n")
    assert problems(bag) == [DuplicateEntry("manifest-sha256.txt", "data/a.txt", (1, 2))]


@pytest.mark.parametrize(
    ("extra", "line_no"),
    [
        ("Title:no space\n", 4),
        ("No colon here\n", 4),
        ("Title : spaced label\n", 4),
        ("Title: unterminated", 4),
    ],
)
def test_malformed_bag_info(make_bag: BagWriter, extra: str, line_no: int) -> None:
    bag = simple_bag(make_bag, bag_info_extra=extra)
    found = problems(bag)
    assert [(type(p), p.file, p.line_no) for p in found] == [  # type: ignore[attr-defined]
        (MalformedLine, "bag-info.txt", line_no)]


def test_bag_info_continuation_line_is_accepted(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag, bag_info_extra="Title: a long\n  continued title\n")
    assert problems(bag) == []


def test_bag_info_starting_with_continuation(make_bag: BagWriter) -> None:
    bag = simple_bag(make_bag, oxum=False)
    (bag / "bag-info.txt").write_text("  orphan continuation\nTitle: x\n")
    assert [(type(p), p.line_no) for p in problems(bag)] == [(MalformedLine, 1)]  # type: ignore[attr-defined]


# -- tag manifests -----------------------------------------------------------------------------

def test_tag_manifest_listing_payload_and_tag_manifests(make_bag: BagWriter) -> None:
    bag = make_bag(algorithms=("sha256",))
    tm = bag / "tagmanifest-sha256.txt"
    tm.write_text(tm.read_text() + f"{A}  data/a.txt\n{'0' * 64}  tagmanifest-sha256.txt\n")
    found = problems(bag)
    assert sorted((p.manifest, p.path) for p in found) == [  # type: ignore[attr-defined]
        ("tagmanifest-sha256.txt", "data/a.txt"),
        ("tagmanifest-sha256.txt", "tagmanifest-sha256.txt")]
    assert all(isinstance(p, ForbiddenEntry) for p in found)


def test_tag_manifest_listing_a_missing_tag_file(make_bag: BagWriter) -> None:
    bag = make_bag(algorithms=("sha256",))
    tm = bag / "tagmanifest-sha256.txt"
    tm.write_text(tm.read_text() + f"{'0' * 64}  metadata/premis.xml\n")
    assert problems(bag) == [MissingFile("metadata/premis.xml", "tagmanifest-sha256.txt")]


def test_many_problems_are_reported_together(make_bag: BagWriter) -> None:
    bag = make_bag(tag_manifests=False)
    (bag / "data" / "a.txt").write_text("changed")
    (bag / "data" / "new.txt").write_text("new")
    found = problems(bag)
    kinds = {type(p) for p in found}
    assert {ChecksumMismatch, UnexpectedFile, OxumMismatch} <= kinds


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(BagUnreadableError):
        problems(tmp_path / "absent")
