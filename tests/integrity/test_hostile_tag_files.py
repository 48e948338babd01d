"""A hostile bag cannot make validation hang or eat memory (issue 15, item 7): a manifest line of
hundreds of megabytes, a bag-info.txt of hundreds of megabytes, an oversized bag declaration, a
manifest of millions of short lines and a tag file of nothing but faulty lines are each refused,
named, in bounded time and memory (:data:`MAX_TAG_LINE`, :data:`MAX_BAG_INFO`,
:data:`MAX_MANIFEST_SURPLUS`, :data:`MAX_TAG_FILE_PROBLEMS`).
Measured in a child process, so its peak memory is the validator's own."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from integrity.problems import (
    DuplicateEntry,
    MalformedLine,
    MissingFile,
    TooManyLines,
    TooManyProblems,
)
from integrity.validate import (
    MAX_BAG_INFO,
    MAX_MANIFEST_SURPLUS,
    MAX_TAG_FILE_PROBLEMS,
    MAX_TAG_LINE,
    problems,
)

HUGE = 200 * 1024 * 1024
PROBE = """
import json, resource, sys, time
from integrity.validate import problems
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
found = problems(sys.argv[1])
took = time.perf_counter() - t0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": took, "growth_kib": after - before,
                  "problems": [[type(p).__name__, getattr(p, "file", getattr(p, "path", "")),
                                getattr(p, "line_no", None), getattr(p, "limit", None)]
                               for p in found]}))
"""


def minimal_bag(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "a.txt").write_bytes(b"alpha")
    (root / "bagit.txt").write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    (root / "manifest-sha256.txt").write_text(
        "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8  data/a.txt\n")
    return root


def validate_in_child(bag: Path) -> dict[str, object]:
    run = subprocess.run([sys.executable, "-c", PROBE, str(bag)], capture_output=True,
                         text=True, timeout=120, check=True)
    result: dict[str, object] = json.loads(run.stdout)
    return result


def write_filler(path: Path, *, size: int, line: bytes | None) -> None:
    """``size`` bytes: one endless line (``line`` None) or ``line`` repeated."""
    block = (b"a" * (1 << 20)) if line is None else line * ((1 << 20) // len(line))
    with path.open("ab") as f:
        written = 0
        while written < size:
            f.write(block)
            written += len(block)


@pytest.fixture
def hostile_bag(tmp_path: Path) -> Path:
    return minimal_bag(tmp_path / "bag")


def test_a_manifest_line_of_200_megabytes_is_refused_unread(hostile_bag: Path) -> None:
    manifest = hostile_bag / "manifest-sha256.txt"
    write_filler(manifest, size=HUGE, line=None)
    started = time.monotonic()
    result = validate_in_child(hostile_bag)
    assert time.monotonic() - started < 60
    assert ["OversizedTagFile", "manifest-sha256.txt", 2, MAX_TAG_LINE] in result["problems"]
    assert float(result["seconds"]) < 2.0  # type: ignore[arg-type]
    assert int(result["growth_kib"]) < 64 * 1024  # type: ignore[call-overload]


def test_a_bag_info_of_200_megabytes_is_refused_unread(hostile_bag: Path) -> None:
    info = hostile_bag / "bag-info.txt"
    info.write_text("Source-Organization: State Library\n")
    write_filler(info, size=HUGE, line=b"Internal-Sender-Description: " + b"x" * 90 + b"\n")
    result = validate_in_child(hostile_bag)
    assert ["OversizedTagFile", "bag-info.txt", 0, MAX_BAG_INFO] in result["problems"]
    assert float(result["seconds"]) < 2.0  # type: ignore[arg-type]
    assert int(result["growth_kib"]) < 64 * 1024  # type: ignore[call-overload]


def test_an_oversized_bag_declaration_is_refused(hostile_bag: Path) -> None:
    write_filler(hostile_bag / "bagit.txt", size=8 * 1024 * 1024, line=b"X" * 100 + b"\n")
    result = validate_in_child(hostile_bag)
    assert ["OversizedTagFile", "bagit.txt", 0, 2 * MAX_TAG_LINE] in result["problems"]


def test_long_but_honest_lines_still_validate(hostile_bag: Path) -> None:
    """A path of 4,000 bytes (the most a file system holds) is far from the limit."""
    from integrity.validate import is_valid

    assert is_valid(hostile_bag)
    info = hostile_bag / "bag-info.txt"
    info.write_text("External-Description: " + "ә" * 2000 + "\n", encoding="utf-8")
    assert is_valid(hostile_bag)


def _digest(n: int) -> str:
    return f"{n * 0x9E3779B97F4A7C15:064x}"


def test_a_manifest_of_millions_of_short_lines_is_refused_past_the_bag_listing(
    hostile_bag: Path,
) -> None:
    """1.64 million honest-looking lines (the attack sweep's: 26 s and 2.9 GB before) for files
    the bag does not hold: the first MAX_MANIFEST_SURPLUS are reported missing one by one, the
    manifest is refused at the next line, in bounded time and memory."""
    manifest = hostile_bag / "manifest-sha256.txt"
    with manifest.open("a") as f:
        for start in range(1, 1_640_001, 10_000):
            f.write("".join(f"{_digest(n)}  data/page-{n:08d}.tif\n"
                            for n in range(start, start + 10_000)))
    result = validate_in_child(hostile_bag)
    found = result["problems"]
    assert isinstance(found, list)
    limit = 1 + MAX_MANIFEST_SURPLUS  # one payload file in the bag
    assert ["TooManyLines", "manifest-sha256.txt", limit + 1, limit] in found
    missing = [p for p in found if p[0] == "MissingFile"]
    assert len(missing) == MAX_MANIFEST_SURPLUS
    assert missing[0][1] == "data/page-00000001.tif"
    assert float(result["seconds"]) < 2.0  # type: ignore[arg-type]
    assert int(result["growth_kib"]) < 64 * 1024  # type: ignore[call-overload]


def test_a_manifest_may_list_up_to_the_margin_of_missing_files_each_reported(
    hostile_bag: Path,
) -> None:
    """BagIt's semantics are kept below the limit: every entry for a missing file is a
    MissingFile, like any other; one line more and the manifest is refused at that line."""
    manifest = hostile_bag / "manifest-sha256.txt"
    with manifest.open("a") as f:
        f.writelines(f"{_digest(n)}  data/gone-{n}.tif\n" for n in range(MAX_MANIFEST_SURPLUS))
    found = problems(hostile_bag)
    assert {type(p) for p in found} == {MissingFile}
    assert len(found) == MAX_MANIFEST_SURPLUS
    with manifest.open("a") as f:
        f.write(f"{_digest(0)}  data/one-too-many.tif\n")
    found = problems(hostile_bag)
    refused = [p for p in found if isinstance(p, TooManyLines)]
    assert refused == [TooManyLines("manifest-sha256.txt", MAX_MANIFEST_SURPLUS + 2,
                                    MAX_MANIFEST_SURPLUS + 1, 1)]
    assert sum(isinstance(p, MissingFile) for p in found) == MAX_MANIFEST_SURPLUS


def test_the_limit_grows_with_the_bag(hostile_bag: Path) -> None:
    """The limit is the bag's own file count: a bag of 1,500 payload files with a manifest of
    1,500 lines plus 999 missing ones is read whole."""
    manifest = hostile_bag / "manifest-sha256.txt"
    lines = []
    for n in range(1499):
        body = f"page {n}".encode()
        (hostile_bag / "data" / f"p{n}.txt").write_bytes(body)
        lines.append(f"{hashlib.sha256(body).hexdigest()}  data/p{n}.txt\n")
    lines += [f"{_digest(n)}  data/gone-{n}.tif\n" for n in range(MAX_MANIFEST_SURPLUS - 1)]
    with manifest.open("a") as f:
        f.writelines(lines)
    found = problems(hostile_bag)
    assert {type(p) for p in found} == {MissingFile}
    assert len(found) == MAX_MANIFEST_SURPLUS - 1


def test_a_tag_manifest_is_bounded_by_the_tag_files(hostile_bag: Path) -> None:
    tagman = hostile_bag / "tagmanifest-sha256.txt"
    with tagman.open("w") as f:
        f.writelines(f"{_digest(n)}  metadata/x-{n}.xml\n" for n in range(50_000))
    found = problems(hostile_bag)
    tags = 3  # bagit.txt, manifest-sha256.txt, tagmanifest-sha256.txt
    assert TooManyLines("tagmanifest-sha256.txt", tags + MAX_MANIFEST_SURPLUS + 1,
                        tags + MAX_MANIFEST_SURPLUS, tags) in found


def test_fetch_txt_is_bounded_by_the_payload(hostile_bag: Path) -> None:
    """Every fetch.txt line must name a file of every payload manifest, so it may have no more
    lines than they may; here each line is two problems (pending, and not in the manifest), so
    the problem limit refuses it first."""
    with (hostile_bag / "fetch.txt").open("w") as f:
        f.writelines(f"https://example.org/{n} 5 data/f-{n}.txt\n" for n in range(50_000))
    found = problems(hostile_bag)
    assert TooManyProblems("fetch.txt", MAX_TAG_FILE_PROBLEMS // 2 + 1,
                           MAX_TAG_FILE_PROBLEMS) in found
    assert len(found) == MAX_TAG_FILE_PROBLEMS + 1
    # Lines that are no problem one by one (the present file, again and again) run into the
    # line limit instead, and the repeats are one DuplicateEntry.
    with (hostile_bag / "fetch.txt").open("w") as f:
        f.writelines("https://example.org/a 5 data/a.txt\n" for _ in range(50_000))
    found = problems(hostile_bag)
    assert [type(p) for p in found] == [TooManyLines, DuplicateEntry]
    assert found[0] == TooManyLines("fetch.txt", MAX_MANIFEST_SURPLUS + 2,
                                    MAX_MANIFEST_SURPLUS + 1, 1)


def test_a_tag_file_of_faulty_lines_is_refused_after_its_problem_limit(
    hostile_bag: Path,
) -> None:
    """A 15 MiB bag-info.txt (under its size limit) of blank lines, each one malformed in 1.0:
    MAX_TAG_FILE_PROBLEMS of them are reported, then the file is refused at the next line."""
    (hostile_bag / "bag-info.txt").write_bytes(b"\n" * (15 * 1024 * 1024))
    started = time.monotonic()
    found = problems(hostile_bag)
    assert time.monotonic() - started < 10  # generous: loaded shared machine
    assert TooManyProblems("bag-info.txt", MAX_TAG_FILE_PROBLEMS + 1,
                           MAX_TAG_FILE_PROBLEMS) in found
    assert sum(isinstance(p, MalformedLine) for p in found) == MAX_TAG_FILE_PROBLEMS


def test_line_endings_and_characters_split_across_read_chunks_still_read(
    hostile_bag: Path,
) -> None:
    """Tag files are read TAG_CHUNK bytes at a time: a CRLF or a two-byte UTF-8 character
    across a chunk boundary is one line ending, one character."""
    from integrity.validate import TAG_CHUNK, is_valid

    head = b"Source-Organization: State Library\r\n"
    filler = b"External-Description: " + b"x" * 1000 + b"\r\n"
    for split in (b"\r", "ә".encode()[:1]):
        body = head + filler * ((TAG_CHUNK - len(head)) // len(filler) - 1)
        pad = TAG_CHUNK - len(body) - len(b"External-Description: ") - len(split)
        body += b"External-Description: " + b"x" * pad
        if split == b"\r":
            body += "\r\nContact-Name: Ә\r\n".encode()
        else:
            body += "ә\r\nContact-Name: Ә\r\n".encode()
        assert body[TAG_CHUNK - 1 : TAG_CHUNK] == split
        (hostile_bag / "bag-info.txt").write_bytes(body)
        assert problems(hostile_bag) == []
        assert is_valid(hostile_bag)


def test_manifest_lines_just_under_the_line_limit_are_refused_in_bounded_memory(
    hostile_bag: Path,
) -> None:
    """1,500 lines of 60 KiB paths (each line under MAX_TAG_LINE): a path longer than MAX_PATH
    names no file any store holds, so each is a MalformedLine and is not kept — before, the
    1,000 allowed ones alone held 65 MiB — and the problem limit ends the file."""
    from integrity.validate import MAX_PATH

    manifest = hostile_bag / "manifest-sha256.txt"
    with manifest.open("a") as f:
        f.writelines(f"{_digest(n)}  data/{n:06d}{'x' * 60_000}\n" for n in range(1500))
    result = validate_in_child(hostile_bag)
    found = result["problems"]
    assert isinstance(found, list)
    malformed = [p for p in found if p[0] == "MalformedLine"]
    assert len(malformed) == MAX_TAG_FILE_PROBLEMS and malformed[0][2] == 2
    assert ["TooManyProblems", "manifest-sha256.txt", MAX_TAG_FILE_PROBLEMS + 2,
            MAX_TAG_FILE_PROBLEMS] in found
    assert MAX_PATH < 60_000 < MAX_TAG_LINE
    assert float(result["seconds"]) < 2.0  # type: ignore[arg-type]
    assert int(result["growth_kib"]) < 64 * 1024  # type: ignore[call-overload]


def test_a_path_at_the_path_limit_is_still_a_path(hostile_bag: Path) -> None:
    """A missing file whose path is exactly MAX_PATH bytes is reported missing, like any."""
    from integrity.validate import MAX_PATH

    name = "data/" + "ә" * ((MAX_PATH - 5) // 2)
    assert len(name.encode()) <= MAX_PATH
    with (hostile_bag / "manifest-sha256.txt").open("a", encoding="utf-8") as f:
        f.write(f"{_digest(1)}  {name}\n")
    assert problems(hostile_bag) == [MissingFile(name, "manifest-sha256.txt")]


def test_manifests_past_the_limit_are_refused_unread(hostile_bag: Path) -> None:
    """200 payload files and 100 empty manifests would be 20,000 UnexpectedFile problems (one
    per file and manifest); past MAX_MANIFESTS each manifest is refused unread, by name."""
    from integrity.problems import TooManyManifests, UnexpectedFile
    from integrity.validate import MAX_MANIFESTS

    for n in range(199):
        (hostile_bag / "data" / f"p{n}.txt").write_bytes(b"")
    for n in range(100):
        (hostile_bag / f"manifest-x{n:03d}.txt").write_bytes(b"")
    found = problems(hostile_bag)
    refused = [p for p in found if isinstance(p, TooManyManifests)]
    names = sorted(["manifest-sha256.txt", *(f"manifest-x{n:03d}.txt" for n in range(100))])
    assert refused == [TooManyManifests(n, MAX_MANIFESTS) for n in names[MAX_MANIFESTS:]]
    unexpected = [p for p in found if isinstance(p, UnexpectedFile)]
    assert len(unexpected) <= 200 * MAX_MANIFESTS
