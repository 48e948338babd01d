"""Every BagIt version from 0.93 to 1.0, each read by its own rules.

One test per rule of the table in ``docs/bag-profile.md`` ("Every BagIt version"): for each
version, a *valid twin* (accepted by that version) and, where the version refuses it, an
*invalid twin* refused with the right problem. Bags are written by hand here, byte by byte, as
another tool would have written them; Qor's own builder is not used.
"""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from integrity.problems import (
    BadDeclaration,
    BadEncoding,
    BagProblem,
    ChecksumMismatch,
    DuplicateEntry,
    ForbiddenEntry,
    MalformedLine,
    MissingFile,
    OxumMismatch,
    UnexpectedFile,
    UnsafePath,
)
from integrity.validate import SUPPORTED_VERSIONS, problems, rules_for
from tests.integrity.conftest import digest

ALL = ["0.93", "0.94", "0.95", "0.96", "0.97", "1.0"]
BEFORE_1 = ALL[:-1]


def info_name(version: str) -> str:
    return "package-info.txt" if version in ("0.93", "0.94") else "bag-info.txt"


def old_bag(
    root: Path,
    version: str,
    payload: Mapping[str, bytes] | None = None,
    *,
    manifest: str | None = None,
    info: str | None = None,
    algorithms: tuple[str, ...] = ("md5",),
    tag_manifest: str | None = None,
    eol: str = "\n",
    bom: bool = False,
) -> Path:
    """A bag of ``version`` written as a tool of that time would: ``manifest`` (text) replaces
    the first payload manifest, ``info`` the metadata file (``package-info.txt`` before 0.95),
    ``tag_manifest`` an algorithm whose tag manifest is written over every tag file."""
    files = {"a.txt": b"alpha\n"} if payload is None else payload
    (root / "data").mkdir(parents=True)
    for name, data in files.items():
        target = root / "data" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    tags: dict[str, bytes] = {}
    decl = f"BagIt-Version: {version}{eol}Tag-File-Character-Encoding: UTF-8{eol}".encode()
    tags["bagit.txt"] = (codecs.BOM_UTF8 if bom else b"") + decl
    octets = sum(len(d) for d in files.values())
    tags[info_name(version)] = (
        f"Source-Organization: Other Library{eol}Payload-Oxum: {octets}.{len(files)}{eol}"
        if info is None else info
    ).encode()
    for i, alg in enumerate(algorithms):
        text = "".join(f"{digest(d, alg)}  data/{n}{eol}" for n, d in sorted(files.items()))
        if i == 0 and manifest is not None:
            text = manifest
        tags[f"manifest-{alg}.txt"] = text.encode()
    for name, data in tags.items():
        (root / name).write_bytes(data)
    if tag_manifest is not None:
        (root / f"tagmanifest-{tag_manifest}.txt").write_text(
            "".join(f"{digest(d, tag_manifest)}  {n}{eol}" for n, d in sorted(tags.items()))
        )
    return root


A_MD5 = digest(b"alpha\n", "md5")


def kinds(found: list[BagProblem]) -> list[type[BagProblem]]:
    return [type(p) for p in found]


@pytest.fixture
def bag_dir(tmp_path: Path) -> Path:
    return tmp_path / "bag"


# -- versions ----------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_every_version_is_read_with_every_line_ending(bag_dir: Path, version: str,
                                                      eol: str) -> None:
    assert problems(old_bag(bag_dir, version, eol=eol, tag_manifest="md5")) == []


@pytest.mark.parametrize("version", ["0.92", "0.98", "1.1", "2.0"])
def test_versions_that_do_not_exist_are_refused(bag_dir: Path, version: str) -> None:
    found = problems(old_bag(bag_dir, version))
    assert kinds(found) == [BadDeclaration]
    assert "0.93, 0.94, 0.95, 0.96, 0.97, 1.0" in str(found[0])


def test_rules_table_is_what_the_docs_say() -> None:
    assert [r.label for r in SUPPORTED_VERSIONS.values()] == ALL
    assert rules_for("0.93").info_file == "package-info.txt"
    assert rules_for("0.95").info_file == "bag-info.txt"
    with pytest.raises(KeyError):
        rules_for("0.98")


# -- checksums and tag manifests hold in every version ------------------------------------------

@pytest.mark.parametrize("version", ALL)
def test_flipped_payload_byte_is_found_in_every_version(bag_dir: Path, version: str) -> None:
    bag = old_bag(bag_dir, version)
    (bag / "data" / "a.txt").write_bytes(b"alphA\n")
    assert kinds(problems(bag)) == [ChecksumMismatch]


@pytest.mark.parametrize("version", ALL)
def test_tampered_metadata_is_found_by_the_tag_manifest(bag_dir: Path, version: str) -> None:
    bag = old_bag(bag_dir, version, tag_manifest="sha256")
    meta = bag / info_name(version)
    meta.write_bytes(meta.read_bytes().replace(b"Other", b"Forged"))
    found = problems(bag)
    assert [(type(p), p.path) for p in found] == [  # type: ignore[attr-defined]
        (ChecksumMismatch, info_name(version))]


@pytest.mark.parametrize("version", ALL)
def test_tag_manifest_listing_a_payload_file_is_refused_in_every_version(
        bag_dir: Path, version: str) -> None:
    bag = old_bag(bag_dir, version, tag_manifest="md5")
    tm = bag / "tagmanifest-md5.txt"
    tm.write_text(tm.read_text() + f"{A_MD5}  data/a.txt\n")
    assert kinds(problems(bag)) == [ForbiddenEntry]


@pytest.mark.parametrize("version", ALL)
def test_tag_manifest_listing_another_tag_manifest(bag_dir: Path, version: str) -> None:
    bag = old_bag(bag_dir, version, tag_manifest="md5")
    tm = (bag / "tagmanifest-md5.txt").read_bytes()
    names = ["bagit.txt", info_name(version), "manifest-md5.txt", "tagmanifest-md5.txt"]
    (bag / "tagmanifest-sha256.txt").write_text(
        "".join(f"{digest((bag / n).read_bytes(), 'sha256')}  {n}\n" for n in names))
    found = problems(bag)
    if version == "1.0":  # RFC 8493: a tag manifest MUST NOT list tag manifests
        assert kinds(found) == [ForbiddenEntry]
    else:  # before 1.0 it may, and the listed digest is verified
        assert found == []
        (bag / "tagmanifest-md5.txt").write_bytes(tm + b"\n")
        assert (ChecksumMismatch in kinds(problems(bag)))


# -- the metadata file -------------------------------------------------------------------------

@pytest.mark.parametrize("version", ALL)
def test_metadata_file_name_by_version(bag_dir: Path, version: str) -> None:
    # 0.93 and 0.94 keep their metadata in package-info.txt, later versions in bag-info.txt; the
    # file of the version is the one whose Payload-Oxum is checked (the other is a plain tag file).
    bag = old_bag(bag_dir, version, info="Payload-Oxum: 99.9\n")
    assert kinds(problems(bag)) == [OxumMismatch]
    other = "bag-info.txt" if info_name(version) == "package-info.txt" else "package-info.txt"
    (bag / info_name(version)).write_text("Payload-Oxum: 6.1\n")
    (bag / other).write_text("Payload-Oxum: 77.7\n")
    assert problems(bag) == []


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("line", ["Title : spaced label\n", "Title:no space\n",
                                  "Title :value\n", "Title:\tx\n"])
def test_label_value_separators(bag_dir: Path, version: str, line: str) -> None:
    # Before 1.0: label, colon and value "each separated by optional whitespace";
    # RFC 8493: label, colon, ONE whitespace character (space or tab), value; no whitespace
    # around the label.
    found = problems(old_bag(bag_dir, version, info="Source-Organization: X\n" + line))
    if version == "1.0" and line != "Title:\tx\n":
        assert [(type(p), p.line_no) for p in found] == [(MalformedLine, 2)]  # type: ignore[attr-defined]
    else:
        assert found == []


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("line", ["No colon here\n", ": no label\n"])
def test_element_without_label_or_colon_is_refused_in_every_version(
        bag_dir: Path, version: str, line: str) -> None:
    found = problems(old_bag(bag_dir, version, info="Source-Organization: X\n" + line))
    assert [(type(p), p.line_no) for p in found] == [(MalformedLine, 2)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("version", ALL)
def test_orphan_continuation_is_refused_in_every_version(bag_dir: Path, version: str) -> None:
    found = problems(old_bag(bag_dir, version, info="  orphan\nTitle: x\n"))
    assert [(type(p), p.line_no) for p in found] == [(MalformedLine, 1)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("version", ALL)
def test_last_element_without_line_ending(bag_dir: Path, version: str) -> None:
    found = problems(old_bag(bag_dir, version, info="Payload-Oxum: 6.1\nTitle: last"))
    if version == "1.0":  # RFC 8493: each element MUST be terminated by LF, CR or CRLF
        assert [(type(p), p.line_no) for p in found] == [(MalformedLine, 2)]  # type: ignore[attr-defined]
    else:
        assert found == []


@pytest.mark.parametrize("version", ALL)
def test_blank_line_between_elements(bag_dir: Path, version: str) -> None:
    found = problems(old_bag(bag_dir, version, info="Title: a\n\nPayload-Oxum: 6.1\n"))
    assert kinds(found) == ([MalformedLine] if version == "1.0" else [])


@pytest.mark.parametrize("version", ALL)
def test_repeated_elements(bag_dir: Path, version: str) -> None:
    # Repeating an ordinary element is allowed by every version (order preserved).
    info = "Contact-Name: A\nContact-Name: B\nPayload-Oxum: 6.1\nContact-Name: C\n"
    assert problems(old_bag(bag_dir / "plain", version, info=info)) == []
    # The same Payload-Oxum twice: 1.0 refuses the repeat, earlier versions accept it ...
    same = problems(old_bag(bag_dir / "same", version,
                            info="Payload-Oxum: 6.1\nPayload-Oxum: 6.1\n"))
    assert kinds(same) == ([DuplicateEntry] if version == "1.0" else [])
    # ... and two different values are refused by every version.
    diff = problems(old_bag(bag_dir / "diff", version,
                            info="Payload-Oxum: 6.1\nPayload-Oxum: 7.1\n"))
    assert DuplicateEntry in kinds(diff)


# -- filepaths ---------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ALL)
def test_bare_percent_in_a_filepath(bag_dir: Path, version: str) -> None:
    payload = {"100% pure.txt": b"x"}
    found = problems(old_bag(bag_dir, version, payload,
                             manifest=f"{digest(b'x', 'md5')}  data/100% pure.txt\n"))
    if version == "1.0":  # every '%' MUST be encoded as %25
        assert MalformedLine in kinds(found)
    else:  # a literal '%' before 1.0
        assert found == []


@pytest.mark.parametrize("version", ALL)
def test_percent_25(bag_dir: Path, version: str) -> None:
    # "%25" names a file "%" in 1.0 only; before, the three characters are the name.
    x = digest(b"x", "md5")
    literal = problems(old_bag(bag_dir / "lit", version, {"a%25b": b"x"},
                               manifest=f"{x}  data/a%25b\n"))
    decoded = problems(old_bag(bag_dir / "dec", version, {"a%b": b"x"},
                               manifest=f"{x}  data/a%25b\n"))
    if version == "1.0":
        assert {UnexpectedFile, MissingFile} <= set(kinds(literal))
        assert decoded == []
    else:
        assert literal == []
        assert {UnexpectedFile, MissingFile} <= set(kinds(decoded))


@pytest.mark.parametrize("version", ALL)
def test_percent_encoded_line_feed(bag_dir: Path, version: str) -> None:
    # CR and LF in a filepath are percent-encoded from 0.97 on; before, "%0A" is three characters.
    x = digest(b"x", "md5")
    found = problems(old_bag(bag_dir, version, {"line\nbreak": b"x"},
                             manifest=f"{x}  data/line%0Abreak\n"))
    if version in ("0.97", "1.0"):
        assert found == []
    else:
        assert {UnexpectedFile, MissingFile} <= set(kinds(found))


@pytest.mark.parametrize("version", ALL)
def test_backslash_separator(bag_dir: Path, version: str) -> None:
    # 0.93-0.95 bags made on Windows name files with '\'; from 0.96 on '\' is part of a name.
    found = problems(old_bag(bag_dir, version, {"sub/a.txt": b"x"},
                             manifest=f"{digest(b'x', 'md5')}  data\\sub\\a.txt\n"))
    if version in ("0.93", "0.94", "0.95"):
        assert found == []
    else:
        assert UnsafePath in kinds(found)


@pytest.mark.parametrize("version", ALL)
def test_binary_mode_marker(bag_dir: Path, version: str) -> None:
    # 0.96 and 0.97 manifests may carry md5sum's binary-mode '*' before the filepath.
    found = problems(old_bag(bag_dir, version, manifest=f"{A_MD5} *data/a.txt\n"))
    if version in ("0.96", "0.97"):
        assert found == []
    else:
        assert UnsafePath in kinds(found)


@pytest.mark.parametrize("version", ALL)
def test_file_in_only_one_of_two_manifests(bag_dir: Path, version: str) -> None:
    payload = {"a.txt": b"alpha\n", "b.txt": b"b"}
    one = "".join(f"{digest(d, 'md5')}  data/{n}\n" for n, d in payload.items() if n == "a.txt")
    found = problems(old_bag(bag_dir / "one", version, payload, manifest=one,
                             algorithms=("md5", "sha256")))
    if version == "1.0":  # every payload file MUST be in every payload manifest
        assert [(type(p), p.path) for p in found] == [  # type: ignore[attr-defined]
            (UnexpectedFile, "data/b.txt")]
    else:  # before: in at least one
        assert found == []
    # A file in no manifest at all is refused by every version.
    none = problems(old_bag(bag_dir / "none", version, payload, manifest=one))
    assert kinds(none) == [UnexpectedFile]


@pytest.mark.parametrize("version", ALL)
def test_byte_order_mark_in_declaration(bag_dir: Path, version: str) -> None:
    found = problems(old_bag(bag_dir, version, bom=True))
    assert kinds(found) == ([BadEncoding] if version == "1.0" else [])


@pytest.mark.parametrize("version", ALL)
def test_escaping_paths_are_refused_in_every_version(bag_dir: Path, version: str) -> None:
    found = problems(old_bag(bag_dir, version, manifest=f"{A_MD5}  data/a.txt\n"
                                                        f"{A_MD5}  data/../../etc/passwd\n"))
    assert kinds(found) == [UnsafePath]


# -- as users meet it --------------------------------------------------------------------------

def test_qor_bag_validate_accepts_a_095_bag_and_names_the_broken_rule_of_a_10_twin(
        tmp_path: Path) -> None:
    info = "Source-Organization : Other Library\nPayload-Oxum: 6.1"
    old = old_bag(tmp_path / "old", "0.95", info=info,
                  manifest=f"{A_MD5}  data\\a.txt\n", tag_manifest="md5")
    new = old_bag(tmp_path / "new", "1.0", info=info, tag_manifest="md5")
    cmd = [sys.executable, "-m", "qor", "bag", "validate"]
    ok = subprocess.run([*cmd, str(old)], capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "valid" in ok.stdout
    bad = subprocess.run([*cmd, str(new), "--json"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert [(p["problem"], p["line_no"]) for p in report["problems"]] == [
        ("MalformedLine", 1), ("MalformedLine", 2)]
