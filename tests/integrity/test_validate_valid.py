"""Valid bags of every allowed shape are accepted, by Qor's validator and by bagit-python."""

from __future__ import annotations

from pathlib import Path

import bagit

from integrity.validate import is_valid, problems, validate
from tests.integrity.conftest import BagWriter, digest


def test_plain_bag_with_two_algorithms_and_tag_manifests_is_valid(make_bag: BagWriter) -> None:
    bag = make_bag()
    assert problems(bag) == []
    assert is_valid(bag)
    validate(bag)  # does not raise
    bagit.Bag(str(bag)).validate()  # the anchor agrees


def test_percent_encoded_names_are_decoded(make_bag: BagWriter) -> None:
    # RFC 8493 2.1.3: CR, LF and % in a filepath are percent-encoded in the manifest.
    bag = make_bag({"100%25 pure.txt": b"a", "line\nbreak.txt": b"b", "cr\rname": b"c",
                    "sp ace .txt": b"d"})
    text = (bag / "manifest-sha256.txt").read_text()
    assert "100%2525 pure.txt" in text and "line%0Abreak.txt" in text and "cr%0Dname" in text
    assert problems(bag) == []


def test_lowercase_percent_codes_are_accepted(make_bag: BagWriter) -> None:
    bag = make_bag({"x\ny": b"z"}, tag_manifests=False)
    m = bag / "manifest-sha256.txt"
    m.write_text(m.read_text().replace("%0A", "%0a"))
    (bag / "manifest-sha512.txt").unlink()
    assert problems(bag) == []


def test_many_algorithms(make_bag: BagWriter) -> None:
    bag = make_bag(algorithms=("md5", "sha1", "sha256", "sha512", "sha3-256"))
    assert problems(bag) == []
    bagit.Bag(str(bag)).validate()


def test_empty_data_folder(make_bag: BagWriter) -> None:
    bag = make_bag({})
    assert (bag / "data").is_dir() and not any((bag / "data").iterdir())
    assert problems(bag) == []


def test_crlf_and_cr_line_endings(make_bag: BagWriter) -> None:
    assert problems(make_bag(eol="\r\n")) == []
    assert problems(make_bag(eol="\r")) == []


def test_tab_separator_uppercase_hex_and_dot_slash(make_bag: BagWriter) -> None:
    bag = make_bag({"a.txt": b"alpha"}, algorithms=("sha256",), tag_manifests=False)
    (bag / "manifest-sha256.txt").write_text(
        f"{digest(b'alpha', 'sha256').upper()}\t./data/a.txt\n"
    )
    assert problems(bag) == []


def test_version_097_allows_a_file_in_only_one_manifest(make_bag: BagWriter) -> None:
    bag = make_bag({"a.txt": b"a", "b.txt": b"b"}, version="0.97", tag_manifests=False)
    m = bag / "manifest-sha512.txt"
    m.write_text("".join(line for line in m.read_text().splitlines(True) if "b.txt" not in line))
    assert problems(bag) == []


def test_bag_made_by_bagit_python_is_valid(tmp_path: Path) -> None:
    folder = tmp_path / "made"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "x.txt").write_bytes(b"made by bagit-python\n")
    bagit.make_bag(str(folder), {"External-Identifier": "KZ-9"}, checksums=["sha256", "sha512"])
    assert problems(folder) == []


def test_str_path_is_accepted(make_bag: BagWriter) -> None:
    assert is_valid(str(make_bag()))


def test_unlisted_tag_file_is_allowed(make_bag: BagWriter) -> None:
    # RFC 8493 lets a bag carry tag files that no tag manifest lists.
    bag = make_bag()
    (bag / "notes").mkdir()
    (bag / "notes" / "readme.txt").write_text("extra tag file\n")
    assert problems(bag) == []


def test_link_inside_the_bag_is_followed(make_bag: BagWriter) -> None:
    bag = make_bag({"a.txt": b"alpha"}, tag_manifests=False, oxum=False)
    (bag / "data" / "alias.txt").symlink_to("a.txt")
    for alg in ("sha256", "sha512"):
        with (bag / f"manifest-{alg}.txt").open("a") as f:
            f.write(f"{digest(b'alpha', alg)}  data/alias.txt\n")
    assert problems(bag) == []
