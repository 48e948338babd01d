"""Adding payload files to a finished bag: the tag files of its next state (RFC 8493 kept).

A bag in the depository is never rebuilt; when files join it (access derivatives made later by
``qor copies derive``), the new payload objects are written beside the old ones and the tag
files that describe the payload are replaced by new *versions* (the store keeps the old ones):

* every ``manifest-<alg>.txt`` gains the new files' lines (sorted, as :mod:`integrity.bag`
  writes them);
* ``bag-info.txt`` gets the new ``Payload-Oxum`` and ``Bag-Size``, every other line kept;
* ``metadata/premis.xml`` gains one file object per new file (fixity, size, format) and the
  given events (:func:`premis_with`); ``metadata/mets.xml`` the files in their groups
  (:func:`mets_with_derivatives`);
* every ``tagmanifest-<alg>.txt`` is recomputed over the tag files' new bytes.

Plain functions over bytes: the caller reads the current tag files from the store and writes
the returned ones back (tag manifests last).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from lxml import etree

from integrity.algorithms import MultiHasher
from integrity.bag import BagFileRecord, _human_size, encode_manifest_path
from integrity.errors import BagBuildError
from integrity.mets import METS_NS, XLINK_NS, MetsFile
from integrity.premis import PREMIS_NS, PremisAgent, PremisEvent, PremisFile, premis_xml

__all__ = ["amended_tag_files", "manifest_algorithms", "mets_with_derivatives", "premis_with"]

_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_OXUM = re.compile(r"^(\d+)\.(\d+)$")


def manifest_algorithms(tag_names: Sequence[str]) -> tuple[str, ...]:
    """The algorithms of the bag's payload manifests, from its tag file names."""
    return tuple(sorted(n.removeprefix("manifest-").removesuffix(".txt")
                        for n in tag_names if n.startswith("manifest-") and n.endswith(".txt")))


def _manifest_lines(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            digest, _, path = line.partition(" ")
            out[path.strip()] = digest.lower()
    return out


def _manifest_bytes(entries: Mapping[str, str]) -> bytes:
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(entries.items())).encode(
        "utf-8")


def _bag_info(data: bytes, added: Sequence[BagFileRecord]) -> bytes:
    lines = data.decode("utf-8").splitlines()
    out: list[str] = []
    found = False
    for line in lines:
        label, sep, value = line.partition(":")
        if sep and label == "Payload-Oxum":
            match = _OXUM.match(value.strip())
            if match is None:
                raise BagBuildError(f"bag-info.txt: Payload-Oxum {value.strip()!r} is malformed")
            octets = int(match.group(1)) + sum(r.size for r in added)
            count = int(match.group(2)) + len(added)
            out.append(f"Payload-Oxum: {octets}.{count}")
            found = True
        elif sep and label == "Bag-Size" and found:
            out.append(f"Bag-Size: {_human_size(octets)}")
        else:
            out.append(line)
    if not found:
        raise BagBuildError("bag-info.txt has no Payload-Oxum to update")
    return ("\n".join(out) + "\n").encode("utf-8")


def amended_tag_files(current: Mapping[str, bytes], added: Sequence[BagFileRecord],
                      *, replaced: Mapping[str, bytes]) -> dict[str, bytes]:
    """The tag files that change when ``added`` payload files (paths ``data/…``, digests of
    their stored bytes by every manifest algorithm) join a bag whose tag files are ``current``
    (name → bytes, every tag file the tag manifests list, and those manifests).

    ``replaced`` are further tag files with new content (``metadata/premis.xml``…). Returns
    name → new bytes for every tag file that differs, tag manifests included. A file already in
    a manifest with the same digest is not added twice; with another digest it is an error.
    """
    algorithms = manifest_algorithms(list(current))
    if not algorithms:
        raise BagBuildError("the bag has no payload manifest")
    changed: dict[str, bytes] = dict(replaced)
    fresh: list[BagFileRecord] = []
    for alg in algorithms:
        name = f"manifest-{alg}.txt"
        entries = _manifest_lines(current[name])
        for record in added:
            path = encode_manifest_path(record.path)
            known = entries.get(path)
            if known is not None and known != record.digests[alg]:
                raise BagBuildError(f"{record.path} is already in {name} with another digest")
            if known is None:
                entries[path] = record.digests[alg]
                if alg == algorithms[0]:
                    fresh.append(record)
        changed[name] = _manifest_bytes(entries)
    if fresh:
        changed["bag-info.txt"] = _bag_info(current["bag-info.txt"], fresh)
    tag_algorithms = tuple(sorted(n.removeprefix("tagmanifest-").removesuffix(".txt")
                                  for n in current if n.startswith("tagmanifest-")))
    for alg in tag_algorithms:
        name = f"tagmanifest-{alg}.txt"
        entries = _manifest_lines(current[name])
        for path in list(entries):
            if path in changed:
                hasher = MultiHasher([alg])
                hasher.update(changed[path])
                entries[path] = hasher.hexdigests()[alg]
        changed[name] = _manifest_bytes(entries)
    return {k: v for k, v in changed.items() if current.get(k) != v}


def premis_with(document: bytes, *, inventory_number: str, bag_id: str,
                files: Sequence[PremisFile], events: Sequence[PremisEvent],
                agents: Sequence[PremisAgent] = ()) -> bytes:
    """``document`` (a bag's PREMIS) with ``files`` added as file objects after the existing
    objects, ``events`` after the existing events, ``agents`` not yet named added; every
    existing element kept as it was. Validated against the PREMIS 3.0 schema."""
    root = etree.fromstring(document)
    known_agents = {el.text for el in root.iterfind(
        f"{{{PREMIS_NS}}}agent/{{{PREMIS_NS}}}agentIdentifier/{{{PREMIS_NS}}}"
        "agentIdentifierValue")}
    # The new elements are made by premis_xml (the one writer of Qor's PREMIS), then moved in.
    part = etree.fromstring(premis_xml(
        inventory_number=inventory_number, bag_id=bag_id, files=files, events=events,
        agents=[a for a in agents if a.identifier not in known_agents]))
    new_files = [el for el in part.iterfind(f"{{{PREMIS_NS}}}object")
                 if el.get(_XSI_TYPE) == "premis:file"]
    new_events = list(part.iterfind(f"{{{PREMIS_NS}}}event"))
    new_agents = list(part.iterfind(f"{{{PREMIS_NS}}}agent"))

    def after_last(tag: str, fallback: str, elements: Sequence[etree._Element]) -> None:
        existing = list(root.iterfind(f"{{{PREMIS_NS}}}{tag}"))
        anchor = existing[-1] if existing else None
        if anchor is None:
            later = list(root.iterfind(f"{{{PREMIS_NS}}}{fallback}"))
            index = root.index(later[0]) if later else len(root)
        else:
            index = root.index(anchor) + 1
        for offset, el in enumerate(elements):
            root.insert(index + offset, el)

    after_last("object", "event", new_files)
    after_last("event", "agent", new_events)
    after_last("agent", "rights", new_agents)
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                                 pretty_print=True)
    from integrity.premis import validate_premis

    validate_premis(data)
    return data


def _m(parent: etree._Element, name: str, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{METS_NS}}}{name}")
    for key, value in attrs.items():
        el.set(key, value)
    return el


def mets_with_derivatives(document: bytes, *, web_pdf: MetsFile,
                          web_images: Sequence[MetsFile]) -> bytes:
    """``document`` (a copy's METS, as :func:`integrity.mets.mets_xml` wrote it without access
    derivatives) with the access PDF in group ``ACCESS`` and the reading images, one per page
    in page order, in group ``WEB``, pointed at from the page sequence and from each page —
    what ``mets_xml`` writes for a copy digitised with its derivatives."""
    root = etree.fromstring(document)
    file_sec = root.find(f"{{{METS_NS}}}fileSec")
    if file_sec is None:
        raise BagBuildError("mets.xml has no fileSec")
    if file_sec.find(f"{{{METS_NS}}}fileGrp[@USE='WEB']") is not None:
        raise BagBuildError("mets.xml already lists reading images (group WEB)")
    sample = file_sec.find(f"{{{METS_NS}}}fileGrp/{{{METS_NS}}}file/{{{METS_NS}}}transformFile")

    def group(use: str, files: Sequence[MetsFile], prefix: str) -> list[str]:
        grp = _m(file_sec, "fileGrp", USE=use)
        ids: list[str] = []
        for n, f in enumerate(files, start=1):
            fid = f"{prefix}_{n:04d}"
            el = _m(grp, "file", ID=fid, MIMETYPE=f.mime, SIZE=str(f.size))
            loc = _m(el, "FLocat", LOCTYPE="URL")
            loc.set(f"{{{XLINK_NS}}}href", f"../{f.path}")
            if sample is not None:
                _m(el, "transformFile", **{k: str(v) for k, v in sample.attrib.items()})
            ids.append(fid)
        return ids

    (pdf_id,) = group("ACCESS", [web_pdf], "ACCESSPDF")
    image_ids = group("WEB", list(web_images), "WEB")
    seq = root.find(f"{{{METS_NS}}}structMap[@TYPE='PHYSICAL']/{{{METS_NS}}}div")
    if seq is None:
        raise BagBuildError("mets.xml has no physical page sequence")
    fptrs = seq.findall(f"{{{METS_NS}}}fptr")
    pdf_ptr = etree.Element(f"{{{METS_NS}}}fptr", FILEID=pdf_id)
    seq.insert(seq.index(fptrs[-1]) + 1 if fptrs else 0, pdf_ptr)
    pages = sorted(seq.findall(f"{{{METS_NS}}}div[@TYPE='page']"),
                   key=lambda d: int(d.get("ORDER") or 0))
    if len(pages) != len(image_ids):
        raise BagBuildError(
            f"mets.xml has {len(pages)} page(s), {len(image_ids)} reading image(s) given")
    for div, fid in zip(pages, image_ids, strict=True):
        _m(div, "fptr", FILEID=fid)
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                                pretty_print=True)
    return out
